"""The Gaussian mixture detector: known anomalies, attribution, exact marginalisation of NaN."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import detectors
from detectors import gmm as gmm_module
from detectors.gmm import GaussianMixtureDetector


def two_clusters(n: int, seed: int) -> np.ndarray:
    """Two elongated clusters in 3-D, on different scales per feature."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-4.0, 0.0, 2.0], [4.0, 1.0, -2.0]])
    chosen = centres[rng.integers(0, 2, n)]
    noise = rng.normal(size=(n, 3)) @ np.array([[1.0, 0.8, 0.0], [0.0, 0.5, 0.3], [0.0, 0.0, 0.4]])
    return (chosen + noise) * np.array([1.0, 20.0, 0.5])


def test_rows_between_the_clusters_rank_first() -> None:
    model = detectors.create("gmm").fit(two_clusters(600, seed=0))
    assert model.n_components_ >= 2
    normal = two_clusters(200, seed=1)
    # inside the range of every feature, but where neither cluster has mass
    anomalies = np.array([[0.0, 0.5, 0.0], [0.5, 0.6, 0.2], [-0.5, 0.4, -0.1]]) * [1, 20, 0.5]
    scores = model.decision_function(np.vstack([normal, anomalies]))
    assert scores[len(normal) :].min() > scores[: len(normal)].max()


def correlated(n: int, seed: int) -> np.ndarray:
    """One Gaussian cloud in 4-D with correlations and mixed scales."""
    rng = np.random.default_rng(seed)
    mixing = np.array(
        [[1.0, 0.5, 0.0, 0.3], [0.0, 1.0, 0.5, 0.3], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    )
    return rng.normal(size=(n, 4)) @ mixing * np.array([1.0, 50.0, 0.1, 3.0])


@pytest.fixture(scope="module")
def cloud() -> GaussianMixtureDetector:
    return detectors.create("gmm").fit(correlated(800, seed=0))


@pytest.mark.parametrize("feature", [0, 1, 2, 3])
def test_attribution_points_at_the_feature_that_breaks_the_correlation(
    cloud: GaussianMixtureDetector, feature: int
) -> None:
    probe = correlated(20, seed=2)
    probe[:, feature] += 5 * correlated(800, seed=0)[:, feature].std()
    assert (cloud.attribute(probe).argmax(axis=1) == feature).all()


@pytest.fixture(scope="module")
def mixture() -> GaussianMixtureDetector:
    return GaussianMixtureDetector(n_components=3).fit(two_clusters(500, seed=0))


def mixture_in_original_units(model: GaussianMixtureDetector):
    """Weights, means and covariances of the fitted mixture in the data's own units."""
    means = model.center_ + model.means_ * model.scale_
    covariances = [
        np.linalg.inv(chol @ chol.T) * np.outer(model.scale_, model.scale_)
        for chol in model.precisions_cholesky_
    ]
    return model.weights_, means, covariances


def test_missing_features_are_marginalised_exactly(mixture: GaussianMixtureDetector) -> None:
    rows = two_clusters(6, seed=3)
    rows[0, 1] = rows[1, [0, 2]] = rows[2, :2] = np.nan
    weights, means, covariances = mixture_in_original_units(mixture)
    expected = []
    for row in rows:
        seen = ~np.isnan(row)
        terms = [
            np.log(w) + multivariate_normal(m[seen], c[np.ix_(seen, seen)]).logpdf(row[seen])
            for w, m, c in zip(weights, means, covariances, strict=True)
        ]
        expected.append(logsumexp(terms))
    np.testing.assert_allclose(mixture.score_samples(rows), expected, rtol=1e-9)
    assert not mixture.imputed_rows(rows).any()


def test_attribution_covers_the_observed_features_only() -> None:
    rows = two_clusters(400, seed=0)
    single = GaussianMixtureDetector(n_components=1).fit(rows)
    _, (mean,), (covariance,) = mixture_in_original_units(single)
    row = two_clusters(1, seed=4)[0]
    row[1] = np.nan
    contributions = single.attribute(row[None, :])[0]
    assert contributions[1] == 0
    # -log p(x_j | x_k) of the 2-D marginal over features 0 and 2, in standardised units
    for j, k in [(0, 2), (2, 0)]:
        slope = covariance[j, k] / covariance[k, k]
        variance = covariance[j, j] - slope * covariance[j, k]
        residual = row[j] - mean[j] - slope * (row[k] - mean[k])
        nll = 0.5 * np.log(2 * np.pi * variance) + 0.5 * residual**2 / variance
        assert contributions[j] == pytest.approx(nll - np.log(single.scale_[j]), rel=1e-9)


def test_a_row_with_nothing_observed_has_log_likelihood_zero(
    mixture: GaussianMixtureDetector,
) -> None:
    rows = np.full((2, 3), np.nan)
    rows[1] = two_clusters(1, seed=5)[0]
    scores = mixture.score_samples(rows)
    assert scores[0] == 0
    assert np.isfinite(scores[1])
    np.testing.assert_array_equal(mixture.attribute(rows)[0], 0)


def test_fitting_uses_the_complete_rows() -> None:
    rows = two_clusters(400, seed=0)
    with_gaps = rows.copy()
    with_gaps[::4, 2] = np.nan
    model = GaussianMixtureDetector(n_components=2).fit(with_gaps)
    assert np.isfinite(model.score_samples(rows)).all()
    assert model.center_[2] == pytest.approx(np.nanmean(with_gaps[:, 2]))
    with pytest.raises(ValueError, match="without missing values"):
        GaussianMixtureDetector().fit(np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, np.nan]]))
    with pytest.raises(ValueError, match="no observed values in feature\\(s\\): x1"):
        GaussianMixtureDetector().fit(np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]]))


def test_conditional_moments_are_the_gaussian_conditional() -> None:
    """One component: x_j given the rest is Gaussian with the textbook mean and variance."""
    train = correlated(4000, seed=3)
    model = GaussianMixtureDetector(n_components=1, reg_covar=0.0).fit(train)
    covariance = np.linalg.inv(model.precisions_cholesky_[0] @ model.precisions_cholesky_[0].T)
    covariance = covariance * np.outer(model.scale_, model.scale_)
    centre = model.means_[0] * model.scale_ + model.center_
    rows = correlated(5, seed=4)
    rows[2, 1] = np.nan
    mean, sd = model.conditional_moments(rows)
    for j in range(4):
        rest = [k for k in range(4) if k != j]
        weights = covariance[j, rest] @ np.linalg.inv(covariance[np.ix_(rest, rest)])
        expected = centre[j] + (rows[:, rest] - centre[rest]) @ weights
        variance = covariance[j, j] - weights @ covariance[rest, j]
        complete = [0, 1, 3, 4]
        np.testing.assert_allclose(mean[complete, j], expected[complete], rtol=1e-6)
        np.testing.assert_allclose(sd[complete, j], np.sqrt(variance), rtol=1e-6)
    assert np.isnan(mean[2]).all() and np.isnan(sd[2]).all()


def test_conditional_moments_of_a_mixture_follow_the_likely_component() -> None:
    """Between two far clusters, the conditional sits on the cluster the others point to."""
    model = detectors.create("gmm", n_components=2).fit(two_clusters(2000, seed=5))
    left, right = np.array([[-4.0, 0.0, 2.0]]), np.array([[4.0, 1.0, -2.0]])
    for cluster in (left, right):
        row = cluster * [1.0, 20.0, 0.5]
        mean, sd = model.conditional_moments(row)
        assert abs(mean[0, 0] - row[0, 0]) < 3 * sd[0, 0] < 4.0


def test_complete_rows_split_off_first_leave_scores_and_attributions_identical(
    mixture: GaussianMixtureDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Grouping only the incomplete rows by pattern gives exactly what grouping every row
    did (``np.unique`` over the whole batch, the former way)."""
    rows = two_clusters(3_000, seed=8)
    gaps = np.random.default_rng(9).random(rows.shape) < 0.05
    rows[gaps] = np.nan
    scores, attributions = mixture.score_samples(rows), mixture.attribute(rows)

    def every_row_by_unique(X: np.ndarray) -> list:
        patterns, group = np.unique(np.isnan(X), axis=0, return_inverse=True)
        return [
            (np.flatnonzero(group.ravel() == g), ~pattern)
            for g, pattern in enumerate(patterns)
            if not pattern.all()
        ]

    monkeypatch.setattr(gmm_module, "_rows_by_observed_features", every_row_by_unique)
    np.testing.assert_array_equal(scores, mixture.score_samples(rows))
    np.testing.assert_array_equal(attributions, mixture.attribute(rows))
