"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime, String, TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always aware UTC in Python, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite, which has no time zones, stores the UTC
    wall-clock time, and the zone is put back on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store takes aware UTC timestamps")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ModelStatus(StrEnum):
    """Where a model version stands in its monitor's registry."""

    CANDIDATE = "candidate"
    CHAMPION = "champion"
    RETIRED = "retired"


class RunStatus(StrEnum):
    """How a run of a job ended, or that it is still running.

    ``abandoned``: its process died without finishing it; ``refused``: the command asked for
    something impossible (a usage error, not a failure of the job).
    """

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    ABANDONED = "abandoned"
    REFUSED = "refused"


class StatusType(TypeDecorator[StrEnum]):
    """A status stored as its text and read back as a member of ``enum``; a value outside
    the enum is refused before it reaches the database (whose CHECK constraint refuses it
    too, see :func:`status_check`)."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[StrEnum], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enum = enum

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        try:
            return self.enum(value).value
        except ValueError:
            allowed = ", ".join(self.enum)
            raise ValueError(f"status {value!r} is not one of {allowed}") from None

    def process_result_value(self, value: str | None, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


def status_check(enum: type[StrEnum], column: str = "status") -> str:
    """The SQL condition a status column's CHECK constraint holds: one of ``enum``'s values."""
    return f"{column} IN ({', '.join(repr(member.value) for member in enum)})"
