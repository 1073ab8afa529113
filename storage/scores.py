"""Scores: bulk, idempotent writes (COPY on PostgreSQL) and reads as data frames."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
from sqlalchemy import column, select, table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from storage.models import ScoreRow
from storage.upsert import upsert_statement

SCORES = ScoreRow.__table__
KEY = ("monitor_id", "entity", "ts", "model_id")
COLUMNS = (
    *KEY,
    "batch_id",
    "raw_score",
    "p_value",
    "z",
    "is_anomaly",
    "judged",
    "top_features",
)
# Rows per statement on SQLite; keeps memory flat on million-row batches.
CHUNK = 50_000


def upsert_scores(
    session: Session, monitor_id: int, model_id: int, batch_id: int, frame: pd.DataFrame
) -> int:
    """Write one batch's scores; a row already stored for the same key is replaced.

    ``frame`` has columns ``entity``, ``ts`` (aware UTC), ``raw_score``, ``p_value``, ``z``,
    ``is_anomaly``, ``top_features`` (a list of ``{"feature", "contribution"}`` or None) and
    optionally ``judged`` (default: every row was judged).
    Returns the number of rows written.
    """
    if frame.empty:
        return 0
    records = _records(monitor_id, model_id, batch_id, frame)
    if session.get_bind().dialect.name == "postgresql":
        _copy_upsert(session, records)
    else:
        statement = upsert_statement("sqlite", SCORES, KEY, COLUMNS)
        for start in range(0, len(records), CHUNK):
            chunk = records[start : start + CHUNK]
            session.execute(statement, [dict(zip(COLUMNS, row, strict=True)) for row in chunk])
    return len(records)


def _records(monitor_id: int, model_id: int, batch_id: int, frame: pd.DataFrame) -> list[tuple]:
    stamps = pd.DatetimeIndex(frame["ts"]).tz_convert("UTC").to_pydatetime()
    return list(
        zip(
            [monitor_id] * len(frame),
            frame["entity"].astype(str).tolist(),
            stamps,
            [model_id] * len(frame),
            [batch_id] * len(frame),
            frame["raw_score"].astype(float).tolist(),
            frame["p_value"].astype(float).tolist(),
            frame["z"].astype(float).tolist(),
            frame["is_anomaly"].astype(bool).tolist(),
            frame.get("judged", pd.Series(True, index=frame.index)).astype(bool).tolist(),
            frame["top_features"].tolist(),
            strict=True,
        )
    )


def _copy_upsert(session: Session, records: list[tuple]) -> None:
    """COPY into a temporary table, then one ``INSERT .. SELECT .. ON CONFLICT``."""
    session.execute(
        text(
            "CREATE TEMPORARY TABLE IF NOT EXISTS scores_incoming "
            "(LIKE scores INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
    )
    session.execute(text("TRUNCATE scores_incoming"))
    cursor = session.connection().connection.dbapi_connection.cursor()
    names = ", ".join(COLUMNS)
    with cursor.copy(f"COPY scores_incoming ({names}) FROM STDIN") as copy:
        for row in records:
            features = row[-1]
            copy.write_row((*row[:-1], None if features is None else json.dumps(features)))
    incoming = table("scores_incoming", *(column(name) for name in COLUMNS))
    statement = postgresql.insert(SCORES).from_select(list(COLUMNS), select(*incoming.c))
    session.execute(
        statement.on_conflict_do_update(
            index_elements=list(KEY),
            set_={name: statement.excluded[name] for name in COLUMNS if name not in KEY},
        )
    )


def read_scores(
    session: Session,
    monitor_id: int,
    start: datetime,
    end: datetime,
    *,
    model_id: int | None = None,
) -> pd.DataFrame:
    """Scores of the monitor with ``start <= ts < end``, ordered by entity and time."""
    query = select(*(SCORES.c[name] for name in COLUMNS)).where(
        SCORES.c.monitor_id == monitor_id, SCORES.c.ts >= start, SCORES.c.ts < end
    )
    if model_id is not None:
        query = query.where(SCORES.c.model_id == model_id)
    rows = session.execute(query.order_by(SCORES.c.entity, SCORES.c.ts)).all()
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def unflagged_scores(
    session: Session,
    monitor_id: int,
    model_id: int,
    before: datetime,
    limit: int,
    since: datetime | None = None,
) -> pd.DataFrame:
    """``ts`` and ``raw_score`` of the newest ``limit`` judged, unflagged rows model
    ``model_id`` scored before ``before`` (and at or after ``since``), any entity, oldest
    first."""
    query = select(SCORES.c.ts, SCORES.c.raw_score).where(
        SCORES.c.monitor_id == monitor_id,
        SCORES.c.model_id == model_id,
        SCORES.c.ts < before,
        SCORES.c.is_anomaly.is_(False),
        SCORES.c.judged.is_(True),
    )
    if since is not None:
        query = query.where(SCORES.c.ts >= since)
    rows = session.execute(
        query.order_by(SCORES.c.ts.desc(), SCORES.c.entity.desc()).limit(limit)
    ).all()
    frame = pd.DataFrame(rows[::-1], columns=["ts", "raw_score"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame
