"""Gaussian mixture detector: maximum-likelihood full-covariance mixture on standardised rows.

Score: the negative log-likelihood of a row. Attribution: each feature's conditional negative
log-likelihood given all the other features, ``-log p(x_j | x_-j)``, computed exactly from the
mixture (each component's Gaussian conditional, reweighted by how well the other features fit
that component).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

from detectors.base import Detector

LOG_2PI = np.log(2 * np.pi)
# Rows per chunk when scoring, so memory stays flat on million-row batches.
CHUNK = 65_536


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
        Added to covariance diagonals, in standardised units.
    n_init, max_iter : int
        EM restarts and iterations, as in scikit-learn.
    random_state : int
        Seed; the same data and seed give the same model.
    """

    kind = "gmm"

    def __init__(
        self,
        n_components: int | None = None,
        max_components: int = 8,
        bic_sample: int = 20_000,
        reg_covar: float = 1e-6,
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
        self.center_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        Z = (X - self.center_) / self.scale_
        size = self.n_components or self._size_by_bic(Z)
        mixture = self._mixture(size).fit(Z)
        self.weights_ = mixture.weights_
        self.means_ = mixture.means_
        self.precisions_cholesky_ = mixture.precisions_cholesky_

    def _mixture(self, size: int) -> GaussianMixture:
        return GaussianMixture(
            n_components=size,
            covariance_type="full",
            reg_covar=self.reg_covar,
            n_init=self.n_init,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )

    def _size_by_bic(self, Z: np.ndarray) -> int:
        sample = Z
        if len(Z) > self.bic_sample:
            rng = np.random.default_rng(self.random_state)
            sample = Z[rng.choice(len(Z), self.bic_sample, replace=False)]
        # Each component needs more rows than it has parameters per dimension.
        largest = max(1, min(self.max_components, len(sample) // (2 * (Z.shape[1] + 1))))
        bics = [self._mixture(k).fit(sample).bic(sample) for k in range(1, largest + 1)]
        return int(np.argmin(bics)) + 1

    @property
    def n_components_(self) -> int:
        """The number of mixture components fitted."""
        return len(self.weights_)

    # -- scoring -----------------------------------------------------------------------

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (X - self.center_) / self.scale_

    def _component_log_densities(self, Z: np.ndarray) -> np.ndarray:
        """log N_k(z) for every row and component, shape (n, K)."""
        n, d = Z.shape
        out = np.empty((n, len(self.weights_)))
        for k, (mean, chol) in enumerate(zip(self.means_, self.precisions_cholesky_, strict=True)):
            y = (Z - mean) @ chol
            log_det = np.log(np.diagonal(chol)).sum()
            out[:, k] = -0.5 * (d * LOG_2PI + np.einsum("ij,ij->i", y, y)) + log_det
        return out

    def _score_samples(self, X: np.ndarray) -> np.ndarray:
        jacobian = np.log(self.scale_).sum()
        scores = np.empty(len(X))
        for start in range(0, len(X), CHUNK):
            Z = self._standardise(X[start : start + CHUNK])
            joint = self._component_log_densities(Z) + np.log(self.weights_)
            scores[start : start + CHUNK] = logsumexp(joint, axis=1) - jacobian
        return scores

    def _attribute(self, X: np.ndarray) -> np.ndarray:
        """-log p(x_j | x_-j) per feature, in standardised units (comparable across features)."""
        out = np.empty(X.shape)
        log_weights = np.log(self.weights_)
        for start in range(0, len(X), CHUNK):
            Z = self._standardise(X[start : start + CHUNK])
            joint = self._component_log_densities(Z) + log_weights  # (n, K)
            # log w_k + log N_k(z_-j) = joint_k - log N_k(z_j | z_-j), for every j: (n, K, d)
            others = joint[:, :, None] - self._conditional_log_densities(Z)
            out[start : start + CHUNK] = (
                logsumexp(others, axis=1) - logsumexp(joint, axis=1)[:, None]
            )
        return out

    def _conditional_log_densities(self, Z: np.ndarray) -> np.ndarray:
        """log N_k(z_j | z_-j) for every row, component and feature, shape (n, K, d).

        With precision matrix P_k, the conditional of z_j given the rest has variance
        1 / P_jj and residual (P (z - mu))_j / P_jj.
        """
        out = np.empty((len(Z), len(self.weights_), Z.shape[1]))
        for k, (mean, chol) in enumerate(zip(self.means_, self.precisions_cholesky_, strict=True)):
            precision = chol @ chol.T
            diagonal = np.diagonal(precision)
            projected = (Z - mean) @ precision
            out[:, k, :] = -0.5 * LOG_2PI + 0.5 * np.log(diagonal) - 0.5 * projected**2 / diagonal
        return out

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
