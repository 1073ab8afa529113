"""The landing store: one Parquet file per accepted batch, written atomically, hashed.

A batch is written in row groups of ROW_GROUP_ROWS rows, so it can be read back in bounded
pieces (``read_batch_pieces``) whatever its size.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from atalaia.errors import AtalaiaError

ROW_GROUP_ROWS = 100_000


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
        frame.to_parquet(temporary, index=False, row_group_size=ROW_GROUP_ROWS)
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


def read_batch(path: str | Path, sha256: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a landed batch (only ``columns``, if given), checking it is the file recorded."""
    return pd.read_parquet(_checked(path, sha256), columns=columns)


def read_batch_pieces(
    path: str | Path, sha256: str, rows: int, keys: list[str]
) -> Iterator[pd.DataFrame]:
    """A landed batch in pieces of about ``rows`` rows, checking it is the file recorded.

    With ``keys`` (the entity columns, by which a landed batch is sorted) no entity is split
    between two pieces: the rows of a piece's last entity wait for the next piece. Without
    ``keys`` a piece ends anywhere.
    """
    waiting = None
    for piece in _tables(_checked(path, sha256), rows):
        frame = piece.to_pandas()
        if waiting is not None:
            frame = pd.concat([waiting, frame], ignore_index=True)
        if keys:
            last = frame.iloc[-1]
            same = (frame[keys] == last[keys]).all(axis=1).to_numpy()
            tail = len(frame) - (np.flatnonzero(~same)[-1] + 1 if (~same).any() else 0)
            frame, waiting = frame.iloc[: len(frame) - tail], frame.iloc[len(frame) - tail :]
            if frame.empty:
                waiting = waiting.reset_index(drop=True)
                continue
        yield frame.reset_index(drop=True)
    if waiting is not None and not waiting.empty:
        yield waiting.reset_index(drop=True)


def _tables(path: Path, rows: int) -> Iterator[pa.Table]:
    """The file's rows in consecutive tables of ``rows`` rows (the last may be shorter), as
    ``ParquetFile.iter_batches(batch_size=rows)`` gives them.

    Each row group is read by its own reader: one reader over the whole file keeps every
    row group it has read in memory until it is done (pyarrow 26: 815 MB held at the end of a
    4M-row batch), so memory would grow with the batch.
    """
    file = pq.ParquetFile(path)
    held: list[pa.RecordBatch] = []
    count = 0
    for group in range(file.metadata.num_row_groups):
        for batch in file.iter_batches(batch_size=rows, row_groups=[group]):
            held.append(batch)
            count += batch.num_rows
            while count >= rows:
                table = pa.Table.from_batches(held, schema=file.schema_arrow)
                yield table.slice(0, rows)
                rest = table.slice(rows)
                held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held, schema=file.schema_arrow)


def _checked(path: str | Path, sha256: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise AtalaiaError(f"landed batch {path} is missing; ingest its interval again")
    if file_sha256(path) != sha256:
        raise AtalaiaError(f"landed batch {path} changed since it was ingested; ingest it again")
    return path


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
