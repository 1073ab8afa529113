"""The fault-injection suite: one test per probe, counted in the terminal summary.

Every probe runs the product's own code (the CLI in-process, or ``atalaia`` as a real
subprocess where a kill, a signal or a file-size limit needs one) against a throwaway home,
and asserts that nothing accepted is lost or duplicated and that a failure is one line
naming its cause.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from atalaia import store
from atalaia.settings import Settings
from tests.conftest import fresh_postgres_database
from tests.faults.probe import PG_BIN, PROBE_MONITOR, Cluster, write_series

_outcomes: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember each fault probe's outcome (a failed setup or teardown counts as failed)."""
    if "tests/faults/" not in report.nodeid.replace("\\", "/"):
        return
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.when == "call" or report.skipped:
        _outcomes.setdefault(report.nodeid, "skipped" if report.skipped else "passed")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many fault probes ran and how many passed."""
    if not _outcomes:
        return
    values = list(_outcomes.values())
    ran = sum(value != "skipped" for value in values)
    passed = values.count("passed")
    skipped = values.count("skipped")
    line = f"fault probes: {ran} run, {passed} passed"
    terminalreporter.write_line(line + (f", {skipped} skipped" if skipped else ""))


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> Settings:
    home = tmp_path / "home"
    monkeypatch.setenv("ATALAIA_HOME", str(home))
    monkeypatch.setenv("ATALAIA_STORE_URL", url)
    monkeypatch.setenv("ATALAIA_MONITORS_DIR", str(tmp_path / "monitors"))
    for name in ("PUSHGATEWAY_URL", "LANDING_DIR", "MODELS_DIR", "METRICS_DIR"):
        monkeypatch.delenv(f"ATALAIA_{name}", raising=False)
    store.upgrade(url)
    settings = Settings.from_env()
    settings.monitors_dir.mkdir(parents=True)
    (settings.monitors_dir / "probe.yaml").write_text(PROBE_MONITOR)
    write_series(home / "src" / "series.csv")
    return settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A fresh home on a SQLite store, with the ``probe`` monitor and its source file."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    yield _home(tmp_path, monkeypatch, url)
    store.engine(url).dispose()
    store.engine.cache_clear()


@pytest.fixture
def pg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """As ``home``, on a fresh database of the test PostgreSQL server."""
    with fresh_postgres_database("atalaia_fault") as url:
        yield _home(tmp_path, monkeypatch, url)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of the suite's own on loopback port PG_PORT (trust logins)."""
    if not PG_BIN:
        pytest.skip("PostgreSQL's server programs are not installed (/usr/lib/postgresql)")
    # Not under pytest's own temporary folder, which the server's owner may not enter.
    folder = Path(tempfile.mkdtemp(prefix="atalaia-faults-pg-"))
    os.chmod(folder, 0o755)
    try:
        server = Cluster(folder)
        server.start()
        yield server
        server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
