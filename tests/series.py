"""Synthetic time series shared by the autoregressive detectors' tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from detectors.windows import make_windows


def seasonal_series(seed: int = 0, n: int = 4000) -> pd.DataFrame:
    """Two channels with a 96-step season; ``b`` follows ``a`` one step later."""
    rng = np.random.default_rng(seed)
    a = np.sin(np.arange(n) * 2 * np.pi / 96) + rng.normal(0, 0.1, n)
    b = 0.9 * np.roll(a, 1) + rng.normal(0, 0.05, n)
    stamps = pd.date_range("2026-01-01", periods=n, freq="15min", tz="UTC")
    return pd.DataFrame({"ts": stamps, "a": a, "b": b})


def one_series_windows(
    values: np.ndarray, step: timedelta, window: int, seasons: Sequence[int] = ()
) -> pd.DataFrame:
    """Named windows (``x@t-<lag>``) of one feature sampled every ``step`` from 2026-01-01."""
    stamps = pd.date_range("2026-01-01", periods=len(values), freq=step)
    frame = pd.DataFrame({"ts": stamps, "x": values})
    return make_windows(
        frame, timestamp="ts", features=["x"], frequency=step, window=window, seasons=seasons
    ).frame()
