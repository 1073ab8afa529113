"""Reading a files source: Parquet row groups outside the interval are skipped, rows keep
their numbers in the file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from atalaia.config import load_monitor
from atalaia.sources import ROW, SOURCE, read_interval
from atalaia.validation import validate
from tests.conftest import write_monitor

BODY = """\
source: {{kind: files, path: '{folder}/*.parquet'}}
timestamp: ts
entities: [host]
features: [cpu]
frequency: 1h
baseline: {{last_intervals: 1}}
"""


def day(n: int) -> datetime:
    return datetime(2026, 3, n, tzinfo=UTC)


@pytest.fixture
def hours(tmp_path: Path):
    """Four days of one host, hourly, in row groups of 24 rows; one cpu value missing on day 3
    and one timestamp missing on day 4."""
    stamps = pd.date_range(day(1), periods=4 * 24, freq="1h")
    frame = pd.DataFrame({"ts": stamps, "host": "a", "cpu": np.arange(4 * 24, dtype=float)})
    frame.loc[50, "cpu"] = np.nan
    frame.loc[80, "ts"] = pd.NaT
    frame.to_parquet(tmp_path / "hours.parquet", index=False, row_group_size=24)
    return load_monitor(write_monitor(tmp_path, "hours", BODY.format(folder=tmp_path)))


def test_only_row_groups_that_may_hold_the_interval_are_read(hours, monkeypatch) -> None:
    read: list[list[int]] = []
    original = pq.ParquetFile.read_row_groups

    def spy(self, groups, *args, **kwargs):
        read.append(list(groups))
        return original(self, groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    second = read_interval(hours, day(2), day(3))
    third = read_interval(hours, day(3), day(4))
    # day 4's group has a missing timestamp: read whatever the interval, to quarantine it
    assert read == [[1, 3], [2, 3]]
    assert second[ROW].tolist() == [*range(24, 48), *range(72, 96)]
    assert set(second[SOURCE]) == {str(Path(hours.source.path).parent / "hours.parquet")}

    validated = validate(third, hours, day(3), day(4))
    assert len(validated.accepted) == 23
    reasons = {q["row_number"]: q["reason"] for q in validated.quarantined}
    assert reasons[50] == "feature cpu: missing"
    assert reasons[80].startswith("timestamp ts: cannot parse")


def test_an_interval_outside_every_row_group_reads_no_rows(hours) -> None:
    nothing = read_interval(hours, day(10), day(11))
    assert len(nothing) == 24  # only day 4's group, for its missing timestamp
    validated = validate(nothing, hours, day(10), day(11))
    assert validated.accepted.empty and len(validated.quarantined) == 1
