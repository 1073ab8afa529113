"""Events: the stored incidents of a monitor, replaced span by span as scores arrive.

An event keeps its id while it grows or changes (it is known by its monitor, model version,
entity and start), so links to an event and alerts about it stay valid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
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
    ``anomalies``, ``is_open`` and ``top_features``. A stored event with the same entity and
    start is updated in place; the others are deleted.
    """
    stored = session.scalars(
        select(EventRow).where(
            EventRow.monitor_id == monitor_id,
            EventRow.model_id == model_id,
            EventRow.start_ts < end,
            EventRow.end_ts >= start,
        )
    )
    by_key = {(row.entity, row.start_ts): row for row in stored}
    kept = [(by_key.pop((event["entity"], event["start_ts"]), None), event) for event in events]
    for stale in by_key.values():
        session.delete(stale)
    session.flush()
    for row, event in kept:
        if row is None:
            session.add(EventRow(**event, monitor_id=monitor_id, model_id=model_id))
        else:
            for name, value in event.items():
                setattr(row, name, value)
    session.flush()
