"""The MADE detector: an exact density, its autoregressive structure, anomalies, attribution."""

from __future__ import annotations

import numpy as np
import pytest

import detectors
from detectors.made import MADEDetector

FAST = {"max_epochs": 40, "hidden_size": 32}


def curved(n: int, seed: int) -> np.ndarray:
    """x1 = sin(x0) + noise, x2 = x0 * x1 + noise, x3 independent: a curved 3-D manifold."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-3, 3, n)
    x1 = np.sin(x0) + 0.1 * rng.normal(size=n)
    x2 = x0 * x1 + 0.1 * rng.normal(size=n)
    x3 = rng.normal(size=n)
    return np.column_stack([x0, x1 * 10, x2, x3 + 5])


@pytest.fixture(scope="module")
def model() -> MADEDetector:
    return detectors.create("made", **FAST).fit(curved(1500, seed=0))


def test_rows_off_the_curve_rank_first(model: MADEDetector) -> None:
    normal = curved(300, seed=1)
    anomalies = curved(5, seed=2)
    anomalies[:, 1] *= -1  # sin(x0) with the wrong sign: every feature alone looks normal
    scores = model.decision_function(np.vstack([normal, anomalies]))
    assert scores[len(normal) :].min() > np.sort(scores[: len(normal)])[-3]


def pair_and_loners(n: int, seed: int) -> np.ndarray:
    """x1 = x0 + noise, x2 bimodal, x3 Gaussian; x2 and x3 are independent of the rest."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n)
    x1 = x0 + 0.2 * rng.normal(size=n)
    x2 = rng.choice([-2.0, 2.0], n) + 0.3 * rng.normal(size=n)
    x3 = rng.normal(size=n)
    return np.column_stack([x0, x1, x2, x3])


@pytest.mark.parametrize("feature", [2, 3])
def test_attribution_points_at_the_perturbed_feature(feature: int) -> None:
    # Only a feature the others do not depend on can be blamed alone: when x1 = x0 + noise
    # disagrees, either of the pair may be the odd one, depending on the ordering.
    longer = {**FAST, "max_epochs": 150}
    made = detectors.create("made", **longer).fit(pair_and_loners(1000, seed=0))
    probe = pair_and_loners(20, seed=1)
    probe[:, feature] = [0.0, 4.5][feature - 2]  # in the gap between x2's modes; x3 far out
    assert (made.attribute(probe).argmax(axis=1) == feature).all()


def test_the_density_integrates_to_one() -> None:
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=800)
    rows = np.column_stack([x0, x0**2 + 0.3 * rng.normal(size=800)]) * [2.0, 0.5]
    made = MADEDetector(n_orderings=2, n_components=2, **FAST).fit(rows)
    lows, highs = rows.min(axis=0) - 3 * rows.std(axis=0), rows.max(axis=0) + 3 * rows.std(axis=0)
    a, b = (np.linspace(low, high, 400) for low, high in zip(lows, highs, strict=True))
    grid = np.stack(np.meshgrid(a, b, indexing="ij"), axis=-1).reshape(-1, 2)
    cell = (a[1] - a[0]) * (b[1] - b[0])
    assert np.exp(made.score_samples(grid)).sum() * cell == pytest.approx(1.0, abs=0.02)


def test_a_feature_depends_only_on_the_features_before_it() -> None:
    rows = curved(500, seed=0)
    made = MADEDetector(n_orderings=1, **FAST).fit(rows)  # the natural order
    probe = curved(10, seed=4)
    changed = probe.copy()
    changed[:, 2] += 3.0
    before, after = made.attribute(probe), made.attribute(changed)
    np.testing.assert_allclose(after[:, :2], before[:, :2], rtol=1e-6, atol=1e-6)
    assert (after[:, 2] != before[:, 2]).all()


def test_missing_trailing_features_are_marginalised_exactly() -> None:
    rows = curved(500, seed=0)
    made = MADEDetector(n_orderings=1, **FAST).fit(rows)
    probe = curved(10, seed=5)
    gaps = probe.copy()
    gaps[:, 2:] = np.nan
    # log p(x0, x1) = -(nll(x0) + nll(x1 | x0)) in standardised units, minus the log scales
    expected = -made.attribute(probe)[:, :2].sum(axis=1) - np.log(made.scale_[:2]).sum()
    np.testing.assert_allclose(made.score_samples(gaps), expected, rtol=1e-5)


def test_missing_values_are_imputed_and_marked(model: MADEDetector) -> None:
    probe = curved(10, seed=6)
    probe[:3, 0] = np.nan
    probe[3, 1:3] = np.nan
    scores = model.score_samples(probe)
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(model.imputed_rows(probe), np.arange(10) < 4)
    contributions = model.attribute(probe)
    assert (contributions[:3, 0] == 0).all()
    assert (contributions[3, 1:3] == 0).all()
