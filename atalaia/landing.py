"""The landing store: one Parquet file per accepted batch, written atomically, hashed."""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd

from atalaia.errors import AtalaiaError


def batch_path(landing_dir: Path, monitor: str, start: datetime, end: datetime) -> Path:
    """Where the batch of ``[start, end)`` of ``monitor`` lands."""
    name = f"{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}.parquet"
    return landing_dir / monitor / name


def write_batch(frame: pd.DataFrame, path: Path) -> str:
    """Write ``frame`` to ``path`` atomically (temporary file, then rename); return its sha256.

    A folder that cannot be written (read-only, full) is one error naming it, and leaves
    no partial file.
    """
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".parquet.tmp")
        os.close(handle)
        frame.to_parquet(temporary, index=False)
        digest = file_sha256(Path(temporary))
        os.replace(temporary, path)
    except BaseException as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc)
            raise AtalaiaError(f"cannot write landed batch to {path.parent}: {reason}") from exc
        raise
    return digest


def read_batch(path: str | Path, sha256: str) -> pd.DataFrame:
    """Read a landed batch, checking it is the file that was recorded."""
    path = Path(path)
    if not path.exists():
        raise AtalaiaError(f"landed batch {path} is missing; ingest its interval again")
    if file_sha256(path) != sha256:
        raise AtalaiaError(f"landed batch {path} changed since it was ingested; ingest it again")
    return pd.read_parquet(path)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
