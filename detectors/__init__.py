"""Generative anomaly detectors and their calibration: numpy/pandas in, scores out.

``create(kind, **params)`` builds a detector by name, ``load(path)`` reads a saved one.
This package knows nothing of SQL, Airflow or Prometheus.
"""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path
from typing import Any

from detectors.base import CONFIG_FILE, FORMAT, Detector
from detectors.calibration import ConformalCalibrator
from detectors.errors import ArtifactError, AttributionUnavailable
from detectors.serialization import read_json

# Before torch loads OpenMP (unless the user chose): idle OpenMP threads sleep rather than spin.
# On a machine whose cores are busy with other work, spinning threads slowed torch's small
# kernels many times over (measured: benchmarks/README.md, Speed). It has no effect once
# torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# kind -> "module:Class", imported on first use so that light callers stay light (importing
# this package imports neither torch nor PyOD).
REGISTRY: dict[str, str] = {
    "ar": "detectors.ar:LinearARDetector",
    "ensemble": "detectors.ensemble:EnsembleDetector",
    "gan": "detectors.gan:ALADDetector",
    "gmm": "detectors.gmm:GaussianMixtureDetector",
    "made": "detectors.made:MADEDetector",
    "nar": "detectors.neural_ar:NeuralARDetector",
    "vae": "detectors.vae:VariationalAutoencoder",
}
# kind prefix -> "module:Class" for families of kinds: "pyod:<Name>" wraps PyOD's <Name>.
PREFIXES: dict[str, str] = {
    "pyod:": "detectors.pyod_adapter:PyODDetector",
}


def available() -> list[str]:
    """Atalaia's own detector kinds (``create`` also accepts ``pyod:<Name>``)."""
    return sorted(REGISTRY)


def detector_class(kind: str) -> type[Detector]:
    """The class registered for ``kind``."""
    target = REGISTRY.get(kind)
    for prefix, family in PREFIXES.items():
        if kind.startswith(prefix) and len(kind) > len(prefix):
            target = family
    if target is None:
        raise ValueError(
            f"unknown detector kind {kind!r}; known: {', '.join(available())}, "
            f"{', '.join(p + '<Name>' for p in PREFIXES)}"
        )
    module, name = target.split(":")
    return getattr(import_module(module), name)


def create(kind: str, **params: Any) -> Detector:
    """A new, unfitted detector of ``kind`` with ``params``; unknown parameters raise."""
    return detector_class(kind)._create(kind, params)


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
    "AttributionUnavailable",
    "ConformalCalibrator",
    "Detector",
    "available",
    "create",
    "detector_class",
    "load",
]
