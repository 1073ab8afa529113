"""Scoring a batch: raw score, conformal p-value, z, flag and top features per row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from atalaia.config import Monitor
from atalaia.validation import entity_keys
from detectors import ConformalCalibrator, Detector

TOP_FEATURES = 3


def score_frame(
    frame: pd.DataFrame, monitor: Monitor, detector: Detector, calibrator: ConformalCalibrator
) -> pd.DataFrame:
    """Scores of every row of an accepted batch, in the store's ``scores`` layout.

    Top features (the detector's attribution, largest first) are computed for anomalous rows
    only; normal rows get None, which keeps scoring as fast as the detector itself.
    """
    raw = detector.decision_function(frame[monitor.features])
    p_values = calibrator.p_values(raw)
    flags = calibrator.flags(p_values)
    top: list[list[dict] | None] = [None] * len(frame)
    if flags.any():
        contributions = detector.attribute(frame.loc[flags, monitor.features])
        for row, values in zip(np.flatnonzero(flags), contributions, strict=True):
            top[row] = top_features(values, monitor.features)
    return pd.DataFrame(
        {
            "entity": entity_keys(frame, monitor).to_numpy(),
            "ts": frame[monitor.timestamp].to_numpy(),
            "raw_score": raw,
            "p_value": p_values,
            "z": calibrator.z_scores(raw),
            "is_anomaly": flags,
            "top_features": top,
        }
    )


def top_features(contributions: np.ndarray, names: list[str]) -> list[dict]:
    """The features with the largest contributions, largest first."""
    order = np.argsort(-contributions, kind="stable")[:TOP_FEATURES]
    return [{"feature": names[i], "contribution": round(float(contributions[i]), 4)} for i in order]
