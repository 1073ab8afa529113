"""Shared fixtures: stores on SQLite and PostgreSQL, settings in a temporary home, monitors."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from atalaia import store
from atalaia.config import Monitor, load_monitor
from atalaia.settings import Settings

POSTGRES_ENV = "ATALAIA_TEST_POSTGRES_URL"
REPO = Path(__file__).resolve().parents[1]


def postgres_url() -> str | None:
    """The PostgreSQL server tests may use, from ATALAIA_TEST_POSTGRES_URL."""
    return os.environ.get(POSTGRES_ENV) or None


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store: a SQLite file, or a fresh database on the test PostgreSQL server."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        yield url
        _forget(url)
        return
    with fresh_postgres_database("atalaia_test") as url:
        yield url


@contextlib.contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new database on the test PostgreSQL server (the test is skipped without
    one), dropped afterwards with the pipeline's cached engine for it."""
    server = postgres_url()
    if server is None:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server to test against")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        _forget(url)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def stop_process(process: subprocess.Popen) -> None:
    """Terminate a server the tests started; kill it if it has not stopped in 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _forget(url: str) -> None:
    """Close the pipeline's cached engine for ``url`` so the next test starts clean."""
    store.engine(url).dispose()
    store.engine.cache_clear()


@pytest.fixture
def settings(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose every path lies under a temporary home, on a migrated store."""
    home = tmp_path / "home"
    monkeypatch.setenv("ATALAIA_HOME", str(home))
    monkeypatch.setenv("ATALAIA_STORE_URL", store_url)
    monkeypatch.setenv("ATALAIA_MONITORS_DIR", str(tmp_path / "monitors"))
    monkeypatch.delenv("ATALAIA_PUSHGATEWAY_URL", raising=False)
    for name in ("LANDING_DIR", "MODELS_DIR", "METRICS_DIR"):
        monkeypatch.delenv(f"ATALAIA_{name}", raising=False)
    store.upgrade(store_url)
    return Settings.from_env()


def write_monitor(folder: Path, name: str, body: str) -> Path:
    """Write a monitor file ``<name>.yaml`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\n{body}")
    return path


SERVERS_MONITOR = """\
source:
  kind: files
  path: ${ATALAIA_HOME}/sources/servers/*.csv
timestamp: timestamp
entities: [host]
features: [cpu, memory, latency_ms, error_rate]
frequency: 5min
baseline:
  start: 2026-01-05T00:00:00Z
  end: 2026-01-08T00:00:00Z
calibration:
  alpha: 0.01
events:
  max_gap: 1
"""


@pytest.fixture
def servers(settings: Settings) -> Monitor:
    """A monitor over the demo's server metrics, written under the temporary home."""
    from atalaia import demo_data

    demo_data.write_files(settings.home / "sources" / "servers")
    return load_monitor(write_monitor(settings.monitors_dir, "servers", SERVERS_MONITOR))
