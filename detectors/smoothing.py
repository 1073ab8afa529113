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
    """Mean of the last ``span`` scores of each entity, in the order given (oldest first)."""
    if span < 1:
        raise ValueError(f"span must be at least 1, got {span}")
    scores = np.asarray(scores, dtype=np.float64)
    if span == 1:
        return scores.copy()
    groups = np.zeros(len(scores)) if entity is None else np.asarray(entity)
    series = pd.Series(scores)
    return (
        series.groupby(groups, sort=False)
        .rolling(span, min_periods=1)
        .mean()
        .reset_index(level=0, drop=True)
        .sort_index()
        .to_numpy()
    )
