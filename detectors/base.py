"""The detector contract every model of this package follows.

scikit-learn conventions: the constructor only stores parameters, learned attributes end in
``_``, ``fit`` returns ``self``. ``score_samples`` is a log-likelihood (higher = more normal),
``decision_function`` an anomaly score (higher = more anomalous), ``attribute`` each feature's
contribution to the anomaly score. ``save``/``load`` write JSON and ``.npz`` arrays only.

Missing values (NaN) are refused unless the class says how it handles them in
``missing_values``: ``"marginalise"`` (the score and attribution cover the observed features
exactly) or ``"impute"`` (missing features are filled in from the training distribution;
``imputed_rows`` marks the rows this happened to). Infinite values are always refused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from detectors.errors import ArtifactError
from detectors.serialization import read_arrays, write_arrays, write_json

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.npz"
FORMAT = "atalaia-detector"
FORMAT_VERSION = 1

MissingValues = Literal["reject", "marginalise", "impute"]


class Detector(BaseEstimator, ABC):
    """Base class: input checks, the score directions, and saving without pickle.

    The five ``_`` methods under "to implement" are abstract: a subclass missing one cannot be
    instantiated (TypeError), so an incomplete detector fails where it is made, not when it
    scores None.
    """

    kind: ClassVar[str]
    # How NaN features are handled; "reject" refuses them with an error naming the columns.
    missing_values: ClassVar[MissingValues] = "reject"
    # Whether ``attribute`` works; when False it raises AttributionUnavailable.
    has_attribution: ClassVar[bool] = True

    # -- to implement ------------------------------------------------------------------

    @abstractmethod
    def _fit(self, X: np.ndarray) -> None:
        """Learn from normal rows (validated float64; NaN only if ``missing_values`` allows)."""

    @abstractmethod
    def _score_samples(self, X: np.ndarray) -> np.ndarray:
        """Log-likelihood (or its bound) of each row."""

    @abstractmethod
    def _attribute(self, X: np.ndarray) -> np.ndarray:
        """Each feature's contribution to each row's anomaly score, shape (n, d)."""

    @abstractmethod
    def _weights(self) -> dict[str, np.ndarray]:
        """The learned arrays, to be saved."""

    @abstractmethod
    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Restore the learned arrays."""

    # -- the contract ------------------------------------------------------------------

    @classmethod
    def _create(cls, kind: str, params: dict[str, Any]) -> Detector:
        """A new detector of ``kind`` (as ``detectors.create`` was called); unknown params raise."""
        unknown = set(params) - set(cls._get_param_names())
        if unknown:
            raise ValueError(f"detector {kind!r} has no parameter(s) {', '.join(sorted(unknown))}")
        return cls(**params)

    def fit(self, X: np.ndarray | pd.DataFrame, y: Any = None) -> Detector:
        """Learn what normal rows look like; ``y`` is ignored."""
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=str)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        values = self._as_array(X, fitting=True)
        self.n_features_in_ = values.shape[1]
        self._fit(values)
        return self

    def score_samples(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Log-likelihood of each row: higher = more normal."""
        return self._score_samples(self._as_array(X))

    def decision_function(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Anomaly score of each row: higher = more anomalous (the negative log-likelihood)."""
        return -self.score_samples(X)

    def attribute(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Each feature's contribution to each row's anomaly score, shape (n_rows, n_features)."""
        return self._attribute(self._as_array(X))

    def imputed_rows(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Which rows' scores rest on imputed values (boolean, one per row).

        True only for detectors that impute (``missing_values == "impute"``) and rows with a
        missing feature; marginalising detectors score such rows exactly and return False.
        """
        values = self._as_array(X)
        if self.missing_values != "impute":
            return np.zeros(len(values), dtype=bool)
        return np.isnan(values).any(axis=1)

    @property
    def feature_names(self) -> list[str]:
        """The names of the features seen at fit (``x0``, ``x1``, ... for arrays)."""
        self._check_fitted()
        if hasattr(self, "feature_names_in_"):
            return [str(name) for name in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]

    # -- persistence -------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the fitted detector to folder ``path`` as JSON and ``.npz``; return the folder."""
        self._check_fitted()
        arrays = self._weights()  # first, so a model that cannot be saved leaves no files
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(
            folder / CONFIG_FILE,
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "kind": self.kind,
                "params": self.get_params(),
                "feature_names": self.feature_names,
                "named_features": hasattr(self, "feature_names_in_"),
            },
        )
        write_arrays(folder / WEIGHTS_FILE, arrays)
        return folder

    @classmethod
    def _from_saved(cls, folder: Path, config: dict[str, Any]) -> Detector:
        try:
            detector = cls(**config["params"])
            detector._restore(
                list(config["feature_names"]),
                config["named_features"],
                read_arrays(folder / WEIGHTS_FILE),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{folder}: saved model does not match its config ({exc})") from exc
        return detector

    def _restore(self, names: list[str], named: bool, weights: dict[str, np.ndarray]) -> None:
        """Become the fitted detector of saved feature names and weights."""
        self.n_features_in_ = len(names)
        if named:
            self.feature_names_in_ = np.asarray(names, dtype=str)
        self._set_weights(weights)

    # -- helpers -----------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def _as_array(self, X: np.ndarray | pd.DataFrame, fitting: bool = False) -> np.ndarray:
        if not fitting:
            self._check_fitted()
        if isinstance(X, pd.DataFrame) and not fitting and hasattr(self, "feature_names_in_"):
            missing = [name for name in self.feature_names_in_ if name not in X.columns]
            if missing:
                raise ValueError(f"missing feature columns: {', '.join(missing)}")
            X = X[list(self.feature_names_in_)]
        try:
            values = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"features must be numeric: {exc}") from exc
        if values.ndim != 2:
            raise ValueError(f"expected a 2-D array of rows x features, got shape {values.shape}")
        if fitting and values.shape[0] < 2:
            raise ValueError(f"need at least 2 rows to fit, got {values.shape[0]}")
        if not fitting and values.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got {values.shape[1]}")
        self._check_values(values, X, fitting)
        return values

    def _check_values(self, values: np.ndarray, X: Any, fitting: bool) -> None:
        """Refuse infinite values always, NaN unless this detector handles missing values."""
        if self.missing_values == "reject":
            self._refuse(~np.isfinite(values), X, "NaN or infinite values")
            return
        self._refuse(np.isinf(values), X, "infinite values")
        if fitting:
            self._refuse(np.isnan(values).all(axis=0, keepdims=True), X, "no observed values")

    def _refuse(self, bad: np.ndarray, X: Any, problem: str) -> None:
        if bad.any():
            columns = sorted(set(np.nonzero(bad)[1].tolist()))
            names = [self._name_of(i, X) for i in columns]
            raise ValueError(f"{problem} in feature(s): {', '.join(names)}")

    def _name_of(self, index: int, X: Any) -> str:
        if isinstance(X, pd.DataFrame):
            return str(X.columns[index])
        return f"x{index}"
