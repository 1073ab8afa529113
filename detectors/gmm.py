"""Gaussian mixture detector: maximum-likelihood full-covariance mixture on standardised rows.

Score: the negative log-likelihood of a row. Attribution: each feature's conditional negative
log-likelihood given all the other features, ``-log p(x_j | x_-j)``, computed exactly from the
mixture (each component's Gaussian conditional, reweighted by how well the other features fit
that component).

Missing values are marginalised exactly: a row with NaN features is scored by the mixture's
marginal over its observed features (each component's Gaussian restricted to them), and its
attribution covers the observed features, 0 for the missing ones. Fitting uses the rows without
missing values (standardisation uses every observed value).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

from detectors.base import Detector
from detectors.missing import observed_patterns
from detectors.windows import channel_scaling

LOG_2PI = np.log(2 * np.pi)
# Rows per chunk when scoring, so memory stays flat on million-row batches.
CHUNK = 16_384
# Rows with a value this large are scaled down before whitening, so squaring cannot overflow.
HUGE = 1e100


class GaussianMixtureDetector(Detector):
    """Full-covariance Gaussian mixture; the number of components is chosen by BIC when None.

    Parameters
    ----------
    n_components : int or None
        Mixture size; None picks the size with the lowest BIC among 1..``max_components``.
    max_components : int
        Largest size tried by BIC.
    bic_sample : int
        Rows (drawn at random) used to compare sizes by BIC; the chosen size is refitted on all.
    reg_covar : float
        Added to covariance diagonals, in standardised units: 0.0025 floors every component's
        spread at 0.05 standard deviations, as the torch detectors' ``min_scale`` does, so a
        component cannot collapse onto repeated values (its effect on ADBench is recorded in
        ``benchmarks/README.md``, from ``benchmarks/results/tabular-generative.md``).
    n_init, max_iter : int
        EM restarts and iterations, as in scikit-learn.
    random_state : int
        Seed; the same data and seed give the same model.
    """

    kind = "gmm"
    missing_values = "marginalise"

    def __init__(
        self,
        n_components: int | None = None,
        max_components: int = 8,
        bic_sample: int = 20_000,
        reg_covar: float = 0.0025,
        n_init: int = 1,
        max_iter: int = 200,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.max_components = max_components
        self.bic_sample = bic_sample
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------------------

    def _fit(self, X: np.ndarray) -> None:
        self.center_, self.scale_ = channel_scaling(X, X.shape[1])
        gaps = np.isnan(X).any(axis=1)
        complete = X[~gaps] if gaps.any() else X
        if len(complete) < 2:
            raise ValueError(
                f"need at least 2 rows without missing values to fit a mixture, got {len(complete)}"
            )
        Z = complete - self.center_  # one copy, standardised in place
        Z /= self.scale_
        settings = {
            "reg_covar": self.reg_covar,
            "n_init": self.n_init,
            "max_iter": self.max_iter,
            "random_state": self.random_state,
        }
        if self.n_components:
            mixture = gaussian_mixture(self.n_components, **settings).fit(Z)
        else:
            mixture = mixture_by_bic(Z, self.max_components, self.bic_sample, **settings)
        self.weights_ = mixture.weights_
        self.means_ = mixture.means_
        self.precisions_cholesky_ = mixture.precisions_cholesky_

    @property
    def n_components_(self) -> int:
        """The number of mixture components fitted."""
        return len(self.weights_)

    # -- scoring -----------------------------------------------------------------------

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (X - self.center_) / self.scale_

    def _score_samples(self, X: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(X))
        for rows, observed in _rows_by_observed_features(X):
            means, chols = self._marginal(observed)
            whitening = stacked_whitening(
                self.weights_, means, chols, self.center_[observed], self.scale_[observed]
            )
            for chunk in _chunks(rows):
                values = X[chunk] if observed.all() else X[chunk][:, observed]
                scores[chunk] = whitened_log_density(values, *whitening)
        return scores

    def _attribute(self, X: np.ndarray) -> np.ndarray:
        """-log p(x_j | x_-j) per observed feature, in standardised units (comparable across
        features); 0 for missing features."""
        out = np.zeros(X.shape)
        log_weights = np.log(self.weights_)
        for rows, observed in _rows_by_observed_features(X):
            means, chols = self._marginal(observed)
            columns = np.flatnonzero(observed)
            for chunk in _chunks(rows):
                Z = self._standardise(X[chunk])[:, observed]
                joint = _component_log_densities(Z, means, chols) + log_weights  # (n, K)
                # log w_k + log N_k(z_-j) = joint_k - log N_k(z_j | z_-j), for every j: (n, K, d)
                others = joint[:, :, None] - _conditional_log_densities(Z, means, chols)
                contributions = logsumexp(others, axis=1) - logsumexp(joint, axis=1)[:, None]
                out[_rows_columns(chunk, columns)] = contributions
        return out

    def conditional_moments(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each feature given all the others, in the data's
        units: the moments of the mixture's conditional ``p(x_j | x_-j)``, the band a
        feature was expected in. NaN for rows with a missing value."""
        values = self._as_array(X)
        mean, sd = np.full(values.shape, np.nan), np.full(values.shape, np.nan)
        complete = ~np.isnan(values).any(axis=1)
        if not complete.any():
            return mean, sd
        Z = self._standardise(values[complete])
        joint = _component_log_densities(Z, self.means_, self.precisions_cholesky_)
        joint += np.log(self.weights_)
        # log w_k N_k(z_-j): how well the other features fit component k, (n, K, d)
        others = joint[:, :, None] - _conditional_log_densities(
            Z, self.means_, self.precisions_cholesky_
        )
        responsibility = np.exp(others - logsumexp(others, axis=1, keepdims=True))
        first, second = np.zeros(Z.shape), np.zeros(Z.shape)
        for k, chol in enumerate(self.precisions_cholesky_):
            precision = chol @ chol.T
            diagonal = np.diagonal(precision)
            expected = Z - ((Z - self.means_[k]) @ precision) / diagonal
            first += responsibility[:, k, :] * expected
            second += responsibility[:, k, :] * (expected**2 + 1 / diagonal)
        mean[complete] = first * self.scale_ + self.center_
        sd[complete] = np.sqrt(np.maximum(second - first**2, 0.0)) * self.scale_
        return mean, sd

    def _marginal(self, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Means and precision Cholesky factors of every component over ``observed`` features."""
        if observed.all():
            return self.means_, self.precisions_cholesky_
        chols = []
        for chol in self.precisions_cholesky_:
            covariance = np.linalg.inv(chol @ chol.T)[np.ix_(observed, observed)]
            chols.append(np.linalg.cholesky(np.linalg.inv(covariance)))
        return self.means_[:, observed], np.stack(chols)

    # -- persistence -------------------------------------------------------------------

    def _weights(self) -> dict[str, np.ndarray]:
        return {
            "center": self.center_,
            "scale": self.scale_,
            "weights": self.weights_,
            "means": self.means_,
            "precisions_cholesky": self.precisions_cholesky_,
        }

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.center_, self.scale_ = weights["center"], weights["scale"]
        self.weights_, self.means_ = weights["weights"], weights["means"]
        self.precisions_cholesky_ = weights["precisions_cholesky"]


def gaussian_mixture(size: int, **settings) -> GaussianMixture:
    """scikit-learn's full-covariance mixture of ``size`` components with ``settings``
    (``reg_covar``, ``n_init``, ``max_iter``, ``random_state``)."""
    return GaussianMixture(n_components=size, covariance_type="full", **settings)


def mixture_by_bic(
    Z: np.ndarray, max_components: int, bic_sample: int, **settings
) -> GaussianMixture:
    """A full-covariance mixture fitted on the rows of ``Z``, of the size from 1 to
    ``max_components`` with the lowest BIC on at most ``bic_sample`` of them (drawn with
    ``settings["random_state"]``); each component gets more rows than it has parameters per
    dimension, and a distinct row of its own."""
    sample = Z
    if len(Z) > bic_sample:
        rng = np.random.default_rng(settings.get("random_state"))
        sample = Z[rng.choice(len(Z), bic_sample, replace=False)]
    largest = max(1, min(max_components, len(sample) // (2 * (Z.shape[1] + 1))))
    largest = min(largest, len(np.unique(sample, axis=0)))  # k-means needs k distinct rows
    bics = [gaussian_mixture(k, **settings).fit(sample).bic(sample) for k in range(1, largest + 1)]
    return gaussian_mixture(int(np.argmin(bics)) + 1, **settings).fit(Z)


def stacked_whitening(
    weights: np.ndarray,
    means: np.ndarray,
    chols: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A mixture (``chols`` factor the components' precisions, in units standardised by
    ``center`` and ``scale``) as one matrix product on unscaled rows.

    Returns the stacked whitening maps ``L_k / scale`` (d, K*d), their offsets
    ``L_k^T (center / scale + mu_k)`` (K*d,) and each component's log normaliser, log weight
    and the standardisation's Jacobian (K,), for :func:`whitened_log_density`.
    """
    projection = np.concatenate([chol / scale[:, None] for chol in chols], axis=1)
    offset = np.concatenate(
        [(center / scale + mean) @ chol for mean, chol in zip(means, chols, strict=True)]
    )
    log_dets = np.array([np.log(np.abs(np.diagonal(chol))).sum() for chol in chols])
    constant = np.log(weights) + log_dets - 0.5 * len(scale) * LOG_2PI - np.log(scale).sum()
    return projection, offset, constant


def whitened_log_density(
    values: np.ndarray, projection: np.ndarray, offset: np.ndarray, constant: np.ndarray
) -> np.ndarray:
    """The mixture's log-density of each row of ``values``, given its
    :func:`stacked_whitening`; ``-inf`` where a row lies beyond floating-point range, never NaN.
    """
    # row i, component k: y_ik = L_k^T (z_i - mu_k), z_i the standardised row
    with np.errstate(over="ignore", invalid="ignore"):  # such rows are redone below
        whitened = values @ projection - offset
        np.square(whitened, out=whitened)
    distances = whitened.reshape(len(values), len(constant), -1).sum(axis=2)
    magnitude = np.abs(values).max(axis=1)
    huge = magnitude > HUGE
    if huge.any():  # y = m (L^T (z / m) - offset / m): square the scaled row, then scale back
        scale = magnitude[huge][:, None]
        scaled = np.square(values[huge] / scale @ projection - offset / scale)
        with np.errstate(over="ignore"):
            distances[huge] = scaled.reshape(len(scale), len(constant), -1).sum(axis=2) * scale**2
    return _log_sum_exp(constant - 0.5 * distances)


def _component_log_densities(Z: np.ndarray, means: np.ndarray, chols: np.ndarray) -> np.ndarray:
    """log N_k(z) for every row and component, shape (n, K); ``chols`` factor the precisions."""
    n, d = Z.shape
    out = np.empty((n, len(means)))
    for k, (mean, chol) in enumerate(zip(means, chols, strict=True)):
        y = (Z - mean) @ chol
        log_det = np.log(np.abs(np.diagonal(chol))).sum()
        out[:, k] = -0.5 * (d * LOG_2PI + np.einsum("ij,ij->i", y, y)) + log_det
    return out


def _conditional_log_densities(Z: np.ndarray, means: np.ndarray, chols: np.ndarray) -> np.ndarray:
    """log N_k(z_j | z_-j) for every row, component and feature, shape (n, K, d).

    With precision matrix P_k, the conditional of z_j given the rest has variance
    1 / P_jj and residual (P (z - mu))_j / P_jj.
    """
    out = np.empty((len(Z), len(means), Z.shape[1]))
    for k, (mean, chol) in enumerate(zip(means, chols, strict=True)):
        precision = chol @ chol.T
        diagonal = np.diagonal(precision)
        projected = (Z - mean) @ precision
        out[:, k, :] = -0.5 * LOG_2PI + 0.5 * np.log(diagonal) - 0.5 * projected**2 / diagonal
    return out


def _log_sum_exp(values: np.ndarray) -> np.ndarray:
    """log sum_k exp(values[:, k]), stably (faster than scipy's for a few columns)."""
    if values.shape[1] == 1:
        return values[:, 0]
    largest = values.max(axis=1)
    if np.isneginf(largest).any():  # every component's density underflows: -inf, not NaN
        safe = np.where(np.isneginf(largest), 0.0, largest)
        with np.errstate(divide="ignore"):
            return safe + np.log(np.exp(values - safe[:, None]).sum(axis=1))
    return largest + np.log(np.exp(values - largest[:, None]).sum(axis=1))


def _rows_by_observed_features(X: np.ndarray) -> list[tuple[slice | np.ndarray, np.ndarray]]:
    """Rows grouped by which features they observe: (rows, observed mask) per group.

    Without missing values this is one group, every row and feature, as a slice (no copy).
    Rows missing every feature are left out (their log-likelihood is 0: nothing observed).
    """
    observed = ~np.isnan(X)
    if observed.all():
        return [(slice(0, len(X)), np.ones(X.shape[1], dtype=bool))]
    return [(rows, pattern) for rows, pattern in observed_patterns(observed) if pattern.any()]


def _chunks(rows: slice | np.ndarray) -> list[slice | np.ndarray]:
    """``rows`` cut into pieces of at most CHUNK rows."""
    if isinstance(rows, slice):
        return [slice(i, min(i + CHUNK, rows.stop)) for i in range(rows.start, rows.stop, CHUNK)]
    return [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]


def _rows_columns(rows: slice | np.ndarray, columns: np.ndarray) -> tuple:
    """An index selecting ``columns`` of ``rows`` for assignment."""
    if isinstance(rows, slice):
        return rows, columns
    return np.ix_(rows, columns)
