"""Scores: bulk, idempotent writes (COPY on PostgreSQL) and reads as data frames."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import case, column, func, select, table, text
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
# Rows per statement on SQLite and per COPY write; keeps memory flat on million-row batches.
CHUNK = 50_000
# How SQLAlchemy's SQLite DateTime writes a timestamp (the UTC wall-clock time).
SQLITE_TIMESTAMP = "%Y-%m-%d %H:%M:%S"


def upsert_scores(
    session: Session,
    monitor_id: int,
    model_id: int,
    batch_id: int,
    frame: pd.DataFrame,
    *,
    new: bool = False,
) -> int:
    """Write one batch's scores; a row already stored for the same key is replaced.

    ``frame`` has columns ``entity``, ``ts`` (aware UTC), ``raw_score``, ``p_value``, ``z``,
    ``is_anomaly``, ``top_features`` (a list of ``{"feature", "contribution"}``, or None
    for a normal row, stored as NULL) and optionally ``judged`` (default: every row was
    judged). Columns go to the driver whole: COPY of CSV written by Arrow on PostgreSQL, one
    prepared ``executemany`` per CHUNK rows on SQLite. ``new`` says no row of ``frame``'s
    keys is stored (see ``scores_stored``): PostgreSQL then copies straight into ``scores``
    (a key stored meanwhile fails the write; nothing merges). Returns the number of rows
    written.
    """
    if frame.empty:
        return 0
    columns = _columns(monitor_id, model_id, batch_id, frame)
    if session.get_bind().dialect.name == "postgresql":
        _copy_upsert(session, columns, new)
    else:
        _sqlite_upsert(session, columns)
    return columns.num_rows


def _columns(monitor_id: int, model_id: int, batch_id: int, frame: pd.DataFrame) -> pa.Table:
    """The rows to write as an Arrow table in COLUMNS order."""
    n = len(frame)
    stamps = pd.DatetimeIndex(frame["ts"]).tz_convert("UTC").as_unit("us")
    features = [None if item is None else json.dumps(item) for item in frame["top_features"]]
    return pa.table(
        {
            "monitor_id": np.full(n, monitor_id, dtype=np.int64),
            "entity": pa.array(frame["entity"].astype(str).to_numpy(), pa.string()),
            "ts": pa.array(stamps),
            "model_id": np.full(n, model_id, dtype=np.int64),
            "batch_id": np.full(n, batch_id, dtype=np.int64),
            "raw_score": frame["raw_score"].to_numpy(dtype=np.float64),
            "p_value": frame["p_value"].to_numpy(dtype=np.float64),
            "z": frame["z"].to_numpy(dtype=np.float64),
            "is_anomaly": frame["is_anomaly"].to_numpy(dtype=bool),
            "judged": (
                frame["judged"] if "judged" in frame else pd.Series(True, index=frame.index)
            ).to_numpy(dtype=bool),
            "top_features": pa.array(features, pa.string()),
        }
    )


def _sqlite_upsert(session: Session, columns: pa.Table) -> None:
    """One prepared upsert, executed for CHUNK rows at a time on the session's connection.

    Timestamps are written as SQLAlchemy's SQLite DateTime writes them (UTC wall-clock
    text), so every other query of the store reads and compares them as usual.
    """
    compiled = upsert_statement("sqlite", SCORES, KEY, COLUMNS).compile(
        dialect=session.get_bind().dialect, column_keys=list(COLUMNS)
    )
    order = compiled.positiontup
    cursor = session.connection().connection.dbapi_connection.cursor()
    for chunk in columns.to_batches(CHUNK):
        stamps = pc.strftime(chunk.column("ts"), format=SQLITE_TIMESTAMP)
        values = [(stamps if name == "ts" else chunk.column(name)).to_pylist() for name in order]
        cursor.executemany(compiled.string, zip(*values, strict=True))
    cursor.close()


def _copy_upsert(session: Session, columns: pa.Table, new: bool) -> None:
    """COPY straight into ``scores`` when the rows are ``new``; otherwise COPY into a
    temporary table, then one ``INSERT .. SELECT .. ON CONFLICT``."""
    if new:
        _copy(session, "scores", columns)
        return
    session.execute(
        text(
            "CREATE TEMPORARY TABLE IF NOT EXISTS scores_incoming "
            "(LIKE scores INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
    )
    session.execute(text("TRUNCATE scores_incoming"))
    _copy(session, "scores_incoming", columns)
    incoming = table("scores_incoming", *(column(name) for name in COLUMNS))
    statement = postgresql.insert(SCORES).from_select(list(COLUMNS), select(*incoming.c))
    session.execute(
        statement.on_conflict_do_update(
            index_elements=list(KEY),
            set_={name: statement.excluded[name] for name in COLUMNS if name not in KEY},
        )
    )


def _copy(session: Session, name: str, columns: pa.Table) -> None:
    """COPY ``columns`` into table ``name`` as CSV, CHUNK rows at a time.

    Arrow quotes every text value, so an empty entity stays an empty text and only a
    missing value (an unquoted empty field) is NULL.
    """
    cursor = session.connection().connection.dbapi_connection.cursor()
    options = pacsv.WriteOptions(include_header=False)
    with cursor.copy(f"COPY {name} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv)") as copy:
        for chunk in columns.to_batches(CHUNK):
            sink = pa.BufferOutputStream()
            pacsv.write_csv(chunk, sink, options)
            copy.write(sink.getvalue())


def scores_stored(
    session: Session,
    monitor_id: int,
    model_id: int,
    start: datetime,
    end: datetime,
    entities: Iterable[str] | None = None,
) -> bool:
    """Whether the model has stored any score with ``start <= ts < end`` (of ``entities``,
    if given)."""
    query = select(SCORES.c.ts).where(
        SCORES.c.monitor_id == monitor_id,
        SCORES.c.model_id == model_id,
        SCORES.c.ts >= start,
        SCORES.c.ts < end,
    )
    if entities is not None:
        query = query.where(SCORES.c.entity.in_(list(entities)))
    return session.scalar(query.limit(1)) is not None


def read_scores(
    session: Session,
    monitor_id: int,
    start: datetime,
    end: datetime,
    *,
    model_id: int | None = None,
    anomalous_only: bool = False,
) -> pd.DataFrame:
    """Scores of the monitor with ``start <= ts < end``, ordered by entity and time (only
    the anomalous ones with ``anomalous_only``)."""
    query = select(*(SCORES.c[name] for name in COLUMNS)).where(
        SCORES.c.monitor_id == monitor_id, SCORES.c.ts >= start, SCORES.c.ts < end
    )
    if model_id is not None:
        query = query.where(SCORES.c.model_id == model_id)
    if anomalous_only:
        query = query.where(SCORES.c.is_anomaly)
    rows = session.execute(query.order_by(SCORES.c.entity, SCORES.c.ts)).all()
    return scores_as_frame(rows, COLUMNS)


def scores_as_frame(rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> pd.DataFrame:
    """Score rows read from the store as a data frame, with ``ts`` as aware UTC times."""
    frame = pd.DataFrame(rows, columns=list(columns))
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
    return scores_as_frame(rows[::-1], ["ts", "raw_score"])


def newest_scores(
    session: Session,
    monitor_id: int,
    start: datetime,
    end: datetime,
    *,
    model_id: int,
    entities: Iterable[str],
) -> dict[str, datetime]:
    """Each of ``entities``' newest score time in ``[start, end)`` (entities without one
    are left out)."""
    wanted = list(entities)
    if not wanted:
        return {}
    query = (
        select(SCORES.c.entity, func.max(SCORES.c.ts))
        .where(
            SCORES.c.monitor_id == monitor_id,
            SCORES.c.model_id == model_id,
            SCORES.c.entity.in_(wanted),
            SCORES.c.ts >= start,
            SCORES.c.ts < end,
        )
        .group_by(SCORES.c.entity)
    )
    return {entity: newest for entity, newest in session.execute(query)}


@dataclass(frozen=True)
class ScoreTally:
    """How many rows a batch's scores hold, how many are anomalous, and their largest z."""

    rows: int
    anomalies: int
    max_z: float

    @classmethod
    def of(cls, frame: pd.DataFrame) -> ScoreTally:
        """The tally of scores in the ``scores`` layout."""
        if frame.empty:
            return cls(0, 0, 0.0)
        return cls(len(frame), int(frame["is_anomaly"].sum()), float(frame["z"].max()))

    def __add__(self, other: ScoreTally) -> ScoreTally:
        if not self.rows or not other.rows:
            return self if other.rows == 0 else other
        return ScoreTally(
            self.rows + other.rows, self.anomalies + other.anomalies, max(self.max_z, other.max_z)
        )


def tally_scores(
    session: Session, monitor_id: int, start: datetime, end: datetime, *, model_id: int
) -> ScoreTally:
    """The tally of the model's stored scores with ``start <= ts < end``, counted in SQL."""
    rows, anomalies, max_z = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((SCORES.c.is_anomaly, 1), else_=0)), 0),
            func.coalesce(func.max(SCORES.c.z), 0.0),
        ).where(
            SCORES.c.monitor_id == monitor_id,
            SCORES.c.model_id == model_id,
            SCORES.c.ts >= start,
            SCORES.c.ts < end,
        )
    ).one()
    return ScoreTally(int(rows), int(anomalies), float(max_z) if rows else 0.0)
