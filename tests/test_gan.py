"""The GAN detector: anomalies, attribution, its two score parts, spectral norm, missing values."""

from __future__ import annotations

import numpy as np
import pytest

import detectors
from detectors.gan import ALADDetector

FAST = {"max_epochs": 100}
# Eight features that share two factors evenly, so that every feature is predictable from the
# others: a reconstruction can then only put a change of one feature back on that feature.
LOADINGS = np.array(
    [[1.0, 0.8, 0.6, 0.2, -0.2, -0.6, -0.8, -1.0], [0.3, -0.6, 0.9, -1.0, 1.0, -0.7, 0.6, -0.3]]
)
NOISE = 0.1
SCALES = np.array([1.0, 10.0, 0.1, 1.0, 3.0, 1.0, 0.5, 2.0])


def plane(n: int, seed: int) -> np.ndarray:
    """Rows near a 2-D plane in 8-D, on mixed scales."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, 2)) @ LOADINGS + NOISE * rng.normal(size=(n, 8))
    return rows * SCALES


@pytest.fixture(scope="module")
def model() -> ALADDetector:
    return detectors.create("gan", **FAST).fit(plane(1500, seed=0))


def test_rows_off_the_plane_rank_first(model: ALADDetector) -> None:
    normal = plane(300, seed=1)
    anomalies = plane(5, seed=2)
    anomalies[:, 3] += 15 * NOISE * SCALES[3]
    scores = model.decision_function(np.vstack([normal, anomalies]))
    assert scores[len(normal) :].min() > scores[: len(normal)].max()


@pytest.mark.parametrize("feature", range(8))
def test_attribution_points_at_the_feature_pushed_off_the_plane(
    model: ALADDetector, feature: int
) -> None:
    probe = plane(20, seed=3)
    probe[:, feature] += 15 * NOISE * SCALES[feature]
    assert (model.attribute(probe).argmax(axis=1) == feature).all()


def test_the_score_weighs_reconstruction_and_critic_alike(model: ALADDetector) -> None:
    import torch  # after detectors, which sets torch's OpenMP up for shared machines

    rows = model._tensor(model._standardise(plane(2000, seed=4)))
    with torch.no_grad():
        error, distance = model._score_parts(rows, torch.ones_like(rows, dtype=torch.bool))
    # each part is divided by its median on held-out normal rows: on new normal rows both
    # medians are near 1
    scaled = [float(error.median()) / model.score_scales_[0]]
    scaled.append(float(distance.median()) / model.score_scales_[1])
    assert scaled == pytest.approx([1.0, 1.0], abs=0.25)
    total = -model.score_samples(plane(2000, seed=4))
    np.testing.assert_allclose(
        total,
        (error / model.score_scales_[0] + distance / model.score_scales_[1]).numpy(),
        rtol=1e-5,
    )


def test_the_discriminators_are_spectrally_normalised(model: ALADDetector) -> None:
    import torch  # after detectors, which sets torch's OpenMP up for shared machines

    critics = [model.network_.d_xz, model.network_.d_xx, model.network_.d_zz]
    layers = [m for c in critics for m in c.modules() if isinstance(m, torch.nn.Linear)]
    assert layers
    for layer in layers:
        largest = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
        assert float(largest) == pytest.approx(1.0, abs=0.1)


def test_missing_features_are_imputed_and_left_out_of_the_reconstruction(
    model: ALADDetector,
) -> None:
    rows = plane(50, seed=5)
    rows[::5, 1] = np.nan
    assert np.isfinite(model.score_samples(rows)).all()
    np.testing.assert_array_equal(model.imputed_rows(rows), np.arange(50) % 5 == 0)
    assert (model.attribute(rows)[::5, 1] == 0).all()
