"""Scoring a batch: raw score, conformal p-value, z, flag and top features per step.

A step whose score cannot be computed (the detector's arithmetic overflows on a huge but
finite value, giving an infinite or NaN score) is flagged anomalous with an infinite raw
score and z, p-value 0 and no top features; the rest of the batch scores as usual. A step
whose smoothed score averages fewer raw scores than ``detector.smoothing`` is not judged
(``atalaia.representation.judged``): p-value 1, z 0, no flag. With ``calibration.pool:
unflagged`` each step is judged against the pool as it grows step by step
(``ConformalCalibrator.sequential_log_p_values``), a score joining it once it is older than
a score's history (``atalaia.representation.history_steps``), so none shares its inputs.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from atalaia.attribution import feature_shares
from atalaia.config import Monitor
from atalaia.representation import (
    detector_input,
    feature_contributions,
    history_steps,
    judged,
    raw_scores,
    since,
)
from detectors import ConformalCalibrator, Detector
from detectors.calibration import z_of_log_p

TOP_FEATURES = 3


def score_frame(
    frame: pd.DataFrame,
    monitor: Monitor,
    detector: Detector,
    calibrator: ConformalCalibrator,
    *,
    context: pd.DataFrame | None = None,
    start: datetime | None = None,
    recent: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Scores of an accepted batch, in the store's ``scores`` layout.

    ``context`` holds the accepted rows just before the batch that windows and smoothing
    look back on (see ``atalaia.representation``); only steps at or after ``start`` are
    returned. ``recent`` holds the unflagged scores (``ts``, ``raw_score``) of earlier batches
    too close to the batch to have joined the calibration pool yet (``calibration.pool:
    unflagged``). Top features (the detector's attribution, largest first, with each feature's
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
    full = judged(inputs, monitor)[kept] | uncomputable
    if monitor.calibration.pool == "unflagged":
        recent = pd.DataFrame(columns=["ts", "raw_score"]) if recent is None else recent
        log_p = calibrator.sequential_log_p_values(
            raw,
            inputs.entity[kept],
            _naive_utc(inputs.ts[kept]),
            full,
            delay=np.timedelta64(monitor.step * history_steps(monitor)),
            recent=(recent["raw_score"].to_numpy(np.float64), _naive_utc(recent["ts"])),
        )
    else:
        log_p = np.where(full, calibrator.log_p_values(raw), 0.0)
    p_values = np.exp(log_p)
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
            "ts": inputs.ts[kept].array,  # typed, not an object array of Timestamps
            "raw_score": raw,
            "p_value": p_values,
            "z": z_of_log_p(log_p),
            "is_anomaly": flags,
            "judged": full,
            "top_features": top,
        }
    )


def _naive_utc(stamps: pd.Series) -> np.ndarray:
    """Aware timestamps as naive UTC ``datetime64[ns]``, for comparing times."""
    return pd.to_datetime(stamps, utc=True).dt.tz_localize(None).to_numpy("datetime64[ns]")


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
