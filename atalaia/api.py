"""A Python API for notebooks and scripts: monitors, scoring, events and labels.

Every function takes the monitor's name (looked up in ``ATALAIA_MONITORS_DIR``), a YAML
path or a loaded ``Monitor``, and reads the ``ATALAIA_*`` settings unless given
``settings``. Results are plain pandas data frames and dicts, with times as aware UTC.
Findings are shown as scored (``atalaia.queries``), attributions as shares
(``atalaia.attribution``). docs/api.md shows them at work.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from atalaia import store
from atalaia.artifacts import bound_settings_of, load_model
from atalaia.attribution import stored_shares
from atalaia.config import Monitor, as_utc, find_monitor, load_monitor
from atalaia.errors import AtalaiaError
from atalaia.queries import events_as_scored, model_version, monitor_key, reading
from atalaia.representation import as_trained
from atalaia.scoring import score_frame
from atalaia.settings import Settings
from atalaia.validation import validate
from storage.engine import transaction
from storage.labels import add_label as store_label
from storage.models import EventRow
from storage.monitors import ensure_monitor

MonitorLike = str | Path | Monitor
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def load(monitor: MonitorLike, settings: Settings | None = None) -> Monitor:
    """The monitor named ``monitor`` in the monitors folder, or read from a YAML file."""
    if isinstance(monitor, Monitor):
        return monitor
    settings = settings or Settings.from_env()
    if str(monitor).endswith((".yaml", ".yml")):
        return load_monitor(monitor, settings.home)
    return find_monitor(settings.monitors_dir, str(monitor), settings.home)


def score(
    monitor: MonitorLike,
    frame: pd.DataFrame,
    *,
    version: int | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Score ``frame`` (the monitor's source columns) with a stored model version (default:
    the champion), writing nothing.

    Rows are validated as ingest validates them; any rejected row raises ``AtalaiaError``
    with its reason. Returns one row per scored step: ``entity``, ``ts``, ``raw_score``,
    ``p_value``, ``z``, ``is_anomaly``, ``top_features`` (with shares; anomalous rows only)
    and ``version``.
    """
    settings = settings or Settings.from_env()
    config = load(monitor, settings)
    with reading(settings) as session:
        model = model_version(session, config.name, version)
    checked = validate(frame, config, EARLIEST, LATEST)
    if checked.quarantined:
        first = checked.quarantined[0]
        raise AtalaiaError(
            f"{len(checked.quarantined)} of {len(frame)} rows rejected; first: {first['reason']}"
        )
    detector, calibrator = load_model(model.artifact_path, model.artifact_sha256)
    trained = as_trained(config, bound_settings_of(model.artifact_path), model.version)
    scores = score_frame(checked.accepted, trained, detector, calibrator)
    scores["version"] = model.version
    return scores


def events(
    monitor: MonitorLike,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    version: int | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """The monitor's events overlapping ``[start, end)``, oldest first: those of the version
    that scored each batch, or all of ``version``'s; one row per event (``event_record``)."""
    settings = settings or Settings.from_env()
    config = load(monitor, settings)
    first = EARLIEST if start is None else as_utc(start)
    last = LATEST if end is None else as_utc(end)
    with reading(settings) as session:
        identifier = monitor_key(session, config.name)
        rows = events_as_scored(session, identifier, first, last, version=version)
        records = [event_record(config.name, event, number) for event, number in rows]
    return pd.DataFrame(records, columns=list(EVENT_FIELDS))


def add_label(
    monitor: MonitorLike,
    start: datetime | str,
    end: datetime | str,
    *,
    entity: str | None = None,
    kind: str = "incident",
    note: str = "",
    settings: Settings | None = None,
) -> int:
    """Record a known incident (``kind="incident"``) or known-normal span over ``[start,
    end]`` of one entity (default: all); return the label's id."""
    settings = settings or Settings.from_env()
    config = load(monitor, settings)
    first, last = as_utc(start), as_utc(end)
    if first > last:
        raise AtalaiaError(f"label start {first} is after its end {last}")
    engine = store.require_current(settings.store_url, settings.connect_timeout)
    with transaction(engine) as session:
        identifier = ensure_monitor(session, config.name, config.stored_config())
        return store_label(session, identifier, first, last, entity=entity, kind=kind, note=note)


EVENT_FIELDS = {
    "id": "the event's id in the store (stable while the event grows)",
    "monitor": "the monitor's name",
    "entity": "the entity (empty for a monitor without entities)",
    "start": "first step of the event (its evidence's start), aware UTC",
    "end": "last anomalous step",
    "peak": "step of the largest z",
    "peak_z": "the largest z (normal quantile of 1 - p)",
    "anomalies": "anomalous steps in the event",
    "open": "whether the event may still grow",
    "absorbed_at": "when its rows joined the baseline as the new normal (baseline.adapt), or None",
    "version": "the model version that found it",
    "top_features": "list of {feature, share, contribution}, largest share first",
}


def event_record(monitor: str, event: EventRow, version: int) -> dict[str, Any]:
    """One event as a plain dict with the keys of ``EVENT_FIELDS``."""
    shares = stored_shares(event.top_features)
    return {
        "id": event.id,
        "monitor": monitor,
        "entity": event.entity,
        "start": event.start_ts,
        "end": event.end_ts,
        "peak": event.peak_ts,
        "peak_z": event.peak_z,
        "anomalies": event.anomalies,
        "open": event.is_open,
        "absorbed_at": event.absorbed_at,
        "version": version,
        "top_features": [
            {"feature": item["feature"], "share": share, "contribution": item["contribution"]}
            for item, share in zip(event.top_features, shares, strict=True)
        ],
    }
