"""Opening the store: engines, sessions, and URLs that never show their password."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

# Seconds a PostgreSQL server may take to answer a new connection before it is given up.
DEFAULT_CONNECT_TIMEOUT = 10.0
# A refused connection (a server restarting) is tried again this many times, a second apart;
# a server that does not answer in time is not: waiting again would double the wait.
RETRIES = 2
_WORTH_RETRYING = ("connection refused", "starting up", "shutting down", "not yet accepting")


class StoreUnavailable(Exception):
    """The store's URL is invalid or its database cannot be reached."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


def connect_args(url: str, connect_timeout: float) -> dict[str, Any]:
    """Driver arguments that bound how long opening a connection to ``url`` may take."""
    if make_url(url).get_backend_name() == "postgresql":
        return {"connect_timeout": max(1, round(connect_timeout))}
    return {}


def redact(url: str) -> str:
    """``url`` (a store's, a source's, a Pushgateway's or Alertmanager's) with the password of
    its user info replaced by ``***``, safe for logs and error messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}"))


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API objects)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_engine(url: str, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> Engine:
    """An engine for ``url``, checked with one round trip; raise StoreUnavailable otherwise.

    A SQLite file's folder is created if needed; foreign keys are enforced on SQLite. A
    PostgreSQL server gets ``connect_timeout`` seconds to answer each new connection; a
    refused first connection is tried ``RETRIES`` more times.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailable(f"store URL is not a valid SQLAlchemy URL: {redact(url)}") from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(
            parsed, pool_pre_ping=True, connect_args=connect_args(url, connect_timeout)
        )
    except Exception as exc:  # a missing driver, a bad option
        raise StoreUnavailable(f"cannot open store {redact(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    attempt = 0
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return engine
        except OperationalError as exc:
            reason = first_line(exc, parsed.password)
            if attempt < RETRIES and any(word in reason.lower() for word in _WORTH_RETRYING):
                attempt += 1
                time.sleep(1.0)
                continue
            engine.dispose()
            if timed_out := "timeout expired" in reason:
                reason = f"no answer within {max(1, round(connect_timeout))} s"
            raise StoreUnavailable(
                f"cannot reach store {redact(url)}: {reason}", timed_out=timed_out
            ) from exc


def first_line(error: Exception, password: str | None = None) -> str:
    """The first line of a database error's own message (the driver's, not SQLAlchemy's
    statement and parameters), with ``password`` hidden."""
    reason = str(getattr(error, "orig", None) or error).strip()
    reason = reason.splitlines()[0] if reason else type(error).__name__
    return reason.replace(password, "***") if password else reason


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on error."""
    with sessionmaker(engine, expire_on_commit=False).begin() as session:
        yield session
