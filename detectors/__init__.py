"""Generative anomaly detectors and their calibration: numpy/pandas in, scores out.

``create(kind, **params)`` builds a detector by name, ``load(path)`` reads a saved one.
This package knows nothing of SQL, Airflow or Prometheus.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from detectors.base import CONFIG_FILE, FORMAT, Detector
from detectors.calibration import ConformalCalibrator
from detectors.errors import ArtifactError
from detectors.serialization import read_json

# kind -> "module:Class", imported on first use so that light callers stay light.
REGISTRY: dict[str, str] = {
    "gmm": "detectors.gmm:GaussianMixtureDetector",
}


def available() -> list[str]:
    """The detector kinds ``create`` accepts."""
    return sorted(REGISTRY)


def detector_class(kind: str) -> type[Detector]:
    """The class registered for ``kind``."""
    if kind not in REGISTRY:
        raise ValueError(f"unknown detector kind {kind!r}; known: {', '.join(available())}")
    module, name = REGISTRY[kind].split(":")
    return getattr(import_module(module), name)


def create(kind: str, **params: Any) -> Detector:
    """A new, unfitted detector of ``kind`` with ``params``; unknown parameters raise."""
    cls = detector_class(kind)
    unknown = set(params) - set(cls._get_param_names())
    if unknown:
        raise ValueError(f"detector {kind!r} has no parameter(s) {', '.join(sorted(unknown))}")
    return cls(**params)


def load(path: str | Path) -> Detector:
    """Read a detector saved with ``Detector.save``; a bad folder raises ArtifactError."""
    folder = Path(path)
    config = read_json(folder / CONFIG_FILE)
    if config.get("format") != FORMAT:
        raise ArtifactError(f"{folder / CONFIG_FILE}: not an Atalaia detector file")
    try:
        cls = detector_class(str(config.get("kind")))
    except ValueError as exc:
        raise ArtifactError(f"{folder / CONFIG_FILE}: {exc}") from exc
    return cls._from_saved(folder, config)


__all__ = [
    "ArtifactError",
    "ConformalCalibrator",
    "Detector",
    "available",
    "create",
    "detector_class",
    "load",
]
