"""Events: the stored incidents of a monitor, replaced span by span as scores arrive.

An event keeps its id while it grows or changes (it is known by its monitor, model version,
entity and start), so links to an event and alerts about it stay valid.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from storage.models import EventRow

# New events written per INSERT statement.
INSERT_CHUNK = 5_000


class FeatureShare(TypedDict):
    """One of an event's top features: its summed attribution and its mean share."""

    feature: str
    contribution: float
    share: float


class Event(TypedDict):
    """An event as scoring forms it (``atalaia.events``), the store keeps it
    (:func:`replace_events`, as an ``EventRow``) and a score run reports and alerts on it
    (``atalaia.jobs``, ``atalaia.alerting``): one entity's run of anomalies."""

    entity: str
    start_ts: datetime
    end_ts: datetime
    peak_ts: datetime
    peak_z: float
    anomalies: int
    is_open: bool
    top_features: list[FeatureShare]


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
    events: list[Event],
) -> None:
    """Replace the model's events overlapping ``[start, end)`` with ``events``.

    A stored event with the same entity and start is updated in place; the others are
    deleted.
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
        if row is not None:
            for name, value in event.items():
                setattr(row, name, value)
    session.flush()
    # new events go in by bulk INSERT, INSERT_CHUNK at a time, not as ORM objects: a large
    # batch forms tens of thousands, and their objects held the most memory of a score run
    fresh = [event for row, event in kept if row is None]
    for first in range(0, len(fresh), INSERT_CHUNK):
        rows = [
            {**event, "monitor_id": monitor_id, "model_id": model_id}
            for event in fresh[first : first + INSERT_CHUNK]
        ]
        session.execute(insert(EventRow), rows)
