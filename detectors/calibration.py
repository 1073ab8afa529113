"""Conformal calibration: p-values, z and flags from the scores of held-out normal rows.

``p = (1 + #{cal >= s}) / (n_cal + 1)``; a row is anomalous when ``p < alpha``, which bounds
the false-alarm rate on normal data (exchangeable with the calibration rows) at ``alpha``.
``z = Phi^-1(1 - p)`` puts every detector on one scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import norm

from detectors.errors import ArtifactError
from detectors.serialization import read_arrays, read_json, write_arrays, write_json

CALIBRATION_FILE = "calibration.json"
CALIBRATION_SCORES_FILE = "calibration_scores.npz"


class ConformalCalibrator:
    """Turns anomaly scores (higher = more anomalous) into conformal p-values and flags."""

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = alpha

    def fit(self, calibration_scores: np.ndarray) -> ConformalCalibrator:
        """Remember the anomaly scores of held-out normal rows."""
        scores = np.asarray(calibration_scores, dtype=np.float64).ravel()
        if not np.isfinite(scores).all():
            raise ValueError("calibration scores contain NaN or infinite values")
        if 1 / (len(scores) + 1) >= self.alpha:
            raise ValueError(
                f"{len(scores)} calibration rows cannot give a p-value below alpha={self.alpha}; "
                f"need more than {int(np.ceil(1 / self.alpha)) - 1}"
            )
        self.scores_ = np.sort(scores)
        return self

    @property
    def threshold_(self) -> float:
        """The smallest score flagged as anomalous (p < alpha)."""
        # p only changes just above a calibration score; take the first such point flagged.
        candidates = np.nextafter(self.scores_, np.inf)
        flagged = np.nonzero(self.p_values(candidates) < self.alpha)[0]
        return float(candidates[flagged[0]])

    def p_values(self, scores: np.ndarray) -> np.ndarray:
        """Conformal p-value of each score."""
        scores = np.asarray(scores, dtype=np.float64)
        at_or_above = len(self.scores_) - np.searchsorted(self.scores_, scores, side="left")
        return (1.0 + at_or_above) / (len(self.scores_) + 1.0)

    def flags(self, p_values: np.ndarray) -> np.ndarray:
        """Whether each p-value is below ``alpha``."""
        return np.asarray(p_values) < self.alpha

    @staticmethod
    def z(p_values: np.ndarray) -> np.ndarray:
        """The standard normal quantile ``Phi^-1(1 - p)``: 0 is typical, 3 is rare."""
        return norm.isf(np.asarray(p_values, dtype=np.float64))

    def save(self, path: str | Path) -> None:
        """Write alpha and the calibration scores into folder ``path``."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / CALIBRATION_FILE, {"alpha": self.alpha, "rows": len(self.scores_)})
        write_arrays(folder / CALIBRATION_SCORES_FILE, {"scores": self.scores_})

    @classmethod
    def load(cls, path: str | Path) -> ConformalCalibrator:
        """Read a calibrator written by ``save``."""
        folder = Path(path)
        document = read_json(folder / CALIBRATION_FILE)
        scores = read_arrays(folder / CALIBRATION_SCORES_FILE).get("scores")
        if scores is None or "alpha" not in document or len(scores) != document.get("rows"):
            raise ArtifactError(f"{folder}: calibration files do not match each other")
        calibrator = cls(alpha=float(document["alpha"]))
        calibrator.scores_ = scores
        return calibrator
