"""What every fault probe shares: a small monitor, its data, the CLI, and the store's counts."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import Result
from sqlalchemy import text
from typer.testing import CliRunner

from atalaia import store
from atalaia.cli import app
from atalaia.settings import Settings

REPO = Path(__file__).resolve().parents[2]

PROBE_MONITOR = """\
name: probe
source: {kind: files, path: '${ATALAIA_HOME}/src/*'}
timestamp: ts
entities: [site]
features: [a, b]
frequency: 1h
baseline: {start: 2026-01-01T00:00:00Z, end: 2026-01-08T00:00:00Z}
calibration: {alpha: 0.05, fraction: 0.3}
"""
# Days of the probe's series: 7 of baseline, then days to score.
DAYS = 10
SITES = ("x", "y")


def series(days: int = DAYS, sites: tuple[str, ...] = SITES, seed: int = 0) -> pd.DataFrame:
    """Hourly rows of two correlated features for each site, from 2026-01-01."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2026-01-01", periods=days * 24, freq="1h", tz="UTC")
    frames = []
    for site in sites:
        a = rng.normal(0, 1, len(stamps))
        frames.append(
            pd.DataFrame({"ts": stamps, "site": site, "a": a, "b": a + rng.normal(0, 0.1, len(a))})
        )
    return pd.concat(frames, ignore_index=True)


def write_series(path: Path, frame: pd.DataFrame | None = None) -> Path:
    """Write ``frame`` (default: :func:`series`) as CSV with ISO timestamps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = series() if frame is None else frame
    frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    return path


def cli(*args: str) -> Result:
    """Run ``atalaia ARGS`` in this process."""
    return CliRunner().invoke(app, list(args))


def atalaia(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """Start ``atalaia ARGS`` as a real subprocess of this checkout (stdout and stderr piped)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "atalaia.cli", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def until_running(settings: Settings, process: subprocess.Popen) -> bool:
    """Wait until ``process`` has recorded a running run (True) or has ended (False)."""
    query = text("SELECT count(*) FROM runs WHERE status = 'running'")
    while process.poll() is None:
        with store.engine(settings.store_url).connect() as connection:
            if connection.execute(query).scalar():
                return True
        time.sleep(0.01)
    return False


def ok(result: Result) -> Result:
    """Assert a command succeeded."""
    assert result.exit_code == 0, result.output
    return result


def one_error_line(result: Result | tuple[int, str], *causes: str) -> str:
    """Assert a command failed with exactly one ``error:`` line on stderr naming every cause."""
    if not isinstance(result, tuple):
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"traceback instead of an error line: {result.exception!r}"
        )
        code, stderr = result.exit_code, result.stderr
    else:
        code, stderr = result
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code != 0, stderr
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith("error: "), lines[0]
    for cause in causes:
        assert cause in lines[0], f"{cause!r} not in {lines[0]!r}"
    return lines[0]


def counts(settings: Settings) -> dict[str, int]:
    """What the store holds: landed and quarantined rows, scores, versions and runs by status."""
    queries = {
        "landed": "SELECT coalesce(sum(row_count), 0) FROM batches",
        "quarantined": "SELECT count(*) FROM quarantine",
        "scores": "SELECT count(*) FROM scores",
        "versions": "SELECT count(*) FROM models",
        "running": "SELECT count(*) FROM runs WHERE status = 'running'",
        "failed": "SELECT count(*) FROM runs WHERE status = 'failed'",
    }
    with store.engine(settings.store_url).connect() as connection:
        return {name: int(connection.execute(text(sql)).scalar()) for name, sql in queries.items()}


def free_loopback_port(first: int, last: int) -> int:
    """The first port in ``first..last`` nothing listens on at 127.0.0.1."""
    for port in range(first, last + 1):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"every loopback port {first}-{last} is taken")


# The suite's PostgreSQL cluster: the first free port of 31030-31039 (a cluster left running
# by an interrupted run keeps its port, and the suite still runs beside it).
PG_PORT = free_loopback_port(31030, 31039)
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class Cluster:
    """A PostgreSQL cluster of its own, started and stopped with pg_ctl."""

    def __init__(self, folder: Path) -> None:
        self.data = folder / "data"
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust")

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.as_owner, str(Path(PG_BIN[-1]) / tool), *args]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=120)

    def start(self) -> None:
        options = f"-p {PG_PORT} -c listen_addresses=127.0.0.1 -k {self.data}"
        log = str(self.data / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
