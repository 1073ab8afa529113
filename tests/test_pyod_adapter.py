"""PyOD models behind the Atalaia contract: creation, scores, saving without pickle, attribution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import detectors
from detectors import ArtifactError, AttributionUnavailable
from detectors.base import WEIGHTS_FILE
from detectors.estimator_state import UnsupportedState
from detectors.serialization import read_arrays, write_arrays


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 4)) @ np.array(
        [[1.0, 0.5, 0.0, 0.2], [0.0, 1.0, 0.5, 0.0], [0.0, 0.0, 1.0, 0.4], [0.0, 0.0, 0.0, 1.0]]
    )


@pytest.fixture(scope="module")
def probe() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(40, 4)) * 2


def test_create_passes_parameters_to_pyod(rows: np.ndarray, probe: np.ndarray) -> None:
    from pyod.models.iforest import IForest

    model = detectors.create("pyod:IForest", n_estimators=30, random_state=3).fit(rows)
    assert model.kind == "pyod:IForest"
    assert model.estimator_.n_estimators == 30
    theirs = IForest(n_estimators=30, random_state=3).fit(rows)
    np.testing.assert_array_equal(model.decision_function(probe), theirs.decision_function(probe))


def test_unknown_models_and_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="PyOD has no detector 'NoSuchModel'"):
        detectors.create("pyod:NoSuchModel")
    with pytest.raises(ValueError, match="PyOD's IForest has no parameter\\(s\\) n_trees"):
        detectors.create("pyod:IForest", n_trees=10)
    with pytest.raises(ValueError, match="unknown detector kind 'pyod:'"):
        detectors.create("pyod:")


@pytest.mark.parametrize(
    "name", ["IForest", "PCA", "GMM", "ECOD", "COPOD", "LODA", "OCSVM", "MCD", "INNE"]
)
def test_saved_models_score_exactly_as_before(
    name: str, rows: np.ndarray, probe: np.ndarray, tmp_path: Path
) -> None:
    model = detectors.create(f"pyod:{name}").fit(rows)
    loaded = detectors.load(model.save(tmp_path / name))
    assert loaded.kind == f"pyod:{name}"
    np.testing.assert_array_equal(loaded.decision_function(probe), model.decision_function(probe))


@pytest.mark.parametrize(("name", "attribute"), [("KNN", "neigh_._tree"), ("KDE", "kde_.tree_")])
def test_models_holding_compiled_state_are_refused_whole(
    name: str, attribute: str, rows: np.ndarray, tmp_path: Path
) -> None:
    model = detectors.create(f"pyod:{name}").fit(rows)
    with pytest.raises(UnsupportedState, match=f"model.{attribute}: .* without pickle"):
        model.save(tmp_path / name)
    assert not (tmp_path / name).exists()


def test_a_saved_state_naming_a_foreign_class_does_not_load(
    rows: np.ndarray, tmp_path: Path
) -> None:
    folder = detectors.create("pyod:PCA").fit(rows).save(tmp_path / "pca")
    weights = read_arrays(folder / WEIGHTS_FILE)
    state = json.loads(weights["estimator_state"].tobytes().decode())
    state["__object__"] = "os:_wrap_close"
    weights["estimator_state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    write_arrays(folder / WEIGHTS_FILE, weights)
    with pytest.raises(ArtifactError, match="outside"):
        detectors.load(folder)


def test_attribution_exists_only_where_pyod_has_one(rows: np.ndarray, probe: np.ndarray) -> None:
    forest = detectors.create("pyod:IForest").fit(rows)
    assert not forest.has_attribution
    with pytest.raises(AttributionUnavailable, match="IForest"):
        forest.attribute(probe)
    ecod = detectors.create("pyod:ECOD").fit(rows)
    assert ecod.has_attribution
    np.testing.assert_allclose(
        ecod.attribute(probe).sum(axis=1), ecod.decision_function(probe), rtol=1e-12
    )
    # ECOD ranks a row among the training rows and its batch: shift a few rows of a batch
    shifted = rows[:50].copy()
    shifted[:5, 2] += 8
    assert (ecod.attribute(shifted)[:5].argmax(axis=1) == 2).all()


def test_missing_values_are_refused(rows: np.ndarray, probe: np.ndarray) -> None:
    model = detectors.create("pyod:PCA").fit(rows)
    gaps = probe.copy()
    gaps[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values in feature\\(s\\): x3"):
        model.decision_function(gaps)
