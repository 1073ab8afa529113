"""A landed batch read in pieces: whole rows in order, pieces of the asked size, whole
entities when asked, across the file's row groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atalaia import landing
from atalaia.landing import read_batch, read_batch_pieces, write_batch


@pytest.fixture
def landed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, pd.DataFrame]:
    monkeypatch.setattr(landing, "ROW_GROUP_ROWS", 40)  # several row groups
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-01-01", periods=250, freq="1min", tz="UTC"),
            "host": np.repeat([f"h{i}" for i in range(7)], [30, 50, 1, 69, 40, 35, 25]),
            "x": np.arange(250.0),
        }
    )
    path = tmp_path / "batch.parquet"
    return path, write_batch(frame, path), frame


@pytest.mark.parametrize("rows", [1, 7, 40, 64, 100, 1000])
def test_pieces_hold_the_batch_in_pieces_of_the_asked_size(landed, rows: int) -> None:
    path, digest, frame = landed
    pieces = list(read_batch_pieces(path, digest, rows, []))
    assert [len(piece) for piece in pieces[:-1]] == [rows] * (len(pieces) - 1)
    assert 0 < len(pieces[-1]) <= rows
    whole = pd.concat(pieces, ignore_index=True)
    pd.testing.assert_frame_equal(whole, read_batch(path, digest))
    pd.testing.assert_frame_equal(whole, frame)


@pytest.mark.parametrize("rows", [1, 7, 40, 64, 1000])
def test_pieces_keep_entities_whole(landed, rows: int) -> None:
    path, digest, frame = landed
    pieces = list(read_batch_pieces(path, digest, rows, ["host"]))
    hosts = [set(piece["host"]) for piece in pieces]
    for first, second in zip(hosts, hosts[1:], strict=False):
        assert not first & second
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), frame)
