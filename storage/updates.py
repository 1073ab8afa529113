"""Online updates of model versions: which update scores a batch, and recording a new one.

One rule serves scoring and lineage: a batch ``[start, end)`` is scored by its version's
newest update whose learned batch ended at or before ``start`` (none: the version as
trained). Scoring a batch again, or a partition of it, therefore uses the same parameters,
and every stored score can be traced to them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import ModelUpdateRow


def update_in_effect(session: Session, model_id: int, start: datetime) -> ModelUpdateRow | None:
    """The update of model ``model_id`` that scores a batch starting at ``start``."""
    return session.scalars(
        select(ModelUpdateRow)
        .where(ModelUpdateRow.model_id == model_id, ModelUpdateRow.learned_end <= start)
        .order_by(ModelUpdateRow.learned_end.desc())
        .limit(1)
    ).first()


def newest_update(session: Session, model_id: int) -> ModelUpdateRow | None:
    """Model ``model_id``'s newest update, or None."""
    return session.scalars(
        select(ModelUpdateRow)
        .where(ModelUpdateRow.model_id == model_id)
        .order_by(ModelUpdateRow.number.desc())
        .limit(1)
    ).first()


def update_counts(session: Session, model_ids: list[int]) -> dict[int, int]:
    """How many online updates each of ``model_ids`` has had."""
    rows = session.execute(
        select(ModelUpdateRow.model_id, func.count())
        .where(ModelUpdateRow.model_id.in_(model_ids))
        .group_by(ModelUpdateRow.model_id)
    )
    return {model_id: count for model_id, count in rows}


def record_update(session: Session, update: ModelUpdateRow) -> ModelUpdateRow:
    """Store ``update`` (numbered by the caller: the next of its model's)."""
    session.add(update)
    session.flush()
    return update
