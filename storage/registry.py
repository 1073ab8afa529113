"""The model registry: versions per monitor, with one champion at a time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import ModelRow, utcnow
from storage.types import ModelStatus


def next_version(session: Session, monitor_id: int) -> int:
    """The version number the next model of this monitor gets (1 for the first)."""
    newest = session.scalar(
        select(func.max(ModelRow.version)).where(ModelRow.monitor_id == monitor_id)
    )
    return (newest or 0) + 1


def add_model(session: Session, **fields: Any) -> ModelRow:
    """Insert a model version (status ``candidate`` unless given) and return it."""
    fields.setdefault("status", ModelStatus.CANDIDATE)
    row = ModelRow(**fields)
    session.add(row)
    session.flush()
    return row


def champion(session: Session, monitor_id: int) -> ModelRow | None:
    """The monitor's champion, the version that scores its batches, or None."""
    return session.scalars(
        select(ModelRow).where(
            ModelRow.monitor_id == monitor_id, ModelRow.status == ModelStatus.CHAMPION
        )
    ).one_or_none()


def promote(session: Session, model: ModelRow, reason: str) -> None:
    """Make ``model`` the champion; the previous champion is retired and remembered.

    ``model.previous_champion`` becomes the retired champion's version, so a rollback can
    restore it.
    """
    current = champion(session, model.monitor_id)
    if current is not None and current.id != model.id:
        current.status = ModelStatus.RETIRED
        current.status_reason = f"replaced by version {model.version}"
        session.flush()
        model.previous_champion = current.version
    model.status, model.status_reason, model.promoted_at = ModelStatus.CHAMPION, reason, utcnow()
    session.flush()


def rollback(session: Session, monitor_id: int, reason: str) -> ModelRow:
    """Retire the champion and restore the version it replaced; return the restored version.

    Raise LookupError when there is no champion, or it replaced none.
    """
    current = champion(session, monitor_id)
    if current is None:
        raise LookupError("there is no champion to roll back")
    if current.previous_champion is None:
        raise LookupError(f"champion version {current.version} replaced no earlier champion")
    previous = find_model(session, monitor_id, current.previous_champion)
    if previous is None:
        raise LookupError(f"version {current.previous_champion} is no longer in the registry")
    current.status = ModelStatus.RETIRED
    current.status_reason = f"rolled back to version {previous.version}: {reason}"
    session.flush()
    previous.status = ModelStatus.CHAMPION
    previous.status_reason = f"restored by rollback from version {current.version}: {reason}"
    previous.promoted_at = utcnow()
    session.flush()
    return previous


def find_model(session: Session, monitor_id: int, version: int) -> ModelRow | None:
    """Version ``version`` of the monitor, or None."""
    return session.scalars(
        select(ModelRow).where(ModelRow.monitor_id == monitor_id, ModelRow.version == version)
    ).one_or_none()


def list_models(session: Session, monitor_id: int) -> list[ModelRow]:
    """Every version of the monitor, newest first."""
    return list(
        session.scalars(
            select(ModelRow)
            .where(ModelRow.monitor_id == monitor_id)
            .order_by(ModelRow.version.desc())
        )
    )
