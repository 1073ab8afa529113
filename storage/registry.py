"""The model registry: versions per monitor, with one champion at a time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.models import ModelRow


def next_version(session: Session, monitor_id: int) -> int:
    """The version number the next model of this monitor gets (1 for the first)."""
    newest = session.scalar(
        select(func.max(ModelRow.version)).where(ModelRow.monitor_id == monitor_id)
    )
    return (newest or 0) + 1


def add_model(session: Session, **fields: Any) -> ModelRow:
    """Insert a model version (status ``candidate`` unless given) and return it."""
    fields.setdefault("status", "candidate")
    row = ModelRow(**fields)
    session.add(row)
    session.flush()
    return row


def champion(session: Session, monitor_id: int) -> ModelRow | None:
    """The monitor's champion, the version that scores its batches, or None."""
    return session.scalars(
        select(ModelRow).where(ModelRow.monitor_id == monitor_id, ModelRow.status == "champion")
    ).one_or_none()


def promote(session: Session, model: ModelRow, reason: str) -> None:
    """Make ``model`` the champion; the previous champion is retired."""
    session.execute(
        update(ModelRow)
        .where(ModelRow.monitor_id == model.monitor_id, ModelRow.status == "champion")
        .values(status="retired", status_reason=f"replaced by version {model.version}")
    )
    model.status, model.status_reason = "champion", reason
    session.flush()


def list_models(session: Session, monitor_id: int) -> list[ModelRow]:
    """Every version of the monitor, newest first."""
    return list(
        session.scalars(
            select(ModelRow)
            .where(ModelRow.monitor_id == monitor_id)
            .order_by(ModelRow.version.desc())
        )
    )
