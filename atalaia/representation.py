"""What a monitor's detector sees, and how its raw scores become the scores reported.

With ``detector.window = 1`` the detector sees each accepted row's features. With ``w > 1``
it sees, for every step of every entity, the window of the last ``w`` steps of all features
(``detectors.windows``: the data's regular grid, gaps missing), plus each feature one
season ago and the step before for every period of ``detector.seasons``, and a score
belongs to the window's last step. With ``detector.smoothing = k`` a step's score is the
mean of its entity's last ``k`` raw scores (``detectors.smoothing``). Both look back in
time, so scoring a batch takes the rows of the ``lookback`` before it along as context;
training and calibration go through the same functions, so calibration sees the scores
scoring makes.

A model version is bound to the settings that made its inputs and its calibration
(:func:`bound_settings`), recorded with its files; scoring with other values would compare
scores against a calibration they do not match, so it is refused (:func:`check_bound`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from atalaia.config import Monitor
from atalaia.errors import ConfigError
from atalaia.validation import entity_keys
from detectors import Detector
from detectors.smoothing import full_spans, moving_mean
from detectors.windows import make_windows, per_feature


@dataclass
class DetectorInput:
    """The detector's rows with the entity and time step each one is scored for.

    Rows are ordered by entity, then time.
    """

    X: pd.DataFrame
    entity: np.ndarray
    ts: pd.Series


def lookback(monitor: Monitor) -> timedelta:
    """How far before a batch the rows that its first steps' scores depend on reach."""
    seasonal = [period + 1 for period in monitor.season_steps]  # a season ago, and a step
    oldest_lag = max([monitor.detector.window - 1, *seasonal])
    return monitor.step * (oldest_lag + monitor.detector.smoothing - 1)


def detector_input(frame: pd.DataFrame, monitor: Monitor) -> DetectorInput:
    """The detector's view of accepted rows: the rows themselves, or their windows."""
    if monitor.detector.window == 1:
        ordered = frame.assign(_entity=entity_keys(frame, monitor)).sort_values(
            ["_entity", monitor.timestamp], kind="stable"
        )
        return DetectorInput(
            X=ordered[monitor.features].reset_index(drop=True),
            entity=ordered["_entity"].to_numpy(),
            ts=ordered[monitor.timestamp].reset_index(drop=True),
        )
    windows = make_windows(
        frame,
        timestamp=monitor.timestamp,
        features=monitor.features,
        frequency=monitor.step,
        window=monitor.detector.window,
        entity=entity_keys(frame, monitor),
        seasons=monitor.season_steps,
    )
    return DetectorInput(
        X=windows.frame(),
        entity=windows.index["entity"].to_numpy(),
        ts=windows.index["ts"].reset_index(drop=True),
    )


def raw_scores(detector: Detector, inputs: DetectorInput, monitor: Monitor) -> np.ndarray:
    """The detector's anomaly scores, smoothed as the monitor says."""
    if inputs.X.empty:
        return np.empty(0)
    scores = detector.decision_function(inputs.X)
    return moving_mean(scores, monitor.detector.smoothing, inputs.entity)


def judged(inputs: DetectorInput, monitor: Monitor) -> np.ndarray:
    """Whether each row's score rests on a full history: a window of ``detector.window``
    steps and a smoothed mean of ``detector.smoothing`` raw scores, i.e. at least
    ``window + smoothing - 2`` earlier rows of its entity in ``inputs``. An entity's first
    steps (or the first after a gap longer than the look-back, which brings no context)
    are predicted from fewer lags and averaged over fewer scores, so their scores vary
    differently from calibration's: they are stored but not judged (p = 1, no flag) and
    stay out of every calibration pool. An anomaly there is still found once the history is
    full, and its event starts ``smoothing - 1`` steps earlier (``config.event_lead``)."""
    return full_spans(len(inputs.X), history_steps(monitor), inputs.entity)


def history_steps(monitor: Monitor) -> int:
    """How many steps a smoothed score's inputs span: its window's, and those of the raw
    scores its mean averages (seasonal lags aside)."""
    return monitor.detector.window + monitor.detector.smoothing - 1


def feature_contributions(detector: Detector, X: pd.DataFrame, monitor: Monitor) -> np.ndarray:
    """Each monitor feature's contribution to each row's score (lags of a window summed)."""
    contributions = detector.attribute(X)
    if monitor.detector.window == 1:
        return contributions
    return per_feature(contributions, len(monitor.features))


def since(inputs: DetectorInput, start: datetime | None) -> np.ndarray:
    """Which rows are scored for steps at or after ``start`` (all when None)."""
    if start is None:
        return np.ones(len(inputs.ts), dtype=bool)
    return (inputs.ts >= start).to_numpy()


def bound_settings(monitor: Monitor) -> dict[str, Any]:
    """The monitor settings a model version is bound to, by dotted name: everything that
    turns rows into detector inputs and scores into flags."""
    calibration = monitor.calibration
    return {
        "features": list(monitor.features),
        "frequency": monitor.frequency,
        "detector.window": monitor.detector.window,
        "detector.seasons": list(monitor.detector.seasons),
        "detector.smoothing": monitor.detector.smoothing,
        "calibration.alpha": calibration.alpha,
        "calibration.fraction": calibration.fraction,
        "calibration.tail_floor": calibration.tail_floor,
        "calibration.pool": calibration.pool,
        "calibration.pool_limit": calibration.pool_limit,
    }


def changed_setting(monitor: Monitor, recorded: dict[str, Any]) -> str | None:
    """The first bound setting ``monitor`` gives another value than ``recorded``, described
    as ``name is X, but ... trained with Y``; None when they agree."""
    current = bound_settings(monitor)
    for name, value in recorded.items():
        if current.get(name) != value:
            return f"{name} is {current.get(name)!r}, but the version was trained with {value!r}"
    return None


def check_bound(monitor: Monitor, recorded: dict[str, Any], version: int) -> None:
    """Refuse a monitor whose settings differ from those model ``version`` was trained with."""
    change = changed_setting(monitor, recorded)
    if change is not None:
        raise ConfigError(
            f"monitor {monitor.name}: version {version}: {change}; retrain to apply the change"
        )
