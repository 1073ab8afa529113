"""The pipeline's handle on the SQL store: one checked engine per URL per process."""

from __future__ import annotations

from sqlalchemy import Engine

from atalaia.errors import StoreError
from storage import migrate
from storage.engine import DEFAULT_CONNECT_TIMEOUT, StoreUnavailable, open_engine, redact

_ENGINES: dict[str, Engine] = {}


def engine(url: str, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> Engine:
    """A reachable engine for ``url``, made once per process; raise StoreError naming the
    redacted URL.

    A PostgreSQL server gets ``connect_timeout`` seconds (the settings'
    ``ATALAIA_STORE_CONNECT_TIMEOUT``) to answer each new connection."""
    found = _ENGINES.get(url)
    if found is not None:
        return found
    try:
        found = _ENGINES[url] = open_engine(url, connect_timeout)
    except StoreUnavailable as exc:
        hint = " (ATALAIA_STORE_CONNECT_TIMEOUT sets how long to wait)" if exc.timed_out else ""
        raise StoreError(f"{exc}{hint}") from exc
    return found


# Forget every engine (tests dispose of one first): ``store.engine.cache_clear()``.
engine.cache_clear = _ENGINES.clear  # type: ignore[attr-defined]


def upgrade(url: str, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
    """Bring the store at ``url`` to the newest schema."""
    migrate.upgrade(engine(url, connect_timeout))


def require_current(url: str, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> Engine:
    """The engine for ``url``, after checking its schema is current."""
    store = engine(url, connect_timeout)
    if not migrate.is_current(store):
        raise StoreError(
            f"store {redact(url)} is not at the current schema: run `atalaia db upgrade`"
        )
    return store
