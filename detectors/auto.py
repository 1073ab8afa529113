"""Settings chosen from a baseline alone, without labels: a window and a seasonal period.

Both read the baseline's series on their regular grids: one array of steps x features per
entity, NaN in gaps (``detectors.windows.regular_grid``), and both reuse the ``ar``
detector's fit (``detectors.ar.LinearARDetector``) rather than restate it.

Window (:func:`window`): one more than the autoregressive order that the ``ar`` detector
chooses by BIC (``order="bic"``) on the baseline's windows of the longest window
considered, so the window holds the recent steps that predict the next one. The longest
window considered is ``MAX_WINDOW`` steps, at most ``MAX_WINDOW_COLUMNS`` columns, and a
tenth of the longest entity's steps; the ``ar`` detector's BIC keeps at least one lag, so
the window is at least 2 steps when the baseline allows windows at all.

Season (:func:`season`): candidates come from the baseline's autocorrelation ``r(k)``,
pooled over features and entities (each series standardised, gaps left out of the sums).
A lag ``P`` of at least 2 steps is a candidate when ``r(P)`` is the largest autocorrelation
from lag ``P / 2`` to lag ``3P / 2`` (a peak that dominates its neighbourhood, so a slow
decay or a harmonic's neighbour is not one), and both ``r(P)`` and its rise above the
lowest autocorrelation before it exceed ``z / sqrt(n)``: white noise's standard error over
``n`` observed steps, with ``z`` the Bonferroni quantile that keeps the chance of any
candidate on white noise under ``FALSE_SEASON_RATE`` across the lags tried. Only lags the
baseline holds twice are tried (up to half the longest entity's steps). Candidates are
tried shortest first, at most ``MAX_CANDIDATES``; the first becomes the season when its
seasonal lags (``P + 1`` and ``P``) make an ``ar`` model of the recent lags (up to the
window's, no further than where ``r`` first falls to 0, and short of ``P``) better by BIC:
twice the gain in log-likelihood on the windows that hold them exceeds ``log(n)`` per
coefficient added plus twice the log of the lags tried (one period among them was
looked for). A wandering, persistent series whose autocorrelation happens to peak is thus
not given a season its recent steps already explain. One season is chosen, the
fundamental one; a second, longer one (a week over a day) is left to be asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtri

import detectors
from detectors.windows import CONSTANT_SPREAD, grid_windows, window_columns, window_lags

FALSE_SEASON_RATE = 0.01
MAX_WINDOW = 64
MAX_WINDOW_COLUMNS = 1024
# A window of w steps is considered only with at least this many times w steps to learn from.
STEPS_PER_WINDOW_STEP = 10
# Season candidates tested by BIC, shortest first.
MAX_CANDIDATES = 3
# Windows the order is chosen on, drawn at random beyond this many.
WINDOW_SAMPLE = 10_000


def autocorrelation(grids: Sequence[np.ndarray], max_lag: int) -> tuple[np.ndarray, int]:
    """The pooled autocorrelation ``r(0..max_lag)`` of every non-constant feature of every
    grid, and the number of observed steps it rests on.

    Each series is standardised over its observed steps, then ``r(k)`` is the sum over all
    series of ``x_t x_{t+k}`` (both observed) divided by the sum of ``x_t^2``: the usual
    biased estimate, which stays a valid autocorrelation with gaps.
    """
    products = np.zeros(max_lag + 1)
    steps = 0
    for grid in grids:
        observed = ~np.isnan(grid)
        steps += int(observed.any(axis=1).sum())
        count = observed.sum(axis=0)
        mean = np.nansum(grid, axis=0) / np.maximum(count, 1)
        spread = np.sqrt(np.nansum((grid - mean) ** 2, axis=0) / np.maximum(count, 1))
        varies = (count > 1) & (spread > CONSTANT_SPREAD * np.maximum(1.0, np.abs(mean)))
        if not varies.any():
            continue
        z = np.where(observed, (grid - mean) / np.where(varies, spread, 1.0), 0.0)[:, varies]
        size = 1 << int(np.ceil(np.log2(2 * len(z))))
        spectrum = np.fft.rfft(z, n=size, axis=0)
        sums = np.fft.irfft(spectrum * spectrum.conj(), n=size, axis=0).sum(axis=1)
        lags = min(max_lag + 1, len(z))
        products[:lags] += sums[:lags]
    if products[0] <= 0:
        return np.zeros(max_lag + 1), steps
    return products / products[0], steps


def season(grids: Sequence[np.ndarray], window: int) -> int | None:
    """The baseline's seasonal period in steps for windows of ``window`` steps, or None
    (see the module's rule)."""
    longest = max((len(grid) for grid in grids), default=0)
    max_lag = longest // 2
    if max_lag < 2 or window < 2:
        return None
    r, steps = autocorrelation(grids, max_lag)
    level = ndtri(1 - FALSE_SEASON_RATE / (max_lag - 1)) / np.sqrt(max(steps, 1))
    lowest = np.minimum.accumulate(r)  # lowest[k]: the lowest of r(0..k)
    crossing = np.flatnonzero(r <= 0)
    recent = int(crossing[0]) if len(crossing) else max_lag  # lags of short-range persistence
    tried = 0
    for period in range(2, max_lag + 1):
        around = r[(period + 1) // 2 : min(period * 3 // 2, max_lag) + 1]
        if r[period] < around.max() or min(r[period], r[period] - lowest[period - 1]) <= level:
            continue
        if _seasonal_lags_help(grids, min(window, recent + 1, period), period, max_lag):
            return period
        tried += 1
        if tried == MAX_CANDIDATES:
            break
    return None


def _seasonal_lags_help(
    grids: Sequence[np.ndarray], window: int, period: int, periods: int
) -> bool:
    """Whether the lags ``period + 1`` and ``period`` make an ``ar`` model of order
    ``window - 1`` better by BIC, with one of ``periods`` periods chosen beforehand, on the
    windows that hold every lag."""
    n_features = grids[0].shape[1]
    seasonal = window_lags(window, [period])
    added = (len(seasonal) - window) * n_features  # lag columns the season adds
    if added == 0:
        return False
    windows = _windows(grids, seasonal)
    windows = windows[~np.isnan(windows).any(axis=1)]
    if len(windows) <= 2 * len(seasonal) * n_features:
        return False
    names = window_columns([f"x{i}" for i in range(n_features)], window, [period])
    with_season = pd.DataFrame(windows, columns=names)
    without = with_season.iloc[:, added:]  # seasonal lags come first, oldest first
    gain = _log_likelihood(with_season, window) - _log_likelihood(without, window)
    return 2 * gain > added * n_features * np.log(len(windows)) + 2 * np.log(periods)


def _log_likelihood(windows: pd.DataFrame, window: int) -> float:
    """The summed log-likelihood of ``windows`` under an ``ar`` model of order
    ``window - 1`` with Gaussian innovations fitted on them."""
    ar = detectors.create("ar", order=window - 1, max_components=1)
    return float(ar.fit(windows).score_samples(windows).sum())


def _windows(grids: Sequence[np.ndarray], lags: Sequence[int], random_state: int = 0) -> np.ndarray:
    """The grids' windows holding ``lags``, ending at observed steps: every one, or
    ``WINDOW_SAMPLE`` of them drawn at random (only those drawn are built)."""
    ends = [np.flatnonzero(~np.isnan(grid).all(axis=1)) for grid in grids]
    sizes = [len(positions) for positions in ends]
    if sum(sizes) > WINDOW_SAMPLE:
        rng = np.random.default_rng(random_state)
        keep = np.zeros(sum(sizes), dtype=bool)
        keep[rng.choice(len(keep), WINDOW_SAMPLE, replace=False)] = True
        kept = np.split(keep, np.cumsum(sizes)[:-1])
        ends = [positions[chosen] for positions, chosen in zip(ends, kept, strict=True)]
    return np.vstack(
        [grid_windows(grid, lags, positions) for grid, positions in zip(grids, ends, strict=True)]
    )


def window(grids: Sequence[np.ndarray], random_state: int = 0) -> int:
    """The window in steps: one more than the ``ar`` detector's BIC order on the baseline's
    windows (see the module's rule); 1 when the baseline is too short for windows of 2."""
    longest = max((len(grid) for grid in grids), default=0)
    n_features = grids[0].shape[1] if grids else 1
    most = min(MAX_WINDOW, MAX_WINDOW_COLUMNS // n_features, longest // STEPS_PER_WINDOW_STEP)
    if most < 2:
        return 1
    windows = _windows(grids, window_lags(most), random_state)
    names = window_columns([f"x{i}" for i in range(n_features)], most)
    ar = detectors.create("ar", order="bic", max_components=1, random_state=random_state)
    ar.fit(pd.DataFrame(windows, columns=names))
    return ar.order_ + 1
