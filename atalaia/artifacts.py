"""Model artifacts: a detector, its calibrator and the monitor settings it is bound to
(``atalaia.representation.bound_settings``) in one folder, identified by a sha256.

A version's folder appears whole or not at all: its files are written into a hidden partial
folder beside it (``.vNNNN.partial-<host>-<pid>``) that is renamed into place once complete.
A process killed while writing leaves only a partial folder, which ``clear_leftovers``
removes once that process is gone.
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

import detectors
from atalaia.errors import AtalaiaError
from atalaia.processes import is_gone, this_host
from detectors import ArtifactError, ConformalCalibrator, Detector
from detectors.serialization import directory_sha256, read_json, write_json

SETTINGS_FILE = "monitor_settings.json"


def model_folder(models_dir: Path, monitor: str, version: int) -> Path:
    """Where version ``version`` of ``monitor``'s model lives."""
    return models_dir / monitor / f"v{version:04d}"


def save_model(
    folder: Path, detector: Detector, calibrator: ConformalCalibrator, settings: dict[str, Any]
) -> str:
    """Write detector, calibrator and bound settings into a new ``folder`` atomically; return
    the folder's sha256.

    A failure leaves nothing behind; a folder that cannot be written (read-only, full) is
    one error naming it.
    """
    if folder.exists():
        raise AtalaiaError(f"{folder} already exists; refusing to overwrite a model version")
    partial = folder.with_name(f".{folder.name}.partial-{this_host()}-{os.getpid()}")
    try:
        detector.save(partial)
        calibrator.save(partial)
        write_json(partial / SETTINGS_FILE, settings)
        digest = directory_sha256(partial)
        os.rename(partial, folder)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        reason = exc.strerror or str(exc)
        raise AtalaiaError(f"cannot write model files to {folder.parent}: {reason}") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return digest


def clear_leftovers(folder: Path) -> list[Path]:
    """Remove what interrupted saves of ``folder`` left, and return it: the folder itself
    (the caller knows that no version uses it: its save finished but its version was never
    recorded) and partial folders of processes of this host that are gone."""
    leftovers = [folder] if folder.exists() else []
    for partial in folder.parent.glob(f".{folder.name}.partial-*"):
        host, _, pid = partial.name.rpartition(".partial-")[2].rpartition("-")
        if pid.isdigit() and is_gone(host, int(pid)):
            leftovers.append(partial)
    for leftover in leftovers:
        shutil.rmtree(leftover)
    return leftovers


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
