"""Probe: a SQL source's password, given in the environment, is stored and logged nowhere."""

from __future__ import annotations

import logging
import shutil
import subprocess
import uuid

import pytest
from sqlalchemy.engine import make_url

from atalaia import store
from atalaia.settings import Settings
from tests.faults.probe import cli, ok, series

SQL_MONITOR = """\
name: secret
source:
  kind: sql
  url: 'postgresql+psycopg://{user}:${{PROBE_SOURCE_PASSWORD}}@{host}:{port}/{database}'
  table: readings
timestamp: ts
entities: [site]
features: [a, b]
frequency: 1h
baseline: {{start: 2026-01-01T00:00:00Z, end: 2026-01-08T00:00:00Z}}
calibration: {{alpha: 0.05, fraction: 0.3}}
"""


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is not installed")
def test_a_source_password_from_the_environment_is_in_no_dump_log_or_metric(
    pg_home: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("PROBE_SOURCE_PASSWORD", secret)
    url = make_url(pg_home.store_url)  # the source table lives in the store's database
    with store.engine(pg_home.store_url).begin() as connection:
        series().to_sql("readings", connection, index=False)
    (pg_home.monitors_dir / "secret.yaml").write_text(
        SQL_MONITOR.format(
            user=url.username, host=url.host, port=url.port or 5432, database=url.database
        )
    )
    caplog.set_level(logging.DEBUG)
    outputs = [
        ok(
            cli("ingest", "secret", "--start", "2026-01-01", "--end", "2026-01-09", "--every", "1D")
        ),
        ok(cli("train", "secret")),
        ok(cli("score", "secret", "--start", "2026-01-08", "--end", "2026-01-09")),
        cli("ingest", "secret", "--start", "2025-01-01", "--end", "2025-01-02"),  # fails: no rows
    ]
    dump = subprocess.run(
        ["pg_dump", "--data-only", url.set(drivername="postgresql").render_as_string(False)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "postgresql+psycopg://" in dump  # the source's URL is stored, as written
    assert "${PROBE_SOURCE_PASSWORD}" in dump
    metrics = "".join(path.read_text() for path in pg_home.metrics_dir.glob("*.prom"))
    assert metrics
    for place in (dump, caplog.text, metrics, *(o.output for o in outputs)):
        assert secret not in place
