"""Events: the stored incidents of a monitor, replaced span by span as scores arrive."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from storage.models import EventRow


def events_overlapping(
    session: Session,
    monitor_id: int,
    start: datetime,
    end: datetime,
    *,
    model_id: int | None = None,
) -> list[EventRow]:
    """Events with ``start_ts < end`` and ``end_ts >= start``, oldest first."""
    query = select(EventRow).where(
        EventRow.monitor_id == monitor_id, EventRow.start_ts < end, EventRow.end_ts >= start
    )
    if model_id is not None:
        query = query.where(EventRow.model_id == model_id)
    return list(session.scalars(query.order_by(EventRow.start_ts, EventRow.entity)))


def replace_events(
    session: Session,
    monitor_id: int,
    model_id: int,
    start: datetime,
    end: datetime,
    events: list[dict[str, Any]],
) -> None:
    """Replace the model's events overlapping ``[start, end)`` with ``events``.

    Each event dict has ``entity``, ``start_ts``, ``end_ts``, ``peak_ts``, ``peak_z``,
    ``anomalies``, ``is_open`` and ``top_features``.
    """
    session.execute(
        delete(EventRow).where(
            EventRow.monitor_id == monitor_id,
            EventRow.model_id == model_id,
            EventRow.start_ts < end,
            EventRow.end_ts >= start,
        )
    )
    if events:
        session.execute(
            insert(EventRow),
            [{**event, "monitor_id": monitor_id, "model_id": model_id} for event in events],
        )
