"""The detector contract, checked for every registered kind (and PyOD models through the adapter).

Each kind is fitted once per module on a small correlated data set, with the short training
budgets of ``FAST`` so the suite stays quick; a kind without an entry runs with its defaults.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import detectors
from detectors import Detector

# Short budgets for tests; the defaults are for real data.
TORCH_FAST = {"max_epochs": 25, "hidden_size": 32}
FAST: dict[str, dict] = {
    "gmm": {"max_components": 3},
    "vae": TORCH_FAST,
    "made": TORCH_FAST,
    "gan": TORCH_FAST,
    "ensemble": {"members": ["ar", {"kind": "made", "params": TORCH_FAST}]},
    "pyod:IForest": {"n_estimators": 50, "random_state": 0},
}
# PyOD models through the adapter whose own scores are batch independent and saveable.
PYOD_KINDS = ["pyod:IForest", "pyod:PCA"]
KINDS = detectors.available() + PYOD_KINDS
N_FEATURES = 4


def make(kind: str, **params) -> Detector:
    return detectors.create(kind, **{**FAST.get(kind, {}), **params})


def correlated_rows(n: int, seed: int) -> np.ndarray:
    """Rows near a 2-D plane in 4-D, with features on different scales."""
    rng = np.random.default_rng(seed)
    mixing = np.array([[1.0, 0.5, -0.3, 2.0], [0.0, 1.0, 0.8, -1.0]])
    rows = rng.normal(size=(n, 2)) @ mixing + 0.1 * rng.normal(size=(n, N_FEATURES))
    return rows * np.array([1.0, 10.0, 0.1, 100.0]) + np.array([0.0, 5.0, -1.0, 1000.0])


@pytest.fixture(scope="module")
def train() -> np.ndarray:
    return correlated_rows(300, seed=0)


@pytest.fixture(scope="module")
def test_rows() -> np.ndarray:
    return correlated_rows(60, seed=1)


@pytest.fixture(scope="module", params=KINDS)
def fitted(request: pytest.FixtureRequest, train: np.ndarray) -> Detector:
    return make(request.param).fit(train)


def test_scores_and_attribution_have_the_right_shapes(
    fitted: Detector, test_rows: np.ndarray
) -> None:
    scores = fitted.score_samples(test_rows)
    assert scores.shape == (len(test_rows),)
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(fitted.decision_function(test_rows), -scores)
    if fitted.has_attribution:
        contributions = fitted.attribute(test_rows)
        assert contributions.shape == test_rows.shape
        assert np.isfinite(contributions).all()
    else:
        with pytest.raises(detectors.AttributionUnavailable):
            fitted.attribute(test_rows)


def test_a_far_outlier_scores_above_every_training_row(fitted: Detector, train: np.ndarray) -> None:
    outlier = train.mean(axis=0) + 20 * train.std(axis=0) * np.array([1, -1, 1, -1])
    assert fitted.decision_function(outlier[None, :])[0] > fitted.decision_function(train).max()


def test_save_and_load_give_identical_scores(
    fitted: Detector, test_rows: np.ndarray, tmp_path: Path
) -> None:
    loaded = detectors.load(fitted.save(tmp_path / "model"))
    assert type(loaded) is type(fitted)
    assert loaded.kind == fitted.kind
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.score_samples(test_rows), fitted.score_samples(test_rows))
    if fitted.has_attribution:
        np.testing.assert_array_equal(loaded.attribute(test_rows), fitted.attribute(test_rows))


def test_a_rows_score_does_not_depend_on_its_batch(fitted: Detector, test_rows: np.ndarray) -> None:
    together = fitted.score_samples(test_rows)
    alone = np.array([fitted.score_samples(row[None, :])[0] for row in test_rows[:10]])
    reversed_batch = fitted.score_samples(test_rows[::-1])[::-1]
    # float32 networks round differently with the batch's size; nothing more may differ
    np.testing.assert_allclose(alone, together[:10], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(reversed_batch, together, rtol=1e-5, atol=1e-4)


def test_the_same_seed_gives_the_same_scores(
    fitted: Detector, train: np.ndarray, test_rows: np.ndarray
) -> None:
    again = make(fitted.kind).fit(train)
    np.testing.assert_array_equal(again.score_samples(test_rows), fitted.score_samples(test_rows))


def test_data_frames_are_matched_by_column_name(fitted: Detector, train: np.ndarray) -> None:
    columns = ["a", "b", "c", "d"]
    frame = pd.DataFrame(train, columns=columns)
    named = make(fitted.kind).fit(frame)
    assert named.feature_names == columns
    shuffled = frame[["d", "b", "a", "c"]]
    np.testing.assert_array_equal(named.score_samples(shuffled), named.score_samples(frame))
    with pytest.raises(ValueError, match="missing feature columns: c"):
        named.score_samples(frame.drop(columns="c"))


def test_infinite_values_are_refused(fitted: Detector, test_rows: np.ndarray) -> None:
    rows = test_rows.copy()
    rows[3, 2] = np.inf
    with pytest.raises(ValueError, match="x2"):
        fitted.score_samples(rows)


def test_missing_values_follow_the_detectors_policy(
    fitted: Detector, test_rows: np.ndarray
) -> None:
    rows = test_rows.copy()
    rows[[2, 5], 1] = np.nan
    if fitted.missing_values == "reject":
        with pytest.raises(ValueError, match="NaN or infinite values in feature\\(s\\): x1"):
            fitted.score_samples(rows)
        return
    scores = fitted.score_samples(rows)
    assert np.isfinite(scores).all()
    complete = np.delete(np.arange(len(rows)), [2, 5])
    np.testing.assert_allclose(
        scores[complete], fitted.score_samples(test_rows)[complete], rtol=1e-5, atol=1e-4
    )
    assert np.isfinite(fitted.attribute(rows)).all()
    expected_imputed = np.isin(np.arange(len(rows)), [2, 5]) & (fitted.missing_values == "impute")
    np.testing.assert_array_equal(fitted.imputed_rows(rows), expected_imputed)


@pytest.mark.parametrize("kind", detectors.available())
def test_a_feature_constant_in_training_is_not_scaled_by_the_rounding_of_its_mean(
    kind: str, train: np.ndarray
) -> None:
    """301 copies of 0.999 have a standard deviation of 1e-16, not 0 (the mean is rounded):
    as with an exactly constant feature, a change of 1e-9 must not look like an anomaly."""
    constant = np.full((len(train) + 1, 1), 0.999)
    rows = np.hstack([np.vstack([train, train[:1]]), constant])
    assert 0 < rows[:, -1].std() < 1e-15
    model = make(kind).fit(rows)
    nudged = rows[:20].copy()
    nudged[:, -1] += 1e-9
    np.testing.assert_allclose(
        model.score_samples(nudged), model.score_samples(rows[:20]), rtol=1e-4, atol=1e-3
    )


def test_unknown_parameters_are_refused() -> None:
    for kind in KINDS:
        with pytest.raises(ValueError, match="no parameter"):
            detectors.create(kind, no_such_parameter=1)


def test_a_detector_missing_an_abstract_method_cannot_be_made() -> None:
    class Empty(Detector):
        kind = "empty"

    with pytest.raises(TypeError, match="abstract"):
        Empty()


def test_importing_detectors_does_not_import_torch_or_pyod() -> None:
    import subprocess
    import sys

    code = "import sys, detectors; print('torch' in sys.modules, 'pyod' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


# -- the torch detectors' shared training loop ----------------------------------------------


def test_the_training_budget_scales_with_the_rows() -> None:
    from detectors.torch_support import COMPUTE_BUDGET, TrainingPlan

    small = TrainingPlan.for_rows(50, None, max_epochs=300, max_steps=3000, n_parameters=10_000)
    assert (small.batch_size, small.max_epochs) == (32, 300)  # many epochs of a few batches
    large = TrainingPlan.for_rows(100_000, None, 300, 3000, n_parameters=10_000)
    assert large.batch_size == 1024
    assert large.max_epochs == 3000 // 98  # the step limit, at 98 batches per epoch
    # a network of a million parameters on 10,000 rows (batches of 1000) affords 200 steps
    wide = TrainingPlan.for_rows(10_000, None, 300, 3000, n_parameters=1_000_000)
    assert COMPUTE_BUDGET // (1000 * 1_000_000) == 200
    assert (wide.batch_size, wide.max_epochs) == (1000, 20)


def test_training_stops_after_patience_and_keeps_the_best_epoch() -> None:
    import torch  # after detectors, which sets torch's OpenMP up for shared machines

    from detectors.torch_support import TrainingPlan, train_with_early_stopping

    network = torch.nn.Linear(1, 1)
    losses = iter([3.0, 1.0, 2.0, 2.5, 0.5])
    epochs_seen: list[int] = []

    def step(batch: torch.Tensor) -> None:
        with torch.no_grad():
            network.bias.fill_(len(epochs_seen))

    def validation_loss() -> float:
        epochs_seen.append(1)
        return next(losses)

    plan = TrainingPlan(batch_size=10, max_epochs=10)
    epochs = train_with_early_stopping(network, torch.zeros(10, 1), step, validation_loss, plan, 2)
    assert epochs == 4  # no improvement on epochs 3 and 4
    assert network.bias.item() == 1.0  # the weights after epoch 2, the best


# -- the torch detectors' chunked scoring ----------------------------------------------------


@pytest.mark.parametrize("kind", ["vae", "made", "gan"])
def test_rows_scored_in_several_chunks_keep_their_order_and_scores(kind: str) -> None:
    from detectors.torch_support import SCORE_CHUNK

    rows = correlated_rows(int(2.5 * SCORE_CHUNK), seed=2)
    model = make(kind, max_epochs=3).fit(rows)
    together = model.score_samples(rows)  # three chunks, on the CPU side by side
    # every 97th row alone in its batch, through the single-chunk path
    piecewise = np.concatenate(
        [model.score_samples(rows[i : i + 1]) for i in range(0, len(rows), 97)]
    )
    np.testing.assert_allclose(together[::97], piecewise, rtol=1e-5, atol=1e-4)
    shuffled = np.random.default_rng(0).permutation(len(rows))
    np.testing.assert_allclose(
        model.score_samples(rows[shuffled]), together[shuffled], rtol=1e-5, atol=1e-4
    )


def test_work_spread_over_cores_comes_back_in_order_and_restores_torchs_threads() -> None:
    import torch

    from detectors.torch_support import machine_cores, map_over_cores

    threads_seen: list[int] = []

    def square(item: int) -> np.ndarray:
        threads_seen.append(torch.get_num_threads())
        return np.array([item * item])

    results = map_over_cores(square, range(50), torch.device("cpu"))
    assert [int(r[0]) for r in results] == [i * i for i in range(50)]
    if machine_cores() > 1:
        assert set(threads_seen) == {1}  # each worker runs torch's kernels by itself
    assert torch.get_num_threads() == machine_cores()

    def fail(item: int) -> np.ndarray:
        raise ValueError(f"chunk {item} is bad")

    with pytest.raises(ValueError, match="chunk"):
        map_over_cores(fail, range(4), torch.device("cpu"))
    assert torch.get_num_threads() == machine_cores()
