"""Synthetic time series shared by the autoregressive detectors' tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def seasonal_series(seed: int = 0, n: int = 4000) -> pd.DataFrame:
    """Two channels with a 96-step season; ``b`` follows ``a`` one step later."""
    rng = np.random.default_rng(seed)
    a = np.sin(np.arange(n) * 2 * np.pi / 96) + rng.normal(0, 0.1, n)
    b = 0.9 * np.roll(a, 1) + rng.normal(0, 0.05, n)
    stamps = pd.date_range("2026-01-01", periods=n, freq="15min", tz="UTC")
    return pd.DataFrame({"ts": stamps, "a": a, "b": b})
