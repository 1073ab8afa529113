"""Windows of time series: the last ``w`` steps of every feature at each time step.

A window is the unit a time-series detector scores; its score belongs to its last step.
Each entity's series is first put on the regular grid of the data's frequency (rows in one
step are averaged; a step with no row is a gap and stays missing, never filled), then every
observed step gets the window ending there. Windows never cross entities. Flattened, a
window has ``w * d`` columns named ``<feature>@t-<lag>``, oldest first, so every tabular
detector works on windows unchanged.

Seasonal lags: with ``seasons`` (periods in steps), a window also holds every feature at
lags ``P + 1`` and ``P`` of each period ``P``, the same step one season ago and the one
before it, placed before the recent lags (oldest first still), so that a prediction can
follow the seasonal change (a seasonal autoregression's terms). A lag the window already
holds (a period shorter than the window) is not repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

# A channel whose spread is below this share of its magnitude counts as constant.
CONSTANT_SPREAD = 1e-9


@dataclass
class Windows:
    """Flattened windows and where each one ends.

    ``values`` has one row per window and ``w * d`` columns (see ``columns``); ``index``
    holds each window's entity key and last time step, in the same order.
    """

    values: np.ndarray
    index: pd.DataFrame
    columns: list[str]

    def frame(self) -> pd.DataFrame:
        """The windows as a data frame with named columns."""
        return pd.DataFrame(self.values, columns=self.columns)


def window_lags(window: int, seasons: Sequence[int] = ()) -> list[int]:
    """The lags a window holds, oldest first: ``P + 1`` and ``P`` of every season ``P``,
    then the last ``window`` steps."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    if any(period < 1 for period in seasons):
        raise ValueError(f"seasons must be at least one step, got {list(seasons)}")
    seasonal = sorted({lag for period in seasons for lag in (period + 1, period)}, reverse=True)
    return [lag for lag in seasonal if lag >= window] + list(range(window - 1, -1, -1))


def window_columns(features: Sequence[str], window: int, seasons: Sequence[int] = ()) -> list[str]:
    """Column names of a flattened window: every feature at each lag, oldest lag first."""
    return [f"{feature}@t-{lag}" for lag in window_lags(window, seasons) for feature in features]


def make_windows(
    frame: pd.DataFrame,
    *,
    timestamp: str,
    features: Sequence[str],
    frequency: timedelta,
    window: int,
    entity: pd.Series | None = None,
    seasons: Sequence[int] = (),
) -> Windows:
    """Windows of ``window`` steps (plus seasonal lags) ending at every observed step of
    every entity.

    ``entity`` gives each row's entity key (None: one series). Steps before the first row
    of an entity in ``frame`` are missing, like gaps; to score the first rows of a batch
    with full windows, pass the preceding steps along, as far back as the oldest lag.
    """
    lags = window_lags(window, seasons)
    keys = pd.Series("", index=frame.index) if entity is None else entity
    values, ends, owners = [], [], []
    for key, rows in frame.groupby(keys.to_numpy(), sort=True):
        grid = regular_grid(rows, timestamp, features, frequency)
        observed = grid.notna().any(axis=1).to_numpy()
        values.append(grid_windows(grid.to_numpy(), lags, observed))
        ends.append(grid.index[observed])
        owners.append(np.full(int(observed.sum()), key, dtype=object))
    columns = window_columns(features, window, seasons)
    if not values:
        return Windows(np.empty((0, len(columns))), pd.DataFrame(columns=["entity", "ts"]), columns)
    index = pd.DataFrame({"entity": np.concatenate(owners), "ts": ends[0].append(ends[1:])})
    return Windows(np.vstack(values), index, columns)


def regular_grid(
    rows: pd.DataFrame, timestamp: str, features: Sequence[str], frequency: timedelta
) -> pd.DataFrame:
    """One entity's rows on the regular grid of ``frequency``, indexed by step: rows in one
    step averaged, a step with no row a gap of NaN (never filled)."""
    return (
        rows.set_index(timestamp)[list(features)]
        .astype(np.float64)
        .resample(pd.Timedelta(frequency), origin="epoch")
        .mean()
    )


def grid_windows(grid: np.ndarray, lags: Sequence[int], ends: np.ndarray) -> np.ndarray:
    """Flattened windows of one regular ``grid`` (steps x features) ending at the steps
    ``ends`` selects (a boolean mask over steps, or step positions), holding the steps
    ``lags`` before each end (``window_lags``, oldest first); steps before the grid are
    missing."""
    span = lags[0] + 1  # steps from the oldest lag to the window's end
    picked = [span - 1 - lag for lag in lags]  # positions within the span, oldest first
    n_features = grid.shape[1]
    padded = np.vstack([np.full((span - 1, n_features), np.nan), grid])
    stacked = sliding_window_view(padded, (span, n_features))[:, 0]
    if len(picked) == span:  # no seasonal lags: a boolean index copies 5x faster
        chosen = stacked[ends]
    else:  # only the lags needed, not the whole season between them
        positions = np.flatnonzero(ends) if ends.dtype == bool else ends
        chosen = stacked[positions[:, None], picked]
    return chosen.reshape(len(chosen), len(lags) * n_features)


def per_feature(attribution: np.ndarray, n_features: int) -> np.ndarray:
    """Sum a window detector's per-column attribution over lags: one value per feature."""
    rows, columns = attribution.shape
    if columns % n_features:
        raise ValueError(f"{columns} window columns do not divide into {n_features} features")
    return attribution.reshape(rows, columns // n_features, n_features).sum(axis=1)


def window_channels(n_columns: int, names: Sequence[str] = (), channels: int | None = None) -> int:
    """How many channels (features per step) flattened windows of ``n_columns`` hold.

    ``channels`` when given; else the number of ``<feature>@t-0`` names among ``names``;
    else every column is a channel of a single step.
    """
    if channels is not None:
        count = channels
    elif any(str(name).endswith("@t-0") for name in names):
        count = sum(str(name).endswith("@t-0") for name in names)
    else:
        count = n_columns
    if count < 1 or n_columns % count:
        raise ValueError(f"{n_columns} columns are not whole windows of {count} channels")
    return count


def column_lags(n_columns: int, n_channels: int, names: Sequence[str] = ()) -> np.ndarray:
    """Each column's lag: read from ``<feature>@t-<lag>`` names when every column has one,
    else counted as a plain window of ``n_columns / n_channels`` steps, oldest first."""
    suffixes = [str(name).rpartition("@t-")[2] for name in names if "@t-" in str(name)]
    if len(suffixes) == n_columns and all(suffix.isdigit() for suffix in suffixes):
        return np.array([int(suffix) for suffix in suffixes])
    return np.repeat(np.arange(n_columns // n_channels - 1, -1, -1), n_channels)


def channel_scaling(values: np.ndarray, n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Each channel's mean and standard deviation over every step of flattened windows
    (``n_channels`` equal to the columns: each column of plain rows on its own).

    A channel whose spread is below ``CONSTANT_SPREAD`` of its magnitude counts as constant
    and gets scale 1 (its own units), so rounding noise is not blown up into large values.
    """
    steps = values.reshape(len(values), -1, n_channels)
    center = np.nanmean(steps, axis=(0, 1))
    scale = np.nanstd(steps, axis=(0, 1))
    varies = scale > CONSTANT_SPREAD * np.maximum(1.0, np.abs(center))
    return center, np.where(varies, scale, 1.0)
