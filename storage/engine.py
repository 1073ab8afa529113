"""Opening the store: engines, sessions, and URLs that never show their password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


class StoreUnavailable(Exception):
    """The store's URL is invalid or its database cannot be reached."""


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, safe for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable store URL>"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API objects)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_engine(url: str) -> Engine:
    """An engine for ``url``, checked with one round trip; raise StoreUnavailable otherwise.

    A SQLite file's folder is created if needed; foreign keys are enforced on SQLite.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailable(f"store URL is not a valid SQLAlchemy URL: {redact(url)}") from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(parsed, pool_pre_ping=True)
    except Exception as exc:  # a missing driver, a bad option
        raise StoreUnavailable(f"cannot open store {redact(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        if parsed.password:
            reason = reason.replace(parsed.password, "***")
        raise StoreUnavailable(f"cannot reach store {redact(url)}: {reason}") from exc
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on error."""
    with sessionmaker(engine, expire_on_commit=False).begin() as session:
        yield session
