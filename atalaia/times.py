"""Times a person types on the command line: one parser, one list of accepted forms.

Accepted: ISO 8601 (``2026-01-13``, ``2026-01-13T05:00``, ``2026-01-13 05:00:00+01:00``),
the same with unpadded numbers (``2026-1-13``, ``2026-1-13 5:00``), ``2026/01/13``, a
day-first or month-first date that only one reading makes valid (``13/01/2026``,
``01/13/2026``, also with ``.`` or ``-``), and ``now``, ``today``, ``yesterday`` and
``tomorrow`` (midnight UTC). A time without a zone is UTC. A date such as ``03/04/2026``,
valid both ways, is refused as ambiguous.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from atalaia.config import as_utc

EXPECTED = (
    "expected a date or time such as 2026-01-13, 2026-01-13T05:00 or 2026-01-13 05:00+01:00 "
    "(UTC unless a zone is given), 13/01/2026, today or yesterday"
)
_TIME = r"(?:[T ](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}(?:\.\d+)?))?)?"
_ZONE = r"\s*(?P<zone>Z|[+-]\d{2}:?\d{2})?"
_TWO = r"\d{1,2}"
_YEAR_FIRST = re.compile(rf"(?P<year>\d{{4}})[-/](?P<a>{_TWO})[-/](?P<b>{_TWO}){_TIME}{_ZONE}")
_YEAR_LAST = re.compile(rf"(?P<a>{_TWO})[/.-](?P<b>{_TWO})[/.-](?P<year>\d{{4}}){_TIME}{_ZONE}")
_DAYS = {"today": 0, "yesterday": -1, "tomorrow": 1}


def parse_time(text: str) -> datetime:
    """``text`` as an aware UTC datetime; anything not accepted raises ValueError saying what
    is expected."""
    value = text.strip()
    word = value.lower()
    if word == "now":
        return datetime.now(UTC)
    if word in _DAYS:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + timedelta(days=_DAYS[word])
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        pass
    if match := _YEAR_FIRST.fullmatch(value):
        return _built(match, month=int(match["a"]), day=int(match["b"]))
    if match := _YEAR_LAST.fullmatch(value):
        first, second = int(match["a"]), int(match["b"])
        if first > 12 or first == second:
            return _built(match, month=second, day=first)
        if second > 12:
            return _built(match, month=first, day=second)
        raise ValueError(
            f"ambiguous: day {first} of month {second}, or month {first} day {second}? "
            "write it as YYYY-MM-DD"
        )
    raise ValueError(EXPECTED)


def _built(match: re.Match[str], *, month: int, day: int) -> datetime:
    second = float(match["second"] or 0)
    zone = match["zone"] or ""
    try:
        stamp = datetime(
            int(match["year"]),
            month,
            day,
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            int(second),
            round((second % 1) * 1e6),
        )
        if zone and zone != "Z":
            stamp = datetime.fromisoformat(f"{stamp:%Y-%m-%dT%H:%M:%S}{zone}")
    except ValueError as exc:
        raise ValueError(f"not a valid date or time: {exc}") from exc
    return as_utc(stamp)
