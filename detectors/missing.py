"""Rows grouped by which features they observe, for detectors that marginalise missing values."""

from __future__ import annotations

import numpy as np


def observed_patterns(observed: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The rows of ``observed`` (bool, rows x features) that share each pattern, and the
    pattern: (row indices, ascending; pattern) per group.

    Fully observed rows, the usual case, are found without sorting: only the other rows go
    through ``np.unique``, which sorts whole rows and cost 83% of scoring windows with gaps
    when every row went through it.
    """
    complete = observed.all(axis=1)
    groups = []
    if complete.any():
        groups.append((np.flatnonzero(complete), np.ones(observed.shape[1], dtype=bool)))
    partial = np.flatnonzero(~complete)
    if len(partial):
        patterns, which = np.unique(observed[partial], axis=0, return_inverse=True)
        order = np.argsort(which.ravel(), kind="stable")
        bounds = np.cumsum(np.bincount(which.ravel(), minlength=len(patterns)))[:-1]
        groups += list(zip(np.split(partial[order], bounds), patterns, strict=True))
    return groups
