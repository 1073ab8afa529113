"""Any PyOD detector behind the Atalaia contract: ``create("pyod:<Name>", **params)``.

``fit`` and ``decision_function`` are PyOD's own; ``score_samples`` is the negative of PyOD's
anomaly score (not a log-likelihood). Missing values are refused, as PyOD refuses them.

Saving without pickle: the fitted PyOD model is written as a JSON tree plus ``.npz`` arrays by
``detectors.estimator_state``, which accepts plain values, numpy arrays, scikit-learn and PyOD
objects and scikit-learn decision trees. That covers, among others, IForest, PCA, GMM, ECOD,
COPOD, HBOS, LODA, OCSVM, MCD, CBLOF and INNE. Models holding anything else (KNN and LOF hold a
compiled neighbour index, KDE a compiled tree, the deep models torch modules) fit and score
normally but ``save`` refuses them with an error naming the attribute at fault.

Attribution: ECOD and COPOD give each feature's tail probability term, which sums to their
score; the other PyOD models have no per-feature explanation, and ``attribute`` raises
``AttributionUnavailable`` for them (``has_attribution`` says which case applies).

Batch independence holds when PyOD's model has it. ECOD and COPOD do not: they rank new rows
among the training rows together with the rest of the batch, so a row's score moves slightly
with its batch.
"""

from __future__ import annotations

import inspect
import json
from importlib import import_module
from typing import Any

import numpy as np

from detectors.base import Detector
from detectors.errors import AttributionUnavailable
from detectors.estimator_state import from_state, to_state

PREFIX = "pyod:"
# PyOD classes whose module is not their lower-cased name.
MODULES = {
    "AutoEncoder": "auto_encoder",
    "DeepSVDD": "deep_svdd",
    "FeatureBagging": "feature_bagging",
    "AnoGAN": "anogan",
    "SO_GAAL": "so_gaal",
    "MO_GAAL": "mo_gaal",
}
# Models whose per-feature outlyingness (attribute ``O`` after scoring) sums to the score.
PER_FEATURE_SCORES = {"ECOD", "COPOD"}
STATE_ARRAY = "estimator_state"


def pyod_class(name: str) -> type:
    """The PyOD detector class called ``name`` (``IForest``, ``ECOD``, ...)."""
    module_name = MODULES.get(name, name.lower())
    try:
        cls = getattr(import_module(f"pyod.models.{module_name}"), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"PyOD has no detector {name!r} (pyod.models.{module_name})") from exc
    return cls


class PyODDetector(Detector):
    """A PyOD model in the Atalaia contract.

    Parameters
    ----------
    model : str
        The PyOD class name, e.g. ``"IForest"``.
    model_params : dict or None
        Keyword arguments for the PyOD constructor (JSON values, so they can be saved).
    """

    def __init__(self, model: str = "IForest", model_params: dict[str, Any] | None = None) -> None:
        self.model = model
        self.model_params = model_params

    @property
    def kind(self) -> str:  # type: ignore[override]
        """``pyod:<Name>``, the name ``create`` and ``load`` know it by."""
        return f"{PREFIX}{self.model}"

    @property
    def has_attribution(self) -> bool:
        """Whether this PyOD model explains its score per feature."""
        return self.model in PER_FEATURE_SCORES

    @classmethod
    def _create(cls, kind: str, params: dict[str, Any]) -> PyODDetector:
        name = kind.removeprefix(PREFIX)
        accepted = set(inspect.signature(pyod_class(name).__init__).parameters) - {"self"}
        unknown = set(params) - accepted
        if unknown:
            raise ValueError(f"PyOD's {name} has no parameter(s) {', '.join(sorted(unknown))}")
        return cls(model=name, model_params=dict(params))

    def _fit(self, X: np.ndarray) -> None:
        self.estimator_ = pyod_class(self.model)(**(self.model_params or {})).fit(X)

    def _score_samples(self, X: np.ndarray) -> np.ndarray:
        return -np.asarray(self.estimator_.decision_function(X), dtype=np.float64)

    def _attribute(self, X: np.ndarray) -> np.ndarray:
        if not self.has_attribution:
            raise AttributionUnavailable(
                f"PyOD's {self.model} gives no per-feature explanation of its score"
            )
        self.estimator_.decision_function(X)
        return np.asarray(self.estimator_.O[-len(X) :], dtype=np.float64)

    def _weights(self) -> dict[str, np.ndarray]:
        tree, arrays = to_state(self.estimator_)
        document = json.dumps(tree).encode()
        return {STATE_ARRAY: np.frombuffer(document, dtype=np.uint8), **arrays}

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        tree = json.loads(weights.pop(STATE_ARRAY).tobytes().decode())
        self.estimator_ = from_state(tree, weights)
        if type(self.estimator_) is not pyod_class(self.model):
            raise ValueError(f"saved estimator is not PyOD's {self.model}")
