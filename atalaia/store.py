"""The pipeline's handle on the SQL store: one checked engine per URL per process."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine

from atalaia.errors import StoreError
from storage import migrate
from storage.engine import StoreUnavailable, open_engine, redact


@cache
def engine(url: str) -> Engine:
    """A reachable engine for ``url`` (cached); raise StoreError naming the redacted URL."""
    try:
        return open_engine(url)
    except StoreUnavailable as exc:
        raise StoreError(str(exc)) from exc


def upgrade(url: str) -> None:
    """Bring the store at ``url`` to the newest schema."""
    migrate.upgrade(engine(url))


def require_current(url: str) -> Engine:
    """The engine for ``url``, after checking its schema is current."""
    store = engine(url)
    if not migrate.is_current(store):
        raise StoreError(
            f"store {redact(url)} is not at the current schema: run `atalaia db upgrade`"
        )
    return store
