"""Probes: kill -9 of a real train or score mid-run, and what a killed run leaves behind."""

from __future__ import annotations

import signal
import subprocess
import sys

from sqlalchemy import text

from atalaia import store
from atalaia.processes import this_host
from atalaia.settings import Settings
from tests.faults.probe import atalaia, cli, counts, ok, until_running

SCORE_DAY = ("--start", "2026-01-08", "--end", "2026-01-09")


def ingest_all() -> None:
    ok(cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-08"))
    ok(cli("ingest", "probe", *SCORE_DAY))


def kill_once_running(settings: Settings, *args: str) -> None:
    """Start ``atalaia ARGS`` and kill -9 it as soon as its run is recorded as running."""
    process = atalaia(*args)
    running = until_running(settings, process)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate()
    assert running, f"the run ended before it could be killed: {stderr}"


def dead_pid() -> int:
    """The id of a process of this host that has ended."""
    command = [sys.executable, "-c", "import os; print(os.getpid())"]
    return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def test_train_killed_mid_run_then_rerun_makes_one_whole_version(home: Settings) -> None:
    ingest_all()
    kill_once_running(home, "train", "probe")
    ok(cli("train", "probe"))
    after = counts(home)
    assert after["running"] == 0  # the killed run is marked abandoned
    with store.engine(home.store_url).connect() as connection:
        stored = connection.execute(text("SELECT version, artifact_path FROM models")).all()
        statuses = dict(
            connection.execute(text("SELECT status, count(*) FROM runs GROUP BY status")).all()
        )
    folders = sorted(p.name for p in (home.models_dir / "probe").iterdir())
    assert folders == [f"v{version:04d}" for version, _ in sorted(stored)]
    assert statuses["abandoned"] == 1
    ok(cli("score", "probe", *SCORE_DAY))
    assert counts(home)["scores"] == 48


def test_leftovers_of_a_killed_train_do_not_block_the_next(home: Settings) -> None:
    ingest_all()
    models = home.models_dir / "probe"
    renamed = models / "v0001"  # killed after its files were complete, before its version
    partial = models / f".v0001.partial-{this_host()}-{dead_pid()}"
    for folder in (renamed, partial):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    result = ok(cli("train", "probe"))
    assert "version 1 (gmm, champion)" in result.stdout
    assert sorted(p.name for p in models.iterdir()) == ["v0001"]
    assert (renamed / "weights.npz").exists()
    ok(cli("score", "probe", *SCORE_DAY))


def test_score_killed_mid_run_then_rerun_leaves_each_row_once(home: Settings) -> None:
    ingest_all()
    ok(cli("train", "probe"))
    kill_once_running(home, "score", "probe", *SCORE_DAY)
    ok(cli("score", "probe", *SCORE_DAY))
    after = counts(home)
    assert (after["scores"], after["running"]) == (48, 0)
    with store.engine(home.store_url).connect() as connection:
        killed = connection.execute(
            text("SELECT message FROM runs WHERE status = 'abandoned'")
        ).all()
    assert len(killed) == 1
    assert "ended without finishing" in killed[0].message
    prom = home.metrics_dir / "atalaia_probe_score_abandoned.prom"
    assert 'atalaia_abandoned_runs{job="score",monitor="probe"} 1.0' in prom.read_text()


def test_a_run_on_another_host_without_heartbeat_is_abandoned(home: Settings) -> None:
    ingest_all()
    with store.engine(home.store_url).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (monitor_id, job, status, started_at, host, pid, heartbeat_at) "
                "SELECT id, 'train', 'running', :old, 'elsewhere', 1, :old FROM monitors"
            ),
            {"old": "2026-01-01 00:00:00.000000"},
        )
    ok(cli("train", "probe"))
    with store.engine(home.store_url).connect() as connection:
        message = connection.execute(
            text("SELECT message FROM runs WHERE status = 'abandoned'")
        ).scalar_one()
    assert message.startswith("abandoned: no heartbeat since 2026-01-01")
