"""An event explained by the model version that found it: the entity's features around
the event, the band the model expected them in, and each feature's share of the evidence.

The model is loaded from its artifact (checked against its sha256) and rerun on the landed
rows around the event the way scoring ran it (``atalaia.representation``), unless the
monitor has since changed a setting the version is bound to (the result's ``note`` then
says so). Per step, its attribution gives each feature's contribution, turned into shares
by ``atalaia.attribution.feature_shares``. The event's shares follow the rule of stored
events (``atalaia.events``): each feature's mean share over the event's anomalous steps,
here over every feature rather than each step's top three. The expected band is the
detector's predictive distribution of each feature (mean +- ``BAND_SDS`` standard
deviations), for the detectors that have one: ``gmm``'s conditional given everything else
it saw (``conditional_moments``), ``ar``'s prediction from the steps before
(``predictive_moments``); for the others the page shows the values alone and says so.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from atalaia.artifacts import bound_settings_of, load_model
from atalaia.attribution import feature_shares
from atalaia.config import Monitor
from atalaia.errors import ConfigError, EmptyBatchError
from atalaia.queries import iso
from atalaia.representation import (
    as_trained,
    changed_setting,
    detector_input,
    feature_contributions,
    lookback,
)
from atalaia.training import landed_rows
from atalaia.validation import entity_keys
from storage.models import EventRow, ModelRow
from storage.scores import read_scores

# Half-width of the expected band, in the predictive distribution's standard deviations.
BAND_SDS = 3.0
# Detectors' predictive distributions, by method name, and what each is conditioned on.
BAND_METHODS = {
    "conditional_moments": "the mixture's conditional given every other value it saw",
    "predictive_moments": "predicted from the steps before",
}
# Steps shown on each side of an event, at least.
MIN_PADDING_STEPS = 12


def padding(monitor: Monitor, event: EventRow) -> timedelta:
    """Time shown on each side of an event: its own length, at least ``MIN_PADDING_STEPS``."""
    return max(event.end_ts - event.start_ts + monitor.step, MIN_PADDING_STEPS * monitor.step)


def explain_event(
    session: Session, monitor: Monitor, event: EventRow, model: ModelRow
) -> dict[str, Any]:
    """The event's surroundings as the model saw them, JSON-ready (see the module)."""
    recorded = bound_settings_of(model.artifact_path)
    change = None if recorded is None else changed_setting(monitor, recorded)
    if change is not None:
        return _unexplained(monitor, f"version {model.version} cannot be rerun: {change}")
    try:
        monitor = as_trained(monitor, recorded, model.version)  # its auto choices in place
    except ConfigError as exc:  # saved before choices were recorded
        return _unexplained(monitor, str(exc))
    pad = padding(monitor, event)
    first, last = event.start_ts - pad, event.end_ts + monitor.step + pad
    try:
        rows = landed_rows(
            session, monitor, model.monitor_id, first - lookback(monitor), last, "the event"
        )
    except EmptyBatchError:
        rows = pd.DataFrame()
    if rows.empty or not (entity_keys(rows, monitor) == event.entity).any():
        return _unexplained(monitor, "no landed rows of the entity around the event")
    rows = rows[entity_keys(rows, monitor) == event.entity]
    detector, _ = load_model(model.artifact_path, model.artifact_sha256)
    inputs = detector_input(rows, monitor)
    shown = (inputs.ts >= first).to_numpy()
    X = inputs.X[shown].reset_index(drop=True)
    stamps = inputs.ts[shown].reset_index(drop=True)
    shares = feature_shares(feature_contributions(detector, X, monitor))
    flagged = read_scores(
        session, model.monitor_id, event.start_ts, event.end_ts + monitor.step, model_id=model.id
    )
    flagged = flagged[(flagged["entity"] == event.entity) & flagged["is_anomaly"]]
    anomalous = stamps.isin(flagged["ts"]).to_numpy()
    event_shares = shares[anomalous].mean(axis=0) if anomalous.any() else None
    values = rows.set_index(monitor.timestamp)[monitor.features].reindex(stamps)
    band = _band(detector, X, monitor)
    features = list(monitor.features)
    return {
        "features": features,
        "steps": [iso(stamp) for stamp in stamps],
        "values": {f: _floats(values[f].to_numpy()) for f in features},
        "band": band,
        "step_shares": {f: _floats(column) for f, column in zip(features, shares.T, strict=True)},
        "shares": {}
        if event_shares is None
        else {f: round(float(s), 4) for f, s in zip(features, event_shares, strict=True)},
        "band_sds": BAND_SDS,
        "note": "",
    }


def _unexplained(monitor: Monitor, why: str) -> dict[str, Any]:
    return {
        "features": list(monitor.features),
        "steps": [],
        "band": None,
        "shares": {},
        "note": why,
    }


def _band(detector: Any, X: pd.DataFrame, monitor: Monitor) -> dict[str, Any] | None:
    """Each feature's expected band at the step scored and what it is conditioned on, or
    None for a detector without a predictive distribution."""
    found = [(method, basis) for method, basis in BAND_METHODS.items() if hasattr(detector, method)]
    if not found:
        return None
    method, basis = found[0]
    mean, sd = getattr(detector, method)(X)
    # The step a window is scored for is its last: the last len(features) columns.
    mean, sd = mean[:, -len(monitor.features) :], sd[:, -len(monitor.features) :]
    return {
        "basis": basis,
        "features": {
            feature: {
                "low": _floats(mean[:, j] - BAND_SDS * sd[:, j]),
                "high": _floats(mean[:, j] + BAND_SDS * sd[:, j]),
            }
            for j, feature in enumerate(monitor.features)
        },
    }


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 4) for v in values]
