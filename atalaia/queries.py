"""Reads of the store for people: what was found, as it was scored.

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

from datetime import datetime

import pandas as pd
from sqlalchemy import Row, Select, and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from storage.models import BatchRow, EventRow, ModelRow, RunRow, ScoreRow
from storage.scores import COLUMNS as SCORE_COLUMNS

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
    frame = pd.DataFrame(session.execute(query).all(), columns=[*SCORE_COLUMNS, "version"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


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
