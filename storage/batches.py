"""Ingested batches and the rows quarantined from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from storage.models import BatchRow, QuarantineRow, utcnow
from storage.upsert import upsert


def record_batch(
    session: Session,
    monitor_id: int,
    interval_start: datetime,
    interval_end: datetime,
    *,
    row_count: int,
    landing_path: str,
    content_sha256: str,
    quarantined: list[dict[str, Any]],
) -> int:
    """Record (or replace) one interval's batch and its quarantine; return the batch id.

    ``quarantined`` holds dicts with ``source``, ``row_number``, ``reason`` and ``row``.
    Re-recording an interval replaces the earlier batch row and quarantine rows.
    """
    key = {"monitor_id": monitor_id, "interval_start": interval_start, "interval_end": interval_end}
    upsert(
        session,
        BatchRow.__table__,
        list(key),
        [
            {
                **key,
                "row_count": row_count,
                "quarantined_count": len(quarantined),
                "landing_path": landing_path,
                "content_sha256": content_sha256,
                "ingested_at": utcnow(),
            }
        ],
    )
    batch_id = session.scalars(select(BatchRow.id).filter_by(**key)).one()
    session.execute(delete(QuarantineRow).where(QuarantineRow.batch_id == batch_id))
    if quarantined:
        session.execute(
            insert(QuarantineRow),
            [{**row, "monitor_id": monitor_id, "batch_id": batch_id} for row in quarantined],
        )
    return batch_id


def find_batch(
    session: Session, monitor_id: int, interval_start: datetime, interval_end: datetime
) -> BatchRow | None:
    """The batch of exactly this interval, or None."""
    return session.scalars(
        select(BatchRow).filter_by(
            monitor_id=monitor_id, interval_start=interval_start, interval_end=interval_end
        )
    ).one_or_none()


def batches_overlapping(
    session: Session, monitor_id: int, start: datetime, end: datetime
) -> list[BatchRow]:
    """Batches whose interval overlaps ``[start, end)``, oldest first."""
    return list(
        session.scalars(
            select(BatchRow)
            .where(
                BatchRow.monitor_id == monitor_id,
                BatchRow.interval_start < end,
                BatchRow.interval_end > start,
            )
            .order_by(BatchRow.interval_start)
        )
    )


def latest_batches(session: Session, monitor_id: int, count: int) -> list[BatchRow]:
    """The ``count`` most recent batches, oldest first."""
    newest = session.scalars(
        select(BatchRow)
        .where(BatchRow.monitor_id == monitor_id)
        .order_by(BatchRow.interval_end.desc())
        .limit(count)
    )
    return sorted(newest, key=lambda batch: batch.interval_start)


def quarantine_rows(session: Session, batch_id: int) -> list[QuarantineRow]:
    """The rows quarantined from one batch, in source order."""
    return list(
        session.scalars(
            select(QuarantineRow)
            .where(QuarantineRow.batch_id == batch_id)
            .order_by(QuarantineRow.source, QuarantineRow.row_number)
        )
    )
