"""Model artifacts on disk: a JSON document plus numpy arrays, never a pickle."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from detectors.errors import ArtifactError


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` as indented, key-sorted JSON."""
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object; a missing or malformed file raises ArtifactError."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(document, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    return document


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named arrays to an ``.npz`` file (object arrays are refused)."""
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise TypeError(f"array {name!r} has dtype object and cannot be saved without pickle")
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` file without allowing pickled objects."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: missing") from exc
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{path}: not a readable array file ({exc})") from exc


def directory_sha256(path: str | Path) -> str:
    """A sha256 over every file of an artifact folder (names and contents, in name order)."""
    digest = hashlib.sha256()
    folder = Path(path)
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()
