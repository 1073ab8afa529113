"""Validating raw source rows: typed accepted rows out, every rejected row with a reason.

A missing column is an error for the whole batch (no row can be accepted without it). Row
problems quarantine the row: an unparsable timestamp, a missing entity, a feature that is
not a number or infinite, and a repeated (entity, timestamp), where the first occurrence is
kept. A missing feature value quarantines its row too, unless the monitor says
``validation.missing_features: keep``: then the row lands with NaN for the detector to
handle, and only a row with every feature missing is quarantined. Accepted rows come back
sorted by entity and time.

An entity's key is unambiguous: several entity columns' values are joined with ``/`` after
escaping ``\\`` and ``/`` with ``\\``, so ("eu", "a/b") and ("eu/a", "b") stay two entities;
the duplicate check compares those keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from atalaia.config import Monitor
from atalaia.errors import SourceError
from atalaia.sources import ROW, SOURCE

ENTITY_SEPARATOR = "/"
ENTITY_ESCAPE = "\\"
# The column in which a frame carries its entity keys once built (``with_entity_keys``).
ENTITY_KEY = "__atalaia_entity__"


@dataclass
class Validated:
    """The outcome of validating one interval's rows."""

    accepted: pd.DataFrame
    quarantined: list[dict[str, Any]] = field(default_factory=list)


def validate(raw: pd.DataFrame, monitor: Monitor, start: datetime, end: datetime) -> Validated:
    """Split ``raw`` into the interval's accepted rows and its quarantined rows."""
    _require_columns(raw, monitor)
    reasons = pd.Series("", index=raw.index, dtype=object)

    stamps = _parse_timestamps(raw[monitor.timestamp])
    unparsable = stamps.isna()
    reasons[unparsable] = [
        f"timestamp {monitor.timestamp}: cannot parse {value!r}"
        for value in raw.loc[unparsable, monitor.timestamp]
    ]
    in_interval = unparsable | ((stamps >= start) & (stamps < end))
    raw, stamps, reasons = raw[in_interval], stamps[in_interval], reasons[in_interval]

    typed = pd.DataFrame({monitor.timestamp: stamps}, index=raw.index)
    for column in monitor.entities:
        values = raw[column]
        missing = values.isna() | (values.astype(str).str.strip() == "")
        _add_reason(reasons, missing, f"entity {column}: missing")
        typed[column] = values.astype(str).str.strip()
    keep_missing = monitor.validation.missing_features == "keep"
    for column in monitor.features:
        typed[column] = _parse_feature(raw[column], column, reasons, keep_missing)
    if keep_missing:
        _add_reason(reasons, raw[monitor.features].isna().all(axis=1), "every feature missing")

    ok = reasons == ""
    key_columns = [*monitor.entities, monitor.timestamp]
    valid = typed[ok]
    keys = [entity_keys(valid, monitor), valid[monitor.timestamp]]
    first = valid.index.to_series().groupby(keys).transform("first")
    repeats = first[first != first.index]
    _add_reason(
        reasons,
        pd.Series(True, index=repeats.index),
        pd.Series(
            [
                f"duplicate of row {raw.at[first_row, ROW]}"
                + (
                    ""
                    if raw.at[first_row, SOURCE] == raw.at[row, SOURCE]
                    else f" of {raw.at[first_row, SOURCE]}"
                )
                + f" (same {', '.join(key_columns)})"
                for row, first_row in repeats.items()
            ],
            index=repeats.index,
            dtype=object,
        ),
    )
    ok = reasons == ""

    accepted = (
        typed[ok]
        .sort_values([*monitor.entities, monitor.timestamp], kind="stable")
        .reset_index(drop=True)
    )
    return Validated(accepted=accepted, quarantined=_quarantine_records(raw[~ok], reasons[~ok]))


def rows_in_interval(raw: pd.DataFrame, monitor: Monitor, start: datetime, end: datetime) -> int:
    """How many raw rows have a timestamp in ``[start, end)``, whatever their other values."""
    if raw.empty:
        return 0
    _require_columns(raw, monitor)
    stamps = _parse_timestamps(raw[monitor.timestamp])
    return int(((stamps >= start) & (stamps < end)).sum())


def entity_keys(frame: pd.DataFrame, monitor: Monitor) -> pd.Series:
    """Each row's entity key ("" without entities): the value of a single entity column, or
    the values of several joined with ``/``, each with ``\\`` and ``/`` escaped by ``\\``, so
    different value tuples never share a key. A frame that carries its keys already
    (:func:`with_entity_keys`) gives them back without building them again."""
    if ENTITY_KEY in frame.columns:
        return frame[ENTITY_KEY]
    if not monitor.entities:
        return pd.Series("", index=frame.index, dtype=object)
    if len(monitor.entities) == 1:
        return frame[monitor.entities[0]].astype(str)
    parts = [_escaped(frame[column].astype(str)) for column in monitor.entities]
    keys = parts[0]
    for part in parts[1:]:
        keys = keys + ENTITY_SEPARATOR + part
    return keys


def with_entity_keys(frame: pd.DataFrame, monitor: Monitor) -> pd.DataFrame:
    """``frame`` with its entity keys as a column, so the steps of one job that each need
    them (selecting a partition's entities, matching look-back rows, the detector's input)
    build them once."""
    if ENTITY_KEY in frame.columns:
        return frame
    return frame.assign(**{ENTITY_KEY: entity_keys(frame, monitor)})


def _escaped(values: pd.Series) -> pd.Series:
    return values.str.replace(ENTITY_ESCAPE, ENTITY_ESCAPE * 2, regex=False).str.replace(
        ENTITY_SEPARATOR, ENTITY_ESCAPE + ENTITY_SEPARATOR, regex=False
    )


def _require_columns(raw: pd.DataFrame, monitor: Monitor) -> None:
    needed = [monitor.timestamp, *monitor.entities, *monitor.features]
    missing = [column for column in needed if column not in raw.columns]
    if missing:
        sources = sorted(set(raw[SOURCE])) if SOURCE in raw and len(raw) else ["the source"]
        raise SourceError(
            f"monitor {monitor.name}: column(s) {', '.join(missing)} missing from "
            f"{', '.join(sources[:3])}{' and others' if len(sources) > 3 else ''}"
        )


def _parse_timestamps(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values)
        return stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps.dt.tz_convert("UTC")
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def _parse_feature(
    values: pd.Series, column: str, reasons: pd.Series, keep_missing: bool
) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype(np.float64)
    missing = values.isna()
    if not keep_missing:
        _add_reason(reasons, missing, f"feature {column}: missing")
    not_number = numbers.isna() & ~missing
    _add_reason(
        reasons, not_number, f"feature {column}: not a number " + values.map(repr).astype(str)
    )
    _add_reason(reasons, np.isinf(numbers), f"feature {column}: infinite")
    return numbers


def _add_reason(reasons: pd.Series, mask: pd.Series, reason: str | pd.Series) -> None:
    """Record ``reason`` (one text, or one per row) for the rows in ``mask``, after any other."""
    mask = mask.reindex(reasons.index, fill_value=False).astype(bool)
    if not mask.any():
        return
    text = reason[mask[mask].index] if isinstance(reason, pd.Series) else reason
    earlier = reasons[mask]
    reasons[mask] = earlier.where(earlier == "", earlier + "; ") + text


def _quarantine_records(rows: pd.DataFrame, reasons: pd.Series) -> list[dict[str, Any]]:
    columns = [c for c in rows.columns if c not in (SOURCE, ROW)]
    return [
        {
            "source": str(row[SOURCE]),
            "row_number": int(row[ROW]),
            "reason": reason,
            "row": {c: None if pd.isna(row[c]) else str(row[c]) for c in columns},
        }
        for (_, row), reason in zip(rows.iterrows(), reasons, strict=True)
    ]
