"""Probes: the store's PostgreSQL stopped before and during a run (a throwaway cluster on
loopback), and a server that accepts connections but never answers."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from atalaia import store
from atalaia.settings import Settings
from tests.faults.probe import (
    PG_PORT,
    PROBE_MONITOR,
    Cluster,
    atalaia,
    cli,
    counts,
    ok,
    one_error_line,
    until_running,
    write_series,
)

SILENT_PORT = 31011
SCORE_DAY = ("--start", "2026-01-08", "--end", "2026-01-09")


@pytest.fixture
def on_cluster(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """A home whose store is a fresh database of the throwaway cluster."""
    name = f"probe_{os.getpid()}_{time.monotonic_ns()}"
    admin = f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/postgres"
    with store.engine(admin).connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text(f'CREATE DATABASE "{name}"')
        )
    url = f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/{name}"
    monkeypatch.setenv("ATALAIA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ATALAIA_STORE_URL", url)
    monkeypatch.setenv("ATALAIA_MONITORS_DIR", str(tmp_path / "monitors"))
    monkeypatch.delenv("ATALAIA_PUSHGATEWAY_URL", raising=False)
    store.upgrade(url)
    settings = Settings.from_env()
    settings.monitors_dir.mkdir()
    (settings.monitors_dir / "probe.yaml").write_text(PROBE_MONITOR)
    write_series(settings.home / "src" / "series.csv")
    ok(cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-08"))
    ok(cli("ingest", "probe", *SCORE_DAY))
    ok(cli("train", "probe"))
    yield settings
    for cached in (url, admin):
        store.engine(cached).dispose()
    store.engine.cache_clear()


def test_a_stopped_store_is_one_line_and_a_rerun_after_restart_scores_once(
    cluster: Cluster, on_cluster: Settings
) -> None:
    cluster.stop()
    try:
        store.engine.cache_clear()
        one_error_line(cli("score", "probe", *SCORE_DAY), "cannot reach store", "refused")
    finally:
        cluster.start()
    store.engine.cache_clear()
    ok(cli("score", "probe", *SCORE_DAY))
    assert counts(on_cluster)["scores"] == 48


def test_a_store_stopped_during_a_run_is_one_line_and_the_rerun_recovers(
    cluster: Cluster, on_cluster: Settings
) -> None:
    process = atalaia("score", "probe", *SCORE_DAY)
    running = until_running(on_cluster, process)
    process.send_signal(signal.SIGSTOP)  # hold it mid-run while the server goes away
    store.engine(on_cluster.store_url).dispose()
    cluster.stop()
    process.send_signal(signal.SIGCONT)
    _, stderr = process.communicate(timeout=120)
    cluster.start()
    assert running
    one_error_line((process.returncode, stderr), "store", "127.0.0.1")
    store.engine.cache_clear()
    ok(cli("score", "probe", *SCORE_DAY))
    after = counts(on_cluster)
    assert (after["scores"], after["running"]) == (48, 0)  # the lost run is abandoned


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", SILENT_PORT))
        listener.listen(8)
        yield f"127.0.0.1:{SILENT_PORT}"


def test_a_store_that_never_answers_gives_up_after_the_connect_timeout(
    home: Settings, silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATALAIA_STORE_URL", f"postgresql+psycopg://u:pw@{silent_server}/x")
    monkeypatch.setenv("ATALAIA_STORE_CONNECT_TIMEOUT", "1")
    line = one_error_line(
        cli("db", "upgrade"), "no answer within 1 s", "ATALAIA_STORE_CONNECT_TIMEOUT"
    )
    assert "pw" not in line.replace("postgresql", "")


def test_a_sql_source_that_never_answers_is_one_line(
    home: Settings, silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATALAIA_STORE_CONNECT_TIMEOUT", "1")
    text_ = PROBE_MONITOR.replace(
        "source: {kind: files, path: '${ATALAIA_HOME}/src/*'}",
        f"source: {{kind: sql, url: 'postgresql+psycopg://u@{silent_server}/x', table: t}}",
    )
    (home.monitors_dir / "probe.yaml").write_text(text_)
    one_error_line(
        cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-02"),
        "no answer within 1 s",
    )
    assert counts(home)["landed"] == 0
