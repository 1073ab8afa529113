"""Scoring a batch: raw score, conformal p-value, z, flag and top features per step.

A step whose score cannot be computed (the detector's arithmetic overflows on a huge but
finite value, giving an infinite or NaN score) is flagged anomalous with an infinite raw
score and z, p-value 0 and no top features; the rest of the batch scores as usual.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from atalaia.attribution import feature_shares
from atalaia.config import Monitor
from atalaia.representation import detector_input, feature_contributions, raw_scores, since
from detectors import ConformalCalibrator, Detector

TOP_FEATURES = 3


def score_frame(
    frame: pd.DataFrame,
    monitor: Monitor,
    detector: Detector,
    calibrator: ConformalCalibrator,
    *,
    context: pd.DataFrame | None = None,
    start: datetime | None = None,
) -> pd.DataFrame:
    """Scores of an accepted batch, in the store's ``scores`` layout.

    ``context`` holds the accepted rows just before the batch that windows and smoothing
    look back on (see ``atalaia.representation``); only steps at or after ``start`` are
    returned. Top features (the detector's attribution, largest first, with each feature's
    share from ``atalaia.attribution``) are computed for anomalous steps only; normal ones
    get None, which keeps scoring as fast as the detector.
    """
    rows = frame if context is None or context.empty else pd.concat([context, frame])
    inputs = detector_input(rows, monitor)
    kept = since(inputs, start)
    raw = raw_scores(detector, inputs, monitor)[kept]
    uncomputable = ~np.isfinite(raw)
    raw[uncomputable] = np.inf
    X = inputs.X[kept].reset_index(drop=True)
    p_values = calibrator.p_values(raw)
    flags = calibrator.flags(p_values)
    top: list[list[dict] | None] = [None] * len(X)
    explained = flags & ~uncomputable
    if explained.any():
        contributions = feature_contributions(detector, X[explained], monitor)
        shares = feature_shares(contributions)
        rows = np.flatnonzero(explained)
        for row, values, parts in zip(rows, contributions, shares, strict=True):
            top[row] = top_features(values, parts, monitor.features)
    return pd.DataFrame(
        {
            "entity": inputs.entity[kept],
            "ts": inputs.ts[kept].to_numpy(),
            "raw_score": raw,
            "p_value": p_values,
            "z": calibrator.z_scores(raw),
            "is_anomaly": flags,
            "top_features": top,
        }
    )


def uncomputable_rows(scores: pd.DataFrame) -> int:
    """How many of ``score_frame``'s rows have a score that could not be computed."""
    return int(np.isinf(scores["raw_score"]).sum())


def top_features(contributions: np.ndarray, shares: np.ndarray, names: list[str]) -> list[dict]:
    """The features with the largest contributions, largest first, with their shares
    (non-finite ones left out: they cannot be stored as JSON)."""
    finite = np.flatnonzero(np.isfinite(contributions) & np.isfinite(shares))
    order = finite[np.argsort(-contributions[finite], kind="stable")][:TOP_FEATURES]
    return [
        {
            "feature": names[i],
            "contribution": round(float(contributions[i]), 4),
            "share": round(float(shares[i]), 4),
        }
        for i in order
    ]
