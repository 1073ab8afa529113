"""Conformal calibration: p-values, z and flags from the scores of held-out normal rows.

``p = (1 + #{cal >= s}) / (n_cal + 1)``; a row is anomalous when ``p < alpha``, which bounds
the false-alarm rate on normal data (exchangeable with the calibration rows) at ``alpha``.
``z = Phi^-1(1 - p)`` puts every detector on one scale.

Above the largest calibration score the conformal p-value would stay at ``1 / (n_cal + 1)``
and z would saturate, hiding how far out a row is. There the p-value continues along an
exponential tail fitted to the largest calibration scores, so z keeps ranking severity.

``tail_floor`` puts a floor under the tail's scale (in score units): without one, calibration
scores that barely differ (a channel constant in training) give a tail of scale ~0, and any
score a hair above them an extreme p-value. With a floor, ``alpha`` may be below
``1 / (n_cal + 1)``: such flags come from the tail alone, an extrapolation rather than the
conformal bound. Without a floor that is refused, since the bound could not hold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import ndtri_exp

from detectors.errors import ArtifactError
from detectors.serialization import read_arrays, read_json, write_arrays, write_json

CALIBRATION_FILE = "calibration.json"
CALIBRATION_SCORES_FILE = "calibration_scores.npz"
# Calibration scores the exponential tail is fitted to: this share of them, at least TAIL_MIN.
TAIL_SHARE = 0.02
TAIL_MIN = 10


class ConformalCalibrator:
    """Turns anomaly scores (higher = more anomalous) into conformal p-values and flags."""

    def __init__(self, alpha: float = 0.01, tail_floor: float = 0.0) -> None:
        self.alpha = alpha
        self.tail_floor = tail_floor

    def fit(self, calibration_scores: np.ndarray) -> ConformalCalibrator:
        """Remember the anomaly scores of held-out normal rows."""
        scores = np.asarray(calibration_scores, dtype=np.float64).ravel()
        if not np.isfinite(scores).all():
            raise ValueError("calibration scores contain NaN or infinite values")
        if len(scores) == 0:
            raise ValueError("no calibration rows")
        if 1 / (len(scores) + 1) >= self.alpha and self.tail_floor <= 0:
            raise ValueError(
                f"{len(scores)} calibration rows cannot give a p-value below alpha={self.alpha}; "
                f"need more than {int(np.ceil(1 / self.alpha)) - 1}, or a tail_floor above 0 "
                "to flag from the tail"
            )
        self.scores_ = np.sort(scores)
        self.tail_scale_ = max(_tail_scale(self.scores_), self.tail_floor)
        return self

    def pooled(self, more_scores: np.ndarray) -> ConformalCalibrator:
        """A calibrator with the same settings fitted on these scores plus ``more_scores``."""
        return type(self)(self.alpha, self.tail_floor).fit(np.r_[self.scores_, more_scores])

    @property
    def threshold_(self) -> float:
        """The smallest score flagged as anomalous (p < alpha)."""
        # p only changes just above a calibration score; take the first such point flagged.
        candidates = np.nextafter(self.scores_, np.inf)
        flagged = np.nonzero(self.p_values(candidates) < self.alpha)[0]
        if len(flagged):
            return float(candidates[flagged[0]])
        # alpha below 1 / (n + 1): where the exponential tail reaches alpha
        n = len(self.scores_)
        excess = -self.tail_scale_ * (np.log(self.alpha) + np.log(n + 1.0))
        return float(np.nextafter(self.scores_[-1] + excess, np.inf))

    def log_p_values(self, scores: np.ndarray) -> np.ndarray:
        """Natural log of each score's p-value (exact even where the p-value underflows)."""
        scores = np.asarray(scores, dtype=np.float64)
        n = len(self.scores_)
        at_or_above = n - np.searchsorted(self.scores_, scores, side="left")
        log_p = np.log1p(at_or_above) - np.log(n + 1.0)
        if self.tail_scale_ > 0:
            beyond = scores > self.scores_[-1]
            excess = scores[beyond] - self.scores_[-1]
            log_p[beyond] = -excess / self.tail_scale_ - np.log(n + 1.0)
        return log_p

    def p_values(self, scores: np.ndarray) -> np.ndarray:
        """Conformal p-value of each score (exponential tail beyond the largest)."""
        return np.exp(self.log_p_values(scores))

    def z_scores(self, scores: np.ndarray) -> np.ndarray:
        """``Phi^-1(1 - p)`` of each score: 0 is typical, 3 is rare; finite however far out."""
        return -ndtri_exp(self.log_p_values(scores))

    def flags(self, p_values: np.ndarray) -> np.ndarray:
        """Whether each p-value is below ``alpha``."""
        return np.asarray(p_values) < self.alpha

    def save(self, path: str | Path) -> None:
        """Write alpha and the calibration scores into folder ``path``."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(
            folder / CALIBRATION_FILE,
            {"alpha": self.alpha, "tail_floor": self.tail_floor, "rows": len(self.scores_)},
        )
        write_arrays(folder / CALIBRATION_SCORES_FILE, {"scores": self.scores_})

    @classmethod
    def load(cls, path: str | Path) -> ConformalCalibrator:
        """Read a calibrator written by ``save``."""
        folder = Path(path)
        document = read_json(folder / CALIBRATION_FILE)
        scores = read_arrays(folder / CALIBRATION_SCORES_FILE).get("scores")
        if scores is None or "alpha" not in document or len(scores) != document.get("rows"):
            raise ArtifactError(f"{folder}: calibration files do not match each other")
        calibrator = cls(float(document["alpha"]), float(document.get("tail_floor", 0.0)))
        calibrator.scores_ = scores
        calibrator.tail_scale_ = max(_tail_scale(scores), calibrator.tail_floor)
        return calibrator


def _tail_scale(sorted_scores: np.ndarray) -> float:
    """Mean excess of the largest scores over the next one: the exponential tail's scale."""
    k = min(len(sorted_scores) - 1, max(TAIL_MIN, int(np.ceil(TAIL_SHARE * len(sorted_scores)))))
    if k < 1:
        return 0.0
    return float(np.mean(sorted_scores[-k:] - sorted_scores[-k - 1]))
