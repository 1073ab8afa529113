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

from bisect import bisect_left, insort
from pathlib import Path

import numpy as np
import pandas as pd
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
        self.tail_scale_ = max(_tail_scale(self.scores_, len(self.scores_)), self.tail_floor)
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

    def sequential_log_p_values(
        self,
        scores: np.ndarray,
        groups: np.ndarray,
        times: np.ndarray,
        judged: np.ndarray,
        *,
        delay: np.timedelta64,
        recent: tuple[np.ndarray, np.ndarray] = (np.empty(0), np.empty(0, "datetime64[ns]")),
    ) -> np.ndarray:
        """Log p-values of ``scores`` (in time order within each group, an entity), each judged
        against a pool that grows step by step: the calibration scores, the ``recent``
        (scores, times) of other batches, and the unflagged judged scores before it in its
        group, each once it is at least ``delay`` older than the step judged, so that no
        pooled score shares its inputs with the step. The result does not depend on how the
        steps were batched. Steps not ``judged`` get log p = 0 and stay out of the pool."""
        scores, times = np.asarray(scores, dtype=np.float64), np.asarray(times)
        judged = np.asarray(judged, dtype=bool)
        log_p = np.zeros(len(scores))
        base, log_alpha = self.scores_, np.log(self.alpha)
        base_above = len(base) - np.searchsorted(base, scores, side="left")
        recent_order = np.argsort(recent[1], kind="stable")
        recent_scores, recent_times = recent[0][recent_order], recent[1][recent_order]
        keys = np.asarray(groups)
        for rows in pd.Series(keys).groupby(keys, sort=False).indices.values():
            pool: list[float] = []  # pooled scores beyond the calibration's, sorted
            pending: list[tuple[np.datetime64, float]] = []  # this group's, not yet old enough
            taken = 0  # recent scores pooled so far
            for row in rows:
                due = times[row] - delay
                taken_now = int(np.searchsorted(recent_times, due, side="right"))
                for score in recent_scores[taken:taken_now]:
                    insort(pool, score)
                taken = taken_now
                while pending and pending[0][0] <= due:
                    insort(pool, pending.pop(0)[1])
                if not judged[row]:
                    continue
                log_p[row] = self._pooled_log_p(scores[row], base_above[row], pool)
                if log_p[row] >= log_alpha:
                    pending.append((times[row], scores[row]))
        return log_p

    def _pooled_log_p(self, score: float, base_above: int, pool: list[float]) -> float:
        """Log p-value of ``score`` against the calibration scores plus ``pool`` (sorted);
        ``base_above`` is how many calibration scores are at or above it."""
        base = self.scores_
        n = len(base) + len(pool)
        top = max(base[-1], pool[-1]) if pool else base[-1]
        if score > top:
            k = _tail_size(n) + 1
            largest = np.sort(np.r_[base[-k:], pool[-k:]])[-k:]
            scale = max(_tail_scale(largest, n), self.tail_floor)
            excess = (score - top) / scale if scale > 0 else 0.0
            return -excess - np.log(n + 1.0)
        above = base_above + len(pool) - bisect_left(pool, score)
        return np.log1p(above) - np.log(n + 1.0)

    def p_values(self, scores: np.ndarray) -> np.ndarray:
        """Conformal p-value of each score (exponential tail beyond the largest)."""
        return np.exp(self.log_p_values(scores))

    def z_scores(self, scores: np.ndarray) -> np.ndarray:
        """``Phi^-1(1 - p)`` of each score: 0 is typical, 3 is rare; finite however far out."""
        return z_of_log_p(self.log_p_values(scores))

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
        calibrator.tail_scale_ = max(_tail_scale(scores, len(scores)), calibrator.tail_floor)
        return calibrator


def z_of_log_p(log_p: np.ndarray) -> np.ndarray:
    """``Phi^-1(1 - p)`` from ``log p``: finite however small p is."""
    return -ndtri_exp(np.asarray(log_p, dtype=np.float64))


def _tail_size(n: int) -> int:
    """How many of ``n`` calibration scores the exponential tail is fitted to."""
    return min(n - 1, max(TAIL_MIN, int(np.ceil(TAIL_SHARE * n))))


def _tail_scale(largest: np.ndarray, n: int) -> float:
    """Mean excess of the largest of ``n`` calibration scores over the next one: the
    exponential tail's scale. ``largest`` holds at least the ``_tail_size(n) + 1`` largest,
    sorted."""
    k = _tail_size(n)
    if k < 1:
        return 0.0
    return float(np.mean(largest[-k:] - largest[-k - 1]))
