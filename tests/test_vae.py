"""The VAE detector: its likelihood estimate, anomalies, attribution, missing values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import detectors
from detectors.vae import VariationalAutoencoder

FAST = {"hidden_size": 32}
LOADINGS = np.array([[1.0, 0.5, -0.5, 0.8, 0.0, 0.3], [0.0, 1.0, 0.7, -0.4, 0.9, -0.6]])
NOISE = 0.2
SCALES = np.array([1.0, 10.0, 0.1, 1.0, 3.0, 1.0])


def plane(n: int, seed: int) -> np.ndarray:
    """Rows near a 2-D plane in 6-D (factor model), on mixed scales."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, 2)) @ LOADINGS + NOISE * rng.normal(size=(n, 6))
    return rows * SCALES


def true_log_likelihood(rows: np.ndarray) -> np.ndarray:
    """log p(x) under the factor model that generated ``plane``."""
    covariance = (LOADINGS.T @ LOADINGS + NOISE**2 * np.eye(6)) * np.outer(SCALES, SCALES)
    return multivariate_normal(np.zeros(6), covariance).logpdf(rows)


@pytest.fixture(scope="module")
def model() -> VariationalAutoencoder:
    return detectors.create("vae", **FAST).fit(plane(2000, seed=0))


def test_the_score_estimates_the_log_likelihood(model: VariationalAutoencoder) -> None:
    rows = plane(500, seed=1)
    gap = model.score_samples(rows).mean() - true_log_likelihood(rows).mean()
    # the estimate is a lower bound in expectation, and a short fit leaves little slack
    assert -1.0 < gap < 0.2


def test_rows_off_the_plane_rank_first(model: VariationalAutoencoder) -> None:
    normal = plane(300, seed=2)
    anomalies = plane(5, seed=3) + np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.5])  # 7.5 noise sd
    scores = model.decision_function(np.vstack([normal, anomalies]))
    assert scores[len(normal) :].min() > scores[: len(normal)].max()


@pytest.mark.parametrize("feature", range(6))
def test_attribution_points_at_the_feature_pushed_off_the_plane(
    model: VariationalAutoencoder, feature: int
) -> None:
    probe = plane(20, seed=4)
    probe[:, feature] += 12 * NOISE * SCALES[feature]
    assert (model.attribute(probe).argmax(axis=1) == feature).all()


def test_missing_features_are_imputed_and_left_out_of_the_score(
    model: VariationalAutoencoder,
) -> None:
    rows = plane(200, seed=5)
    gaps = rows.copy()
    gaps[:, 2] = np.nan
    np.testing.assert_array_equal(model.imputed_rows(gaps), True)
    contributions = model.attribute(gaps)
    assert (contributions[:, 2] == 0).all()
    # the score estimates the likelihood of the five observed features
    observed = [0, 1, 3, 4, 5]
    covariance = (LOADINGS.T @ LOADINGS + NOISE**2 * np.eye(6)) * np.outer(SCALES, SCALES)
    marginal = multivariate_normal(np.zeros(5), covariance[np.ix_(observed, observed)])
    gap = model.score_samples(gaps).mean() - marginal.logpdf(rows[:, observed]).mean()
    assert -1.0 < gap < 0.2


def test_the_score_weighs_its_samples_by_importance(model: VariationalAutoencoder) -> None:
    import torch  # after detectors, which sets torch's OpenMP up for shared machines

    rows = plane(200, seed=6)
    Z = model._tensor(model._standardise(rows))
    with torch.no_grad():
        log_weights, _ = model.network_.importance_terms(Z, torch.ones_like(Z, dtype=torch.bool))
    elbo = log_weights.mean(dim=1).numpy() - np.log(model.scale_).sum()
    # log mean_k w_k > mean_k log w_k (Jensen) unless the K weights agree
    assert (model.score_samples(rows) > elbo).all()
    assert model.network_.noise.shape[0] == model.n_importance_samples == 8
