"""The read side of the store: every read outside the jobs goes through here.

``reading(settings)`` opens the session a reader (the CLI, the report, the Python API, the
on-call page) reads in. Here are which model version a reader means (``resolve_model``: this
version or the champion), what was found as it was scored, the CLI's listings, the report's
data, the labelled scores to evaluate, and the on-call page's monitors, swimlanes, events and
model versions (``atalaia.airflow_plugin``), as JSON-ready values (times as ISO 8601 UTC).

A batch may have been scored by more than one model version (scored, then a new champion
promoted and the batch scored again). **The version that scored a batch** is the model of
the batch's latest successful ``score`` run (a batch scored in partitions counts once its
``finish_scoring`` run is in). Scores and events "as scored" are those of that version, batch
by batch, so a range that spans a promotion shows the old champion's findings before it and
the new one's after, and a promotion hides nothing. An event belongs to the batch that
scored its last anomalous row.

The Grafana dashboard's SQL (``docker/grafana/dashboards/atalaia.json``) restates this rule
for PostgreSQL; ``tests/test_docker_files.py`` checks that both give the same events.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Row, Select, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session, aliased

from atalaia import store
from atalaia.attribution import stored_shares
from atalaia.config import Monitor
from atalaia.errors import NotFoundError
from atalaia.labelled import stored_labelled_scores
from atalaia.settings import Settings
from storage.batches import batches_overlapping, quarantine_rows
from storage.engine import transaction
from storage.events import events_overlapping
from storage.labels import labels_overlapping
from storage.models import (
    BatchRow,
    EventRow,
    LabelRow,
    ModelRow,
    ModelUpdateRow,
    MonitorRow,
    QuarantineRow,
    RunRow,
    ScoreRow,
)
from storage.monitors import monitor_id
from storage.registry import champion, find_model, list_models
from storage.scores import COLUMNS as SCORE_COLUMNS
from storage.scores import read_scores, scores_as_frame
from storage.updates import newest_update


@contextmanager
def reading(settings: Settings) -> Iterator[Session]:
    """A session on the settings' store, at the current schema, to read in."""
    engine = store.require_current(settings.store_url, settings.connect_timeout)
    with transaction(engine) as session:
        yield session


# -- which model version --------------------------------------------------------------


def monitor_key(session: Session, name: str) -> int:
    """The monitor's id in the store; NotFoundError when no job has run for it yet."""
    identifier = monitor_id(session, name)
    if identifier is None:
        raise NotFoundError(f"monitor {name}: no job has run for it yet")
    return identifier


def resolve_model(
    session: Session, monitor: str, identifier: int, version: int | None = None
) -> ModelRow:
    """Version ``version`` of the monitor (``identifier`` its id, ``monitor`` its name), or
    its champion when None; NotFoundError when there is no such version."""
    if version is None:
        model = champion(session, identifier)
        if model is None:
            raise NotFoundError(f"monitor {monitor}: no champion model; run train first")
    else:
        model = find_model(session, identifier, version)
        if model is None:
            raise NotFoundError(f"monitor {monitor}: no model version {version}")
    return model


def model_version(session: Session, monitor: str, version: int | None = None) -> ModelRow:
    """The monitor's model ``version``, or its champion when None (``resolve_model``)."""
    return resolve_model(session, monitor, monitor_key(session, monitor), version)


# -- scores and events as scored (alerts, report, CLI, API) ------------------------------


def batch_scorers(monitor_id: int) -> Select:
    """``(batch_id, model_id)`` of each of the monitor's batches: the version that scored it."""
    latest = aliased(RunRow)
    newest_run = (
        select(func.max(latest.id))
        .where(
            latest.monitor_id == BatchRow.monitor_id,
            latest.job == "score",
            latest.status == "success",
            latest.interval_start == BatchRow.interval_start,
            latest.interval_end == BatchRow.interval_end,
        )
        .scalar_subquery()
    )
    return (
        select(BatchRow.id.label("batch_id"), RunRow.model_id.label("model_id"))
        .join(RunRow, RunRow.id == newest_run)
        .where(BatchRow.monitor_id == monitor_id)
    )


def scores_as_scored(
    session: Session, monitor_id: int, start: datetime, end: datetime
) -> pd.DataFrame:
    """Scores with ``start <= ts < end`` of the version that scored each batch, ordered by
    entity and time, in ``read_scores``' layout plus ``version`` (the model's number)."""
    scorers = batch_scorers(monitor_id).subquery()
    query = (
        select(*(ScoreRow.__table__.c[name] for name in SCORE_COLUMNS), ModelRow.version)
        .join(
            scorers,
            and_(scorers.c.batch_id == ScoreRow.batch_id, scorers.c.model_id == ScoreRow.model_id),
        )
        .join(ModelRow, ModelRow.id == ScoreRow.model_id)
        .where(ScoreRow.monitor_id == monitor_id, ScoreRow.ts >= start, ScoreRow.ts < end)
        .order_by(ScoreRow.entity, ScoreRow.ts)
    )
    return scores_as_frame(session.execute(query).all(), [*SCORE_COLUMNS, "version"])


def events_as_scored(
    session: Session,
    monitor_id: int,
    start: datetime,
    end: datetime,
    *,
    version: int | None = None,
) -> list[Row[tuple[EventRow, int]]]:
    """``(event, version)`` rows of events with ``start_ts < end`` and ``end_ts >= start``,
    oldest first: of the version that scored each event's batch, or all of ``version``'s."""
    query = (
        select(EventRow, ModelRow.version)
        .join(ModelRow, ModelRow.id == EventRow.model_id)
        .where(EventRow.monitor_id == monitor_id, EventRow.start_ts < end, EventRow.end_ts >= start)
        .order_by(EventRow.start_ts, EventRow.entity, ModelRow.version)
    )
    if version is not None:
        return list(session.execute(query.where(ModelRow.version == version)).all())
    scorers = batch_scorers(monitor_id).subquery()
    scored_its_batch = exists().where(
        ScoreRow.monitor_id == EventRow.monitor_id,
        ScoreRow.entity == EventRow.entity,
        ScoreRow.ts == EventRow.end_ts,
        ScoreRow.model_id == EventRow.model_id,
        scorers.c.batch_id == ScoreRow.batch_id,
        scorers.c.model_id == EventRow.model_id,
    )
    return list(session.execute(query.where(scored_its_batch)).all())


def scoring_versions(
    session: Session, monitor_id: int, start: datetime, end: datetime
) -> list[ModelRow]:
    """The versions that scored batches overlapping ``[start, end)``, oldest version first."""
    scorers = batch_scorers(monitor_id).where(
        BatchRow.interval_start < end, BatchRow.interval_end > start
    )
    ids = select(scorers.subquery().c.model_id)
    return list(
        session.scalars(select(ModelRow).where(ModelRow.id.in_(ids)).order_by(ModelRow.version))
    )


def stored_events(
    session: Session, monitor_id: int, model_id: int, keys: list[tuple[str, datetime]]
) -> list[EventRow]:
    """The model's stored events with these ``(entity, start_ts)`` keys, in key order."""
    if not keys:
        return []
    starts = [start for _, start in keys]
    rows = session.scalars(
        select(EventRow).where(
            EventRow.monitor_id == monitor_id,
            EventRow.model_id == model_id,
            EventRow.start_ts >= min(starts),
            EventRow.start_ts <= max(starts),
        )
    )
    by_key = {(row.entity, row.start_ts): row for row in rows}
    return [by_key[key] for key in keys if key in by_key]


# -- the command line's listings --------------------------------------------------------


def event_listing(
    settings: Settings,
    monitor: str,
    start: datetime,
    end: datetime,
    version: int | None = None,
) -> list[Row[tuple[EventRow, int]]]:
    """``events_as_scored`` of the monitor, checking first that ``version`` exists."""
    with reading(settings) as session:
        identifier = monitor_key(session, monitor)
        if version is not None:
            resolve_model(session, monitor, identifier, version)
        return events_as_scored(session, identifier, start, end, version=version)


def label_listing(settings: Settings, monitor: str) -> list[LabelRow]:
    """Every label of the monitor, oldest first (none when no job has run for it)."""
    with reading(settings) as session:
        identifier = monitor_id(session, monitor)
        if identifier is None:
            return []
        whole = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
        return labels_overlapping(session, identifier, *whole)


def model_listing(settings: Settings, monitor: str) -> list[ModelRow]:
    """Every model version of the monitor, newest first (none when no job has run for it)."""
    with reading(settings) as session:
        identifier = monitor_id(session, monitor)
        return [] if identifier is None else list_models(session, identifier)


def stored_model(settings: Settings, monitor: str, version: int | None = None) -> ModelRow:
    """The monitor's model ``version``, or its champion when None (``model_version``)."""
    with reading(settings) as session:
        return model_version(session, monitor, version)


def newest_model_update(settings: Settings, model_id: int) -> ModelUpdateRow | None:
    """Model ``model_id``'s newest online update (``atalaia.adaptation``), or None."""
    with reading(settings) as session:
        return newest_update(session, model_id)


def quarantined(settings: Settings, batch_ids: list[int]) -> list[QuarantineRow]:
    """The quarantined rows of these batches, batch by batch."""
    with reading(settings) as session:
        return [row for batch in batch_ids for row in quarantine_rows(session, batch)]


def labelled_scores(
    settings: Settings,
    monitor: str,
    version: int | None,
    start: datetime,
    end: datetime,
    label_kind: str = "incident",
) -> tuple[ModelRow, pd.DataFrame]:
    """The model ``version`` (default: the champion) and its stored scores of ``[start,
    end)`` labelled by the monitor's labels of ``label_kind`` (``labelled``)."""
    with reading(settings) as session:
        model = model_version(session, monitor, version)
        return model, stored_labelled_scores(session, model, start, end, label_kind)


# -- the report's data -----------------------------------------------------------------


@dataclass
class ScoredPeriod:
    """What a report shows of ``[start, end)``: the versions whose scores are shown, their
    scores (``read_scores``' layout plus ``version``), their events, and the landed batches
    that overlap the period."""

    models: list[ModelRow]
    scores: pd.DataFrame
    events: list[EventRow]
    batches: list[BatchRow]


def scored_period(
    settings: Settings, monitor: str, start: datetime, end: datetime, version: int | None = None
) -> ScoredPeriod:
    """The scores and events of ``[start, end)`` as scored (or all of ``version``'s), and
    its batches; NotFoundError when nothing was scored in it."""
    period = f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC"
    with reading(settings) as session:
        identifier = monitor_key(session, monitor)
        if version is None:
            models = scoring_versions(session, identifier, start, end)
            scores = scores_as_scored(session, identifier, start, end)
            events = [event for event, _ in events_as_scored(session, identifier, start, end)]
            if scores.empty:
                raise NotFoundError(f"monitor {monitor}: nothing was scored in {period}")
        else:
            model = resolve_model(session, monitor, identifier, version)
            models = [model]
            scores = read_scores(session, identifier, start, end, model_id=model.id)
            scores["version"] = model.version
            events = events_overlapping(session, identifier, start, end, model_id=model.id)
            if scores.empty:
                raise NotFoundError(
                    f"monitor {monitor}: version {version} scored nothing in {period}"
                )
        batches = batches_overlapping(session, identifier, start, end)
    return ScoredPeriod(models, scores, events, batches)


# -- the on-call page -------------------------------------------------------------------

# Most columns a swimlane is cut into; a cell is a whole number of the monitor's steps.
SWIMLANE_COLUMNS = 96
# The widest range an event list without bounds covers.
EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


def iso(stamp: datetime | None) -> str | None:
    """``stamp`` as ISO 8601 UTC, or None."""
    return None if stamp is None else pd.Timestamp(stamp).tz_convert("UTC").isoformat()


def number(value: float, digits: int = 3) -> float | str | None:
    """``value`` rounded for JSON, which has no infinity: an infinite z (a score that could
    not be computed is flagged with one) becomes ``"Infinity"``, as JavaScript's ``Number``
    reads it; NaN becomes None."""
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return round(value, digits)


def monitor_names(session: Session) -> list[str]:
    """The names of the monitors some job has run for, sorted."""
    return list(session.scalars(select(MonitorRow.name).order_by(MonitorRow.name)))


def stored_monitor(session: Session, name: str) -> tuple[MonitorRow, Monitor]:
    """The monitor's row and its configuration as a job last saw it."""
    row = session.scalars(select(MonitorRow).where(MonitorRow.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(f"monitor {name}: no job has run for it yet")
    return row, Monitor.model_validate(row.config)


def monitor_overview(session: Session, name: str) -> dict[str, Any]:
    """A monitor at a glance: champion, last scored interval, open events, drift, retraining."""
    row, monitor = stored_monitor(session, name)
    best = champion(session, row.id)
    scored = _last_run(session, row.id, "score", "success")
    events = monitor_events(session, name)
    candidates = session.scalar(
        select(func.count()).where(ModelRow.monitor_id == row.id, ModelRow.status == "candidate")
    )
    return {
        "name": name,
        "description": monitor.description or "",
        "champion": None if best is None else _version_summary(best),
        "last_scored": None
        if scored is None
        else {"start": iso(scored.interval_start), "end": iso(scored.interval_end)},
        "open_events": sum(event["open"] for event in events),
        "events": len(events),
        "drift": _run_state(_last_run(session, row.id, "drift")),
        "retraining": _run_state(_last_run(session, row.id, "retrain")),
        "candidates": candidates,
    }


def monitor_events(
    session: Session, name: str, start: datetime | None = None, end: datetime | None = None
) -> list[dict[str, Any]]:
    """The monitor's events as scored (see the module), newest first; with ``start`` and
    ``end``, those overlapping ``[start, end)``."""
    row, _ = stored_monitor(session, name)
    found = events_as_scored(session, row.id, start or EVER[0], end or EVER[1])
    verdicts = _verdicts(session, row.id)
    return [
        _event_summary(event, version, verdicts.get((event.entity, event.start_ts, event.end_ts)))
        for event, version in reversed(found)
    ]


def swimlane(session: Session, name: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The strongest z per entity and time cell over ``[start, end)``, as scored.

    The range is cut into at most ``SWIMLANE_COLUMNS`` cells of whole steps; ``z`` holds
    one list per entity (None where nothing was scored), with the entity's events.
    """
    row, monitor = stored_monitor(session, name)
    steps = max(1, -(-(end - start) // monitor.step))
    cell = monitor.step * max(1, -(-steps // SWIMLANE_COLUMNS))
    columns = max(1, -(-(end - start) // cell))
    # (batch, version) pairs first: a join with batch_scorers is slow on SQLite
    overlapping = batch_scorers(row.id).where(
        BatchRow.interval_start < end, BatchRow.interval_end > start
    )
    scored_by = [
        and_(ScoreRow.batch_id == batch, ScoreRow.model_id == model)
        for batch, model in session.execute(overlapping)
    ]
    rows = session.execute(
        select(ScoreRow.entity, ScoreRow.ts, ScoreRow.z).where(
            ScoreRow.monitor_id == row.id,
            ScoreRow.ts >= start,
            ScoreRow.ts < end,
            or_(false(), *scored_by),
        )
    ).all()
    owners, stamps, values = zip(*rows, strict=True) if rows else ((), (), ())
    scores = pd.DataFrame(
        {"entity": owners, "ts": pd.to_datetime(list(stamps), utc=True), "z": values}
    )
    entities = sorted(scores["entity"].unique())
    grid: dict[str, list[float | None]] = {entity: [None] * columns for entity in entities}
    if not scores.empty:
        offsets = scores["ts"] - pd.Timestamp(start)
        strongest = scores.assign(column=offsets // cell).groupby(["entity", "column"])["z"].max()
        for (entity, index), z in strongest.items():
            grid[entity][int(index)] = number(z)
    events = monitor_events(session, name, start, end)
    return {
        "start": iso(start),
        "end": iso(end),
        "cell_seconds": cell.total_seconds(),
        "columns": columns,
        "entities": [
            {
                "entity": entity,
                "z": grid[entity],
                "events": [event for event in events if event["entity"] == entity],
            }
            for entity in entities
        ],
    }


def scored_range(session: Session, name: str) -> dict[str, str | None]:
    """The first and last scored step of the monitor (None when nothing is scored)."""
    row, _ = stored_monitor(session, name)
    first, last = session.execute(
        select(func.min(ScoreRow.ts), func.max(ScoreRow.ts)).where(ScoreRow.monitor_id == row.id)
    ).one()
    return {"first": iso(first), "last": iso(last)}


def event_record(session: Session, event_id: int) -> tuple[EventRow, ModelRow, str]:
    """An event, the model version that found it and its monitor's name."""
    found = session.execute(
        select(EventRow, ModelRow, MonitorRow.name)
        .join(ModelRow, ModelRow.id == EventRow.model_id)
        .join(MonitorRow, MonitorRow.id == EventRow.monitor_id)
        .where(EventRow.id == event_id)
    ).one_or_none()
    if found is None:
        raise NotFoundError(f"event {event_id}: no such event")
    event, model, name = found
    return event, model, name


def event_summary(session: Session, event: EventRow, model_version: int) -> dict[str, Any]:
    """One event as ``monitor_events`` lists it."""
    verdict = _verdicts(session, event.monitor_id).get((event.entity, event.start_ts, event.end_ts))
    return _event_summary(event, model_version, verdict)


def event_context(session: Session, event: EventRow) -> dict[str, Any]:
    """What the store says around an event: its batches' quarantine and the labels on it."""
    batches = batches_overlapping(session, event.monitor_id, event.start_ts, event.end_ts)
    labels = [
        label
        for label in labels_overlapping(session, event.monitor_id, event.start_ts, event.end_ts)
        if label.entity in (None, event.entity)
    ]
    return {
        "batches": [
            {
                "start": iso(batch.interval_start),
                "end": iso(batch.interval_end),
                "rows": batch.row_count,
                "quarantined": batch.quarantined_count,
            }
            for batch in batches
        ],
        "labels": [_label_summary(label) for label in labels],
    }


def model_versions(session: Session, name: str) -> list[dict[str, Any]]:
    """Every model version of the monitor with its lineage, newest first."""
    row, _ = stored_monitor(session, name)
    return [
        {
            **_version_summary(model),
            "status_reason": model.status_reason,
            "baseline": {
                "start": iso(model.baseline_start),
                "end": iso(model.baseline_end),
                "rows": model.baseline_rows,
                "sha256": model.baseline_sha256,
            },
            "calibration_rows": model.calibration_rows,
            "alpha": model.alpha,
            "threshold": model.threshold,
            "artifact_sha256": model.artifact_sha256,
            "code_version": model.code_version,
            "promoted_at": iso(model.promoted_at),
            "previous_champion": model.previous_champion,
            "evaluation": model.evaluation,
        }
        for model in list_models(session, row.id)
    ]


def champion_detectors(session: Session) -> list[str]:
    """The detector kinds of every monitor's champion."""
    query = select(ModelRow.detector).where(ModelRow.status == "champion").distinct()
    return sorted(session.scalars(query))


def _version_summary(model: ModelRow) -> dict[str, Any]:
    return {
        "version": model.version,
        "status": model.status,
        "detector": model.detector,
        "trained_at": iso(model.trained_at),
    }


def _last_run(session: Session, monitor_id: int, job: str, status: str | None = None) -> RunRow:
    query = select(RunRow).where(RunRow.monitor_id == monitor_id, RunRow.job == job)
    if status is not None:
        query = query.where(RunRow.status == status)
    return session.scalars(query.order_by(RunRow.started_at.desc(), RunRow.id.desc())).first()


def _run_state(run: RunRow | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "status": run.status,
        "message": run.message or "",
        "at": iso(run.finished_at or run.started_at),
    }


def _verdicts(session: Session, monitor_id: int) -> dict[tuple, str]:
    """The newest label kind per exact (entity, start, end) span: an event's feedback."""
    labels = session.scalars(
        select(LabelRow).where(LabelRow.monitor_id == monitor_id).order_by(LabelRow.id)
    )
    return {(label.entity, label.start_ts, label.end_ts): label.kind for label in labels}


def _event_summary(event: EventRow, version: int, verdict: str | None) -> dict[str, Any]:
    return {
        "id": event.id,
        "entity": event.entity,
        "start": iso(event.start_ts),
        "end": iso(event.end_ts),
        "peak": iso(event.peak_ts),
        "peak_z": number(event.peak_z),
        "anomalies": event.anomalies,
        "open": event.is_open,
        "absorbed_at": iso(event.absorbed_at),
        "model_version": version,
        "top_features": [
            {"feature": item["feature"], "share": round(share, 4)}
            for item, share in zip(
                event.top_features, stored_shares(event.top_features), strict=True
            )
        ],
        "verdict": verdict,
    }


def _label_summary(label: LabelRow) -> dict[str, Any]:
    return {
        "id": label.id,
        "entity": label.entity,
        "start": iso(label.start_ts),
        "end": iso(label.end_ts),
        "kind": label.kind,
        "note": label.note,
    }
