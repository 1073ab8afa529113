"""Feature shares: a detector's per-feature contributions as fractions of a row's anomaly.

A detector's ``attribute`` gives each feature's contribution to a row's anomaly score in the
score's own units: a negative log-likelihood (conditional, per dimension or per channel), so
a feature more likely than a unit density contributes a negative amount, and a missing
feature contributes 0. People reading an alert want "how much of this anomaly is each
feature", a non-negative share that sums to 1. The rule, in one place:

1. a negative, missing (NaN) or ``-inf`` contribution is 0: that feature gives no evidence
   for an anomaly (it looks at least as normal as the model expects);
2. if any contribution is ``+inf``, those features share the row equally (each infinitely
   more surprising than any finite one) and the others get 0;
3. otherwise each share is the feature's contribution over the row's sum;
4. a row with no evidence at all (every contribution 0 after step 1) is split evenly, so a
   row's shares always sum to 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def feature_shares(contributions: np.ndarray) -> np.ndarray:
    """Non-negative per-feature shares summing to 1 per row (the module's rule), same shape.

    ``contributions`` is rows x features (a single row as a 1-D array is accepted too).
    """
    values = np.asarray(contributions, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise ValueError(f"contributions must be 1-D or 2-D, got {values.ndim} dimensions")
    rows = np.atleast_2d(values)
    if rows.shape[1] == 0:
        return values.copy()
    infinite = rows == np.inf
    evidence = np.where(np.isfinite(rows) & (rows > 0), rows, 0.0)
    evidence = np.where(infinite.any(axis=1, keepdims=True), infinite.astype(np.float64), evidence)
    totals = evidence.sum(axis=1, keepdims=True)
    none = totals[:, 0] == 0
    evidence[none] = 1.0
    totals[none] = rows.shape[1]
    shares = evidence / totals
    return shares.reshape(values.shape)


def stored_shares(top_features: list[dict[str, Any]]) -> list[float]:
    """The shares of stored top features (``{"feature", "contribution", "share"}`` items, as
    scores and events keep them); items stored before shares were kept get shares among
    themselves."""
    if all("share" in item for item in top_features):
        return [float(item["share"]) for item in top_features]
    return feature_shares(np.array([item["contribution"] for item in top_features])).tolist()


def shares_text(top_features: list[dict[str, Any]]) -> str:
    """Stored top features as people read them: ``latency_ms 62%, cpu 21%`` (percentages
    rounded half up, as SQL's ``round`` does for the dashboard)."""
    shares = stored_shares(top_features)
    return ", ".join(
        f"{item['feature']} {math.floor(share * 100 + 0.5)}%"
        for item, share in zip(top_features, shares, strict=True)
    )
