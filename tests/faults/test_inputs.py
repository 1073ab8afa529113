"""Probes: the bad-input matrix, and tampered model files. Every row read is landed or
quarantined, once; a file that cannot be read at all is one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from atalaia.settings import Settings
from tests.faults.probe import cli, counts, ok, one_error_line, series, write_series

HEADER = "ts,site,a,b\n"
DAY = ("--start", "2026-01-01", "--end", "2026-01-02")


def source(settings: Settings, name: str, content: str | bytes) -> Path:
    """Replace the probe's source with one file ``name`` holding ``content``."""
    folder = settings.home / "src"
    for old in folder.iterdir():
        old.unlink()
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def rows(*lines: str) -> str:
    return HEADER + "".join(line + "\n" for line in lines)


@pytest.mark.parametrize(
    ("content", "landed", "quarantined", "reason"),
    [
        (rows("2026-01-01T00:00:00Z,x,1,2,extra"), None, None, "more fields than the header"),
        (rows("2026-01-01T00:00:00Z,x,1,2", "2026-01-01T01:00:00Z,x,1,2,9"), None, None, "fields"),
        (rows("2026-01-01T00:00:00Z,x,1"), 0, 1, "feature b: missing"),  # short row
        (rows("2026-01-01T00:00:00Z,x,,2", "2026-01-01T01:00:00Z,x,1,2"), 1, 1, "missing"),
        (rows("2026-01-01T00:00:00Z,x,inf,2", "2026-01-01T01:00:00Z,x,-inf,2"), 0, 2, "infinite"),
        (rows("2026-01-01T00:00:00Z,x,NaN,2"), 0, 1, "feature a: not a number 'NaN'"),
        (
            rows("2026-01-01T00:00:00Z,x,1.2.3,2", "2026-01-01T01:00:00Z,x,ten,2"),
            0,
            2,
            "not a number",
        ),
        (
            rows("2026-01-01T00:00:00Z,x,1,2", "2026-01-01T00:00:00Z,x,3,4"),
            1,
            1,
            "duplicate of row 0",
        ),
        (rows("2026-01-01T05:00:00Z,x,1,2", "2026-01-01T01:00:00Z,x,3,4"), 2, 0, None),  # unsorted
        (
            rows("2026-01-01T03:00:00+02:00,x,1,2", "2026-01-01T01:00:00Z,x,3,4"),  # same instant
            1,
            1,
            "duplicate of row 0",
        ),
        (rows("2026-01-01T03:00:00-01:00,x,1,2", "2026-01-01T01:00:00Z,x,3,4"), 2, 0, None),
        (rows("13/01/2026 00:00,x,1,2", "2026-01-01T01:00:00Z,x,3,4"), 1, 1, "cannot parse"),
        (rows("2026-01-01T00:00:00Z,,1,2"), 0, 1, "entity site: missing"),
        (HEADER, None, None, "no rows"),  # header only
        ("", None, None, "column(s) ts, site, a, b missing"),  # empty file
        ("ts,site,a\n2026-01-01T00:00:00Z,x,1\n", None, None, "column(s) b missing"),
    ],
    ids=[
        "ragged-first-row",
        "ragged-later-row",
        "short",
        "nan-empty",
        "inf",
        "nan-text",
        "text-in-numbers",
        "duplicates",
        "unsorted",
        "mixed-zones-same-instant",
        "mixed-zones",
        "non-iso-timestamp",
        "no-entity",
        "header-only",
        "empty-file",
        "missing-column",
    ],
)
def test_bad_rows_are_quarantined_or_refused_never_lost(
    home: Settings, content: str, landed: int | None, quarantined: int | None, reason: str | None
) -> None:
    source(home, "day.csv", content)
    result = cli("ingest", "probe", *DAY)
    stored = counts(home)
    if landed is None:
        one_error_line(result, reason)
        assert (stored["landed"], stored["quarantined"]) == (0, 0)
        return
    ok(result)
    assert (stored["landed"], stored["quarantined"]) == (landed, quarantined)
    if reason:
        from sqlalchemy import text

        from atalaia import store

        with store.engine(home.store_url).connect() as connection:
            reasons = connection.execute(text("SELECT reason FROM quarantine")).scalars().all()
        assert all(reason in text_ for text_ in reasons), reasons


def test_extra_columns_are_ignored_and_every_row_lands(home: Settings) -> None:
    frame = series(days=1).assign(note="spare", c=1.0)
    write_series(source(home, "day.csv", ""), frame)
    ok(cli("ingest", "probe", *DAY))
    assert (counts(home)["landed"], counts(home)["quarantined"]) == (48, 0)


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("day.parquet", b"PAR1 this is not parquet", "day.parquet: cannot read"),
        (
            "day.csv",
            HEADER.encode() + b"2026-01-01T00:00:00Z,\xff\xfe,1,2\n",
            "day.csv: cannot read",
        ),
    ],
    ids=["corrupt-parquet", "bad-utf8"],
)
def test_an_unreadable_file_is_one_line_naming_it(
    home: Settings, name: str, content: bytes, said: str
) -> None:
    source(home, name, content)
    one_error_line(cli("ingest", "probe", *DAY), said)
    assert counts(home)["landed"] == 0


def test_a_glob_matching_nothing_is_one_line(home: Settings) -> None:
    for path in (home.home / "src").iterdir():
        path.unlink()
    one_error_line(cli("ingest", "probe", *DAY), "no file matches source path")


@pytest.mark.parametrize("tamper", ["edit", "delete", "add"])
def test_tampered_model_files_are_refused(home: Settings, tamper: str) -> None:
    ok(cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-08"))
    ok(cli("ingest", "probe", "--start", "2026-01-08", "--end", "2026-01-09"))
    ok(cli("train", "probe"))
    folder = home.models_dir / "probe" / "v0001"
    weights = folder / "weights.npz"
    if tamper == "edit":
        content = bytearray(weights.read_bytes())
        content[len(content) // 2] ^= 0xFF
        weights.write_bytes(bytes(content))
    elif tamper == "delete":
        weights.unlink()
    else:
        (folder / "extra.json").write_text("{}")
    result = cli("score", "probe", "--start", "2026-01-08", "--end", "2026-01-09")
    one_error_line(result, str(folder), "do not match the sha256")
    assert counts(home)["scores"] == 0
