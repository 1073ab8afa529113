"""The pipeline's handle on the SQL store: one checked engine per URL per process."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine

from atalaia.errors import StoreError
from atalaia.settings import Settings
from storage import migrate
from storage.engine import StoreUnavailable, open_engine, redact


@cache
def engine(url: str) -> Engine:
    """A reachable engine for ``url`` (cached); raise StoreError naming the redacted URL.

    A PostgreSQL server gets ``ATALAIA_STORE_CONNECT_TIMEOUT`` seconds to answer."""
    try:
        return open_engine(url, Settings.from_env().connect_timeout)
    except StoreUnavailable as exc:
        hint = " (ATALAIA_STORE_CONNECT_TIMEOUT sets how long to wait)" if exc.timed_out else ""
        raise StoreError(f"{exc}{hint}") from exc


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
