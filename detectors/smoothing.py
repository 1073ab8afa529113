"""Smoothing of anomaly scores over time, an explicit and optional step.

``moving_mean`` replaces each score by the mean of the last ``span`` scores of the same
entity (fewer at the start of a series). Because it looks back a fixed number of steps, a
step's smoothed score does not depend on which batch it was scored in, as long as the
``span - 1`` steps before the batch are scored along with it. Calibration must see scores
smoothed the same way as scoring does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def moving_mean(scores: np.ndarray, span: int, entity: np.ndarray | None = None) -> np.ndarray:
    """Mean of the last ``span`` scores of each entity, in the order given (oldest first).

    Safe for any finite scores: each is divided by ``span`` before summing, so no sum
    overflows. A mean over a NaN or infinite score is NaN (it cannot be computed), never
    the mean of the other scores.
    """
    if span < 1:
        raise ValueError(f"span must be at least 1, got {span}")
    scores = np.asarray(scores, dtype=np.float64)
    if span == 1:
        return scores.copy()
    groups = pd.Series(np.zeros(len(scores)) if entity is None else np.asarray(entity))
    finite = np.isfinite(scores)
    shares = pd.Series(np.where(finite, scores, 0.0) / span)
    sums = _rolling(shares, groups, span, "sum")
    counts = np.minimum(groups.groupby(groups, sort=False).cumcount().to_numpy() + 1, span)
    means = sums * (span / counts)
    if not finite.all():
        touched = _rolling(pd.Series((~finite).astype(float)), groups, span, "max") > 0
        means[touched] = np.nan
    return means


def _rolling(values: pd.Series, groups: pd.Series, span: int, how: str) -> np.ndarray:
    """``how`` (sum, max) over the last ``span`` values of each group, in the order given."""
    return (
        values.groupby(groups.to_numpy(), sort=False)
        .rolling(span, min_periods=1)
        .agg(how)
        .reset_index(level=0, drop=True)
        .sort_index()
        .to_numpy()
    )


def full_spans(n: int, span: int, entity: np.ndarray | None = None) -> np.ndarray:
    """Whether each of ``n`` moving means (in the order given) averages a full ``span`` of
    its entity's scores, rather than the fewer a series' first steps have."""
    groups = pd.Series(np.zeros(n) if entity is None else np.asarray(entity))
    return groups.groupby(groups.to_numpy(), sort=False).cumcount().to_numpy() >= span - 1
