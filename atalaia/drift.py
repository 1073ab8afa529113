"""Drift: has the champion's score distribution moved away from its calibration?

On data like its calibration rows, a model's recent anomaly scores are distributed like its
calibration scores. The check measures the two-sample Kolmogorov-Smirnov distance between
the two (the largest gap between their cumulative distributions, from 0 to 1) and calls it
drift above the monitor's ``drift.max_distance``. The distance is a share of rows: a short
incident moves few rows and little of it, a shift of the bulk of the data moves it a lot.
Rows of a time series are not independent, so the distance is compared with a fixed
threshold rather than turned into a p-value that would claim more certainty than there is.

The share of recent rows flagged is reported beside it, to compare with ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import ks_2samp


@dataclass(frozen=True)
class DriftCheck:
    """The outcome of one drift check."""

    rows: int
    anomalies: int
    distance: float
    detected: bool
    reason: str

    @property
    def anomaly_ratio(self) -> float:
        """Share of the recent rows flagged anomalous (0 without rows)."""
        return self.anomalies / self.rows if self.rows else 0.0


def check_drift(
    recent_scores: np.ndarray,
    recent_flags: np.ndarray,
    calibration_scores: np.ndarray,
    *,
    max_distance: float,
    min_rows: int,
) -> DriftCheck:
    """Compare recent raw scores with the calibration scores of the model that made them."""
    recent = np.asarray(recent_scores, dtype=np.float64)
    anomalies = int(np.count_nonzero(recent_flags))
    if len(recent) < min_rows:
        return DriftCheck(
            len(recent), anomalies, 0.0, False, f"{len(recent)} recent rows, fewer than {min_rows}"
        )
    distance = float(ks_2samp(recent, calibration_scores).statistic)
    detected = distance > max_distance
    relation = "above" if detected else "within"
    return DriftCheck(
        rows=len(recent),
        anomalies=anomalies,
        distance=distance,
        detected=detected,
        reason=f"distance {distance:.3f} {relation} the limit {max_distance}",
    )
