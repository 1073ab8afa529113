"""Probes: entity keys that could collide, and huge finite values in a scored batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from atalaia import store
from atalaia.settings import Settings
from tests.faults.probe import cli, counts, ok, one_error_line, series, write_series

TWO_KEYS = """\
name: keys
source: {kind: files, path: '${ATALAIA_HOME}/keys/*.csv'}
timestamp: ts
entities: [dc, host]
features: [a, b]
frequency: 1h
baseline: {start: 2026-01-01T00:00:00Z, end: 2026-01-08T00:00:00Z}
calibration: {alpha: 0.05, fraction: 0.3}
"""


def test_entity_values_that_join_alike_stay_two_entities(home: Settings) -> None:
    frame = series(sites=("eu|a/b", "eu/a|b"))
    frame[["dc", "host"]] = frame.pop("site").str.split("|", expand=True)
    write_series(home.home / "keys" / "keys.csv", frame)
    (home.monitors_dir / "keys.yaml").write_text(TWO_KEYS)

    ok(cli("ingest", "keys", "--start", "2026-01-01", "--end", "2026-01-08"))
    ok(cli("ingest", "keys", "--start", "2026-01-08", "--end", "2026-01-11"))
    assert counts(home)["landed"] == len(frame)
    ok(cli("train", "keys"))
    ok(cli("score", "keys", "--start", "2026-01-08", "--end", "2026-01-11"))
    with store.engine(home.store_url).connect() as connection:
        per_entity = dict(
            connection.execute(text("SELECT entity, count(*) FROM scores GROUP BY entity")).all()
        )
    assert per_entity == {"eu/a\\/b": 72, "eu\\/a/b": 72}


@pytest.mark.parametrize("huge", [1e155, 1e200, 1e308, -1e308])
def test_a_huge_finite_value_is_flagged_and_the_rest_of_the_batch_scores(
    home: Settings, huge: float
) -> None:
    frame = series()
    hit = (frame["site"] == "x") & (frame["ts"] == pd.Timestamp("2026-01-09T05:00Z"))
    frame.loc[hit, "a"] = huge
    write_series(home.home / "src" / "series.csv", frame)
    ok(cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-10", "--every", "1D"))
    ok(cli("train", "probe"))
    ok(cli("score", "probe", "--start", "2026-01-09", "--end", "2026-01-10"))
    with store.engine(home.store_url).connect() as connection:
        rows = connection.execute(
            text("SELECT entity, ts, raw_score, z, is_anomaly FROM scores")
        ).all()
    assert len(rows) == 48 == counts(home)["scores"]
    flagged = [row for row in rows if np.isinf(row.raw_score)]
    assert [(row.entity, row.is_anomaly) for row in flagged] == [("x", True)]
    assert all(
        np.isfinite(row.raw_score) and np.isfinite(row.z) for row in rows if row not in flagged
    )


def test_a_huge_value_in_a_smoothed_window_on_postgresql_spoils_only_its_own_steps(
    pg_home: Settings,
) -> None:
    monitor = pg_home.monitors_dir / "probe.yaml"
    monitor.write_text(monitor.read_text() + "detector: {window: 2, smoothing: 2}\n")
    frame = series()
    hit = (frame["site"] == "x") & (frame["ts"] == pd.Timestamp("2026-01-09T05:00Z"))
    frame.loc[hit, "b"] = 1e300
    write_series(pg_home.home / "src" / "series.csv", frame)
    ok(cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-10", "--every", "1D"))
    ok(cli("train", "probe"))
    ok(cli("score", "probe", "--start", "2026-01-09", "--end", "2026-01-10"))
    with store.engine(pg_home.store_url).connect() as connection:
        rows = connection.execute(text("SELECT entity, ts, raw_score FROM scores")).all()
    assert len(rows) == 48
    spoiled = sorted(row.ts.hour for row in rows if np.isinf(row.raw_score))
    assert spoiled == [5, 6, 7]  # the windows holding 05:00, and the means over them
    assert all(row.entity == "x" for row in rows if np.isinf(row.raw_score))


def test_a_huge_value_in_the_baseline_is_one_line_until_its_incident_is_labelled(
    home: Settings,
) -> None:
    frame = series()
    hit = (frame["site"] == "y") & (frame["ts"] == pd.Timestamp("2026-01-03T07:00Z"))
    frame.loc[hit, "b"] = 1e300
    write_series(home.home / "src" / "series.csv", frame)
    ok(cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-08"))
    one_error_line(cli("train", "probe"), "baseline feature b holds values too large")
    assert counts(home)["versions"] == 0
    label = ("--start", "2026-01-03T07:00", "--end", "2026-01-03T07:00", "--entity", "y")
    ok(cli("labels", "add", "probe", *label))
    ok(cli("train", "probe"))
    assert counts(home)["versions"] == 1
