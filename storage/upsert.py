"""``INSERT .. ON CONFLICT DO UPDATE`` for the backends the store supports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert


def upsert_statement(
    dialect: str, table: Table, key: Sequence[str], columns: Iterable[str]
) -> Insert:
    """An insert into ``table`` that, where ``key`` already exists, updates ``columns``."""
    if dialect == "postgresql":
        insert = postgresql.insert(table)
    elif dialect == "sqlite":
        insert = sqlite.insert(table)
    else:
        raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {dialect}")
    updates = {name: insert.excluded[name] for name in columns if name not in key}
    return insert.on_conflict_do_update(index_elements=list(key), set_=updates)


def upsert(session: Session, table: Table, key: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table``, replacing the other given columns where ``key`` exists."""
    if rows:
        dialect = session.get_bind().dialect.name
        session.execute(upsert_statement(dialect, table, key, rows[0]), rows)
