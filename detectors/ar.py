"""Linear autoregressive detector: each step generated from the previous ones (a VAR).

Input rows are flattened windows (``detectors.windows``): ``lags + 1`` steps of ``d``
channels, oldest first. The last step is predicted from the ``lags`` before it by least
squares (with a small ridge), and its residual is Gaussian with a full covariance learned
on the training windows. Score: the exact predictive negative log-likelihood of the
observed last step. Attribution: each channel's NLL given the other channels' residuals,
put on that channel's last-step column (lag columns get 0). Missing last-step channels are
marginalised out exactly; a missing lag value is imputed from its channel's nearest observed
lag in the window (earlier first), or the channel's mean when it has none.
"""

from __future__ import annotations

import numpy as np

from detectors.base import Detector

LOG_2PI = np.log(2 * np.pi)


class LinearARDetector(Detector):
    """Vector autoregression with Gaussian residuals, fitted on windows.

    Parameters
    ----------
    channels : int or None
        Channels per step. None: counted from window column names (``x@t-0``) when fitted
        on a data frame of windows; otherwise every column is a channel of a single step
        (no lags: a plain multivariate Gaussian).
    ridge : float
        L2 penalty on the coefficients, relative to the number of training windows.
    min_variance : float
        Floor on residual variances, in standardised units, so a channel that was
        perfectly predictable in training cannot make any deviation infinitely unlikely.
    """

    kind = "ar"
    missing_values = "impute"

    def __init__(
        self, channels: int | None = None, ridge: float = 1e-3, min_variance: float = 1e-4
    ) -> None:
        self.channels = channels
        self.ridge = ridge
        self.min_variance = min_variance

    # -- fitting -----------------------------------------------------------------------

    def _channels(self, n_columns: int) -> int:
        names = [str(name) for name in getattr(self, "feature_names_in_", [])]
        if self.channels is not None:
            count = self.channels
        elif any(name.endswith("@t-0") for name in names):
            count = sum(name.endswith("@t-0") for name in names)
        else:
            count = n_columns
        if count < 1 or n_columns % count:
            raise ValueError(f"{n_columns} columns are not whole windows of {count} channels")
        return count

    def _fit(self, X: np.ndarray) -> None:
        d = self._channels(X.shape[1])
        self.n_channels_ = d
        steps = X.reshape(len(X), -1, d)
        self.center_ = np.nanmean(steps, axis=(0, 1))
        scale = np.nanstd(steps, axis=(0, 1))
        self.scale_ = np.where(scale > 0, scale, 1.0)
        lags, target = self._split(X)
        complete = ~np.isnan(target).any(axis=1)
        if complete.sum() < 2:
            raise ValueError("need at least 2 windows whose last step is fully observed")
        design = self._design(lags[complete])
        penalty = self.ridge * complete.sum() * np.eye(design.shape[1])
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        self.coef_ = np.linalg.solve(design.T @ design + penalty, design.T @ target[complete])
        residuals = target[complete] - design @ self.coef_
        covariance = np.atleast_2d(np.cov(residuals, rowvar=False, bias=True))
        self.covariance_ = covariance + self.min_variance * np.eye(d)

    def _split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardised lag columns (gaps imputed) and the last step."""
        d = self.n_channels_
        steps = (X.reshape(len(X), -1, d) - self.center_) / self.scale_
        lags = _fill_gaps(steps[:, :-1, :])
        return lags.reshape(len(X), -1), steps[:, -1, :]

    @staticmethod
    def _design(lags: np.ndarray) -> np.ndarray:
        return np.hstack([np.ones((len(lags), 1)), lags])

    def _residuals(self, X: np.ndarray) -> np.ndarray:
        lags, target = self._split(X)
        return target - self._design(lags) @ self.coef_

    # -- scoring -----------------------------------------------------------------------

    def _score_samples(self, X: np.ndarray) -> np.ndarray:
        residuals = self._residuals(X)
        log_likelihood = np.empty(len(X))
        observed = ~np.isnan(residuals)
        patterns, which = np.unique(observed, axis=0, return_inverse=True)
        for number, pattern in enumerate(patterns):
            rows = which.ravel() == number
            log_likelihood[rows] = self._gaussian_log_density(residuals[rows][:, pattern], pattern)
        return log_likelihood - (np.log(self.scale_) * observed).sum(axis=1)

    def _gaussian_log_density(self, residuals: np.ndarray, observed: np.ndarray) -> np.ndarray:
        if not observed.any():
            return np.zeros(len(residuals))
        covariance = self.covariance_[np.ix_(observed, observed)]
        chol = np.linalg.cholesky(covariance)
        solved = np.linalg.solve(chol, residuals.T)
        log_det = 2 * np.log(np.diagonal(chol)).sum()
        return -0.5 * (observed.sum() * LOG_2PI + log_det + (solved**2).sum(axis=0))

    def _attribute(self, X: np.ndarray) -> np.ndarray:
        """Each channel's NLL given the others' residuals, on its last-step column."""
        residuals = np.nan_to_num(self._residuals(X), nan=0.0)
        precision = np.linalg.inv(self.covariance_)
        diagonal = np.diagonal(precision)
        projected = residuals @ precision
        conditional = 0.5 * (LOG_2PI - np.log(diagonal) + projected**2 / diagonal)
        out = np.zeros(X.shape)
        out[:, -self.n_channels_ :] = conditional
        return out

    # -- persistence -------------------------------------------------------------------

    def _weights(self) -> dict[str, np.ndarray]:
        return {
            "center": self.center_,
            "scale": self.scale_,
            "coef": self.coef_,
            "covariance": self.covariance_,
        }

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.center_, self.scale_ = weights["center"], weights["scale"]
        self.coef_, self.covariance_ = weights["coef"], weights["covariance"]
        self.n_channels_ = len(self.center_)


def _fill_gaps(lags: np.ndarray) -> np.ndarray:
    """Fill each channel's missing lags forward in time, then backward, then with 0 (the mean).

    ``lags`` is (windows, steps, channels), standardised.
    """
    if not np.isnan(lags).any():
        return lags
    filled = lags.copy()
    for step in range(1, filled.shape[1]):
        gap = np.isnan(filled[:, step])
        filled[:, step][gap] = filled[:, step - 1][gap]
    for step in range(filled.shape[1] - 2, -1, -1):
        gap = np.isnan(filled[:, step])
        filled[:, step][gap] = filled[:, step + 1][gap]
    return np.nan_to_num(filled, nan=0.0)
