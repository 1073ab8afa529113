"""Model artifacts: a detector, its calibrator and the monitor settings it is bound to
(``atalaia.representation.bound_settings``) in one folder, identified by a sha256."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import detectors
from atalaia.errors import AtalaiaError
from detectors import ArtifactError, ConformalCalibrator, Detector
from detectors.serialization import directory_sha256, read_json, write_json

SETTINGS_FILE = "monitor_settings.json"


def model_folder(models_dir: Path, monitor: str, version: int) -> Path:
    """Where version ``version`` of ``monitor``'s model lives."""
    return models_dir / monitor / f"v{version:04d}"


def save_model(
    folder: Path, detector: Detector, calibrator: ConformalCalibrator, settings: dict[str, Any]
) -> str:
    """Write detector, calibrator and bound settings into a new ``folder``; return the
    folder's sha256."""
    if folder.exists():
        raise AtalaiaError(f"{folder} already exists; refusing to overwrite a model version")
    detector.save(folder)
    calibrator.save(folder)
    write_json(folder / SETTINGS_FILE, settings)
    return directory_sha256(folder)


@lru_cache(maxsize=16)
def load_model(folder: str, sha256: str) -> tuple[Detector, ConformalCalibrator]:
    """Read a model version, after checking its files still hash to ``sha256``."""
    path = Path(folder)
    if not path.is_dir():
        raise AtalaiaError(f"model files {path} are missing")
    if directory_sha256(path) != sha256:
        raise AtalaiaError(f"model files {path} do not match the sha256 recorded in the store")
    try:
        return detectors.load(path), ConformalCalibrator.load(path)
    except ArtifactError as exc:
        raise AtalaiaError(f"model files {path} cannot be loaded: {exc}") from exc


def bound_settings_of(folder: str) -> dict[str, Any] | None:
    """The monitor settings saved with a model version (check its files with ``load_model``
    first); None for a version saved before they were recorded."""
    path = Path(folder) / SETTINGS_FILE
    return read_json(path) if path.exists() else None
