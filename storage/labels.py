"""Labels: known incidents given by people, excluded from baselines and used to evaluate."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import LabelRow


def add_label(
    session: Session,
    monitor_id: int,
    start: datetime,
    end: datetime,
    *,
    entity: str | None = None,
    kind: str = "incident",
    note: str = "",
) -> int:
    """Record a labelled span ``[start, end]`` (all entities when ``entity`` is None)."""
    label = LabelRow(
        monitor_id=monitor_id, entity=entity, start_ts=start, end_ts=end, kind=kind, note=note
    )
    session.add(label)
    session.flush()
    return label.id


def labels_overlapping(
    session: Session, monitor_id: int, start: datetime, end: datetime
) -> list[LabelRow]:
    """Labels of the monitor that overlap ``[start, end)``."""
    return list(
        session.scalars(
            select(LabelRow)
            .where(
                LabelRow.monitor_id == monitor_id,
                LabelRow.start_ts < end,
                LabelRow.end_ts >= start,
            )
            .order_by(LabelRow.start_ts)
        )
    )
