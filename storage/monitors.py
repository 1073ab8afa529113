"""The monitors table: one row per monitor name, with its last seen configuration."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import MonitorRow


def ensure_monitor(session: Session, name: str, config: dict[str, Any]) -> int:
    """The id of monitor ``name``, creating its row or updating its configuration."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
    row = session.scalars(select(MonitorRow).where(MonitorRow.name == name)).one_or_none()
    if row is None:
        row = MonitorRow(name=name, config=config, config_sha256=digest)
        session.add(row)
        session.flush()
    elif row.config_sha256 != digest:
        row.config, row.config_sha256 = config, digest
    return row.id


def monitor_id(session: Session, name: str) -> int | None:
    """The id of monitor ``name``, or None when no job has run for it yet."""
    return session.scalars(select(MonitorRow.id).where(MonitorRow.name == name)).one_or_none()
