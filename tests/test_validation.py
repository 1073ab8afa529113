"""Validation of raw rows: each kind of bad input is quarantined with a reason, or refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atalaia.config import load_monitor
from atalaia.errors import SourceError
from atalaia.sources import ROW, SOURCE
from atalaia.validation import entity_keys, validate
from tests.conftest import write_monitor

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 2, tzinfo=UTC)

BODY = """\
source: {kind: files, path: '*.csv'}
timestamp: ts
entities: [host]
features: [cpu, mem]
frequency: 1h
baseline: {last_intervals: 1}
"""


@pytest.fixture
def monitor(tmp_path: Path):
    return load_monitor(write_monitor(tmp_path, "hosts", BODY))


def raw(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["ts", "host", "cpu", "mem"], dtype=object)
    frame[SOURCE] = "day.csv"
    frame[ROW] = range(len(frame))
    return frame


def reasons(result) -> dict[int, str]:
    return {row["row_number"]: row["reason"] for row in result.quarantined}


def test_clean_rows_are_typed_and_sorted_by_entity_then_time(monitor) -> None:
    result = validate(
        raw(
            [
                ("2026-03-01T02:00:00Z", "b", "1.5", "3"),
                ("2026-03-01T01:00:00Z", "b", "2.5", "4"),
                ("2026-03-01T01:00:00+01:00", "a", "7", "8"),
            ]
        ),
        monitor,
        START,
        END,
    )
    assert result.quarantined == []
    accepted = result.accepted
    assert list(accepted["host"]) == ["a", "b", "b"]
    assert list(accepted["ts"]) == [
        pd.Timestamp("2026-03-01T00:00:00Z"),
        pd.Timestamp("2026-03-01T01:00:00Z"),
        pd.Timestamp("2026-03-01T02:00:00Z"),
    ]
    assert accepted["cpu"].dtype == "float64"
    assert list(entity_keys(accepted, monitor)) == ["a", "b", "b"]


def test_each_bad_row_is_quarantined_with_its_reason_and_raw_values(monitor) -> None:
    result = validate(
        raw(
            [
                ("2026-03-01T01:00:00Z", "a", "1", "1"),  # fine
                ("yesterday", "a", "1", "1"),  # unparsable timestamp
                ("2026-03-01T02:00:00Z", "a", "n/a", "1"),  # text in a number column
                ("2026-03-01T03:00:00Z", "a", None, "1"),  # missing value
                ("2026-03-01T04:00:00Z", "a", "inf", "1"),  # infinite
                ("2026-03-01T05:00:00Z", None, "1", "1"),  # missing entity
                ("2026-03-01T01:00:00Z", "a", "9", "9"),  # duplicate of row 0
                ("2026-03-01T06:00:00Z", "a", "x", None),  # two problems at once
            ]
        ),
        monitor,
        START,
        END,
    )
    assert len(result.accepted) == 1
    assert result.accepted["cpu"].iloc[0] == 1.0  # the first of the duplicates is kept
    assert reasons(result) == {
        1: "timestamp ts: cannot parse 'yesterday'",
        2: "feature cpu: not a number 'n/a'",
        3: "feature cpu: missing",
        4: "feature cpu: infinite",
        5: "entity host: missing",
        6: "duplicate of row 0 (same host, ts)",
        7: "feature cpu: not a number 'x'; feature mem: missing",
    }
    by_row = {row["row_number"]: row for row in result.quarantined}
    assert by_row[2]["row"] == {"ts": "2026-03-01T02:00:00Z", "host": "a", "cpu": "n/a", "mem": "1"}
    assert all(row["source"] == "day.csv" for row in result.quarantined)


def test_rows_outside_the_interval_belong_to_other_batches(monitor) -> None:
    result = validate(
        raw(
            [
                ("2026-02-28T23:59:59Z", "a", "1", "1"),
                ("2026-03-01T00:00:00Z", "a", "1", "1"),
                ("2026-03-02T00:00:00Z", "a", "1", "1"),
            ]
        ),
        monitor,
        START,
        END,
    )
    assert len(result.accepted) == 1
    assert result.quarantined == []


def test_a_missing_column_refuses_the_batch_naming_column_and_source(monitor) -> None:
    frame = raw([("2026-03-01T01:00:00Z", "a", "1", "1")]).drop(columns=["mem"])
    with pytest.raises(SourceError, match=r"column\(s\) mem missing from day.csv"):
        validate(frame, monitor, START, END)


def test_native_parquet_types_are_accepted(monitor) -> None:
    frame = raw([]).astype({"cpu": float})
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2026-03-01 01:00", "2026-03-01 02:00"]),
            "host": ["a", "a"],
            "cpu": [1.0, float("nan")],
            "mem": [2, 3],
            SOURCE: "day.parquet",
            ROW: [0, 1],
        }
    )
    result = validate(frame, monitor, START, END)
    assert len(result.accepted) == 1
    assert reasons(result) == {1: "feature cpu: missing"}


def test_missing_features_can_be_kept_for_the_detector(tmp_path: Path) -> None:
    keeping = load_monitor(
        write_monitor(tmp_path, "keeping", BODY + "validation: {missing_features: keep}\n")
    )
    result = validate(
        raw(
            [
                ("2026-03-01T01:00:00Z", "a", None, "1"),  # kept with cpu NaN
                ("2026-03-01T02:00:00Z", "a", None, None),  # nothing left to score
                ("2026-03-01T03:00:00Z", "a", "x", "1"),  # text is still refused
            ]
        ),
        keeping,
        START,
        END,
    )
    assert len(result.accepted) == 1
    assert np.isnan(result.accepted["cpu"].iloc[0]) and result.accepted["mem"].iloc[0] == 1.0
    assert reasons(result) == {1: "every feature missing", 2: "feature cpu: not a number 'x'"}
