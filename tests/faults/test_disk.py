"""Probes: a full disk (a real ``atalaia`` under a file-size limit, so writes fail with
EFBIG) and folders that cannot be written: one line naming the folder, nothing partial."""

from __future__ import annotations

import os
import resource
import signal
from pathlib import Path

import pytest

from atalaia.settings import Settings
from tests.faults.probe import atalaia, cli, counts, ok, one_error_line

WEEK = ("--start", "2026-01-01", "--end", "2026-01-08")
LIMIT = 600  # bytes: less than a landed week or a model, more than a failure's metrics


def _full_disk() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def on_a_full_disk(*args: str) -> tuple[int, str]:
    """Run ``atalaia ARGS`` where no file may grow past LIMIT bytes; its exit and stderr."""
    process = atalaia(*args, preexec_fn=_full_disk)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def test_landing_on_a_full_disk_is_one_line_and_a_rerun_lands_every_row(pg_home: Settings) -> None:
    landing = pg_home.landing_dir / "probe"
    one_error_line(
        on_a_full_disk("ingest", "probe", *WEEK), f"cannot write landed batch to {landing}"
    )
    assert counts(pg_home)["landed"] == 0
    assert not leftovers(pg_home.landing_dir)
    ok(cli("ingest", "probe", *WEEK))
    assert counts(pg_home)["landed"] == 7 * 24 * 2


def test_training_on_a_full_disk_is_one_line_and_a_rerun_trains(pg_home: Settings) -> None:
    ok(cli("ingest", "probe", *WEEK))
    models = pg_home.models_dir / "probe"
    one_error_line(on_a_full_disk("train", "probe"), f"cannot write model files to {models}")
    assert counts(pg_home)["versions"] == 0
    assert not leftovers(pg_home.models_dir)
    assert "version 1 (gmm, champion)" in ok(cli("train", "probe")).stdout


def _unwritable(folder: Path) -> None:
    """Make ``folder`` impossible to write into (for root, which ignores modes: a file)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        folder.write_text("a file where a folder should be")
    else:
        folder.mkdir()
        folder.chmod(0o500)


@pytest.mark.parametrize("which", ["landing", "models"])
def test_a_folder_that_cannot_be_written_is_one_line(home: Settings, which: str) -> None:
    if which == "models":
        ok(cli("ingest", "probe", *WEEK))
    folder = (home.landing_dir if which == "landing" else home.models_dir) / "probe"
    _unwritable(folder)
    try:
        args = ("ingest", "probe", *WEEK) if which == "landing" else ("train", "probe")
        what = "landed batch" if which == "landing" else "model files"
        one_error_line(cli(*args), f"cannot write {what} to {folder}")
    finally:
        if folder.is_dir():
            folder.chmod(0o700)
    assert counts(home)["versions"] == 0
    assert counts(home)["landed"] == (0 if which == "landing" else 7 * 24 * 2)
