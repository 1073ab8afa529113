"""Windows: gaps stay missing, entities never mix, a window belongs to its last step."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from detectors.windows import make_windows, per_feature, window_columns

MINUTE = timedelta(minutes=1)


def frame(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    data = pd.DataFrame(rows, columns=["ts", "host", "x", "y"])
    data["ts"] = pd.to_datetime(data["ts"], utc=True)
    return data


def test_columns_are_every_feature_at_each_lag_oldest_first() -> None:
    assert window_columns(["x", "y"], 2) == ["x@t-1", "y@t-1", "x@t-0", "y@t-0"]


def test_a_window_ends_at_its_row_and_a_gap_stays_missing() -> None:
    data = frame(
        [
            ("2026-01-01 00:00", "a", 1, 10),
            ("2026-01-01 00:01", "a", 2, 20),
            ("2026-01-01 00:03", "a", 4, 40),  # 00:02 is a gap
        ]
    )
    windows = make_windows(
        data, timestamp="ts", features=["x", "y"], frequency=MINUTE, window=3, entity=data["host"]
    )
    assert list(windows.index["ts"]) == list(data["ts"]), "one window per observed step"
    np.testing.assert_array_equal(
        windows.values,
        [
            [np.nan, np.nan, np.nan, np.nan, 1, 10],
            [np.nan, np.nan, 1, 10, 2, 20],
            [2, 20, np.nan, np.nan, 4, 40],
        ],
    )


def test_windows_never_cross_entities() -> None:
    data = frame(
        [
            ("2026-01-01 00:00", "a", 1, 1),
            ("2026-01-01 00:01", "a", 2, 2),
            ("2026-01-01 00:02", "b", 30, 30),
            ("2026-01-01 00:03", "b", 40, 40),
        ]
    )
    windows = make_windows(
        data, timestamp="ts", features=["x", "y"], frequency=MINUTE, window=2, entity=data["host"]
    )
    keys = windows.index["entity"] + windows.index["ts"].astype(str)
    by_entity = dict(zip(keys, windows.values, strict=True))
    first_of_b = by_entity["b2026-01-01 00:02:00+00:00"]
    assert np.isnan(first_of_b[:2]).all(), "b's first window must not see a's values"
    np.testing.assert_array_equal(by_entity["b2026-01-01 00:03:00+00:00"], [30, 30, 40, 40])


def test_rows_are_resampled_to_the_frequency() -> None:
    data = frame(
        [
            ("2026-01-01 00:00:10", "a", 1, 1),
            ("2026-01-01 00:00:40", "a", 3, 3),  # same minute: averaged
            ("2026-01-01 00:01:05", "a", 5, 5),
        ]
    )
    windows = make_windows(data, timestamp="ts", features=["x", "y"], frequency=MINUTE, window=2)
    assert list(windows.index["ts"].dt.strftime("%H:%M:%S")) == ["00:00:00", "00:01:00"]
    np.testing.assert_array_equal(windows.values[1], [2, 2, 5, 5])


def test_per_feature_sums_attribution_over_lags() -> None:
    attribution = np.arange(12.0).reshape(2, 6)  # window 3, features x and y
    np.testing.assert_array_equal(per_feature(attribution, 2), [[6, 9], [24, 27]])
    with pytest.raises(ValueError, match="do not divide"):
        per_feature(attribution, 4)


def test_seasonal_lags_hold_each_feature_one_season_ago_and_the_step_before() -> None:
    assert window_columns(["x"], 2, seasons=[5]) == ["x@t-6", "x@t-5", "x@t-1", "x@t-0"]
    assert window_columns(["x"], 8, seasons=[5]) == window_columns(["x"], 8), "already held"
    stamps = pd.date_range("2026-01-01", periods=12, freq="1min", tz="UTC")
    data = pd.DataFrame({"ts": stamps, "host": ["a"] * 6 + ["b"] * 6, "x": np.arange(12.0)})
    windows = make_windows(
        data,
        timestamp="ts",
        features=["x"],
        frequency=MINUTE,
        window=2,
        entity=data["host"],
        seasons=[3],
    )
    assert windows.columns == ["x@t-4", "x@t-3", "x@t-1", "x@t-0"]
    last_of_a, first_of_b = windows.values[5], windows.values[6]
    np.testing.assert_array_equal(last_of_a, [1, 2, 4, 5])
    assert np.isnan(first_of_b[:3]).all(), "nothing before an entity's first step, not a's"
    assert np.isnan(windows.values[3, 0]) and windows.values[4, 0] == 0, "history starts at 0"
