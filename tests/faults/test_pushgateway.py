"""Probes: a Pushgateway behind basic authentication, with a wrong password, and stopped.
A job never fails for its metrics; a failed push is counted and its password never shown."""

from __future__ import annotations

import base64
import logging
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from atalaia.settings import Settings
from tests.conftest import stop_process
from tests.faults.probe import atalaia, cli, counts, ok, until_running

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
ADDRESS = "127.0.0.1:31020"  # this suite's loopback ports: 31020-31029
USER, PASSWORD = "atalaia", "push-secret-7d1f"
DAY = ("--start", "2026-01-01", "--end", "2026-01-02")

pytestmark = pytest.mark.skipif(
    PUSHGATEWAY is None,
    reason="prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway; "
    ".ci/run does)",
)


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def _get(path: str) -> tuple[int, str]:
    request = urllib.request.Request(f"http://{ADDRESS}{path}")
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, ConnectionError):
        return 0, ""


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A fresh Pushgateway on loopback that wants USER and PASSWORD."""
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  {USER}: '{_bcrypt(PASSWORD)}'\n")
    log = (tmp_path / "pushgateway.log").open("wb")
    process = subprocess.Popen(
        [
            PUSHGATEWAY,
            f"--web.listen-address={ADDRESS}",
            "--persistence.file=",
            f"--web.config.file={config}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while _get("/-/ready")[0] != 200:
        assert process.poll() is None and time.monotonic() < deadline, "Pushgateway not ready"
        time.sleep(0.1)
    yield process
    stop_process(process)


def _use(monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    monkeypatch.setenv("ATALAIA_PUSHGATEWAY_URL", f"http://{USER}:{password}@{ADDRESS}")


def test_metrics_reach_a_gateway_behind_basic_auth(
    home: Settings,
    gateway: subprocess.Popen,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _use(monkeypatch, PASSWORD)
    result = ok(cli("ingest", "probe", *DAY))
    status, exposed = _get("/metrics")
    assert status == 200
    assert 'atalaia_batch_rows{instance="",job="ingest",monitor="probe"} 48' in exposed
    assert 'atalaia_push_failures{instance="",job="ingest",monitor="probe"} 0' in exposed
    assert PASSWORD not in result.output + caplog.text


def test_a_refused_push_is_counted_and_redacted_and_the_job_succeeds(
    home: Settings,
    gateway: subprocess.Popen,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "not-the-password-31f9"
    _use(monkeypatch, wrong)
    caplog.set_level(logging.WARNING)
    result = ok(cli("ingest", "probe", *DAY))
    assert counts(home)["landed"] == 48
    warned = [r.getMessage() for r in caplog.records if "Pushgateway" in r.getMessage()]
    assert len(warned) == 1 and "401" in warned[0] and f"{USER}:***@" in warned[0]
    assert wrong not in result.output + caplog.text
    _use(monkeypatch, PASSWORD)  # the next push that gets through carries the count
    ok(cli("ingest", "probe", *DAY))
    assert (
        'atalaia_push_failures{instance="",job="ingest",monitor="probe"} 1' in _get("/metrics")[1]
    )


def test_a_stopped_gateway_loses_no_rows_and_the_failures_are_counted(
    home: Settings,
    gateway: subprocess.Popen,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _use(monkeypatch, PASSWORD)
    gateway.kill()  # stopped: it answers nothing more
    gateway.wait(timeout=10)
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        ok(cli("ingest", "probe", *DAY))
    assert counts(home)["landed"] == 48  # ingested twice: the same rows, once
    failures = home.metrics_dir / "atalaia_probe_ingest.push.prom"
    assert 'atalaia_push_failures{job="ingest",monitor="probe"} 2.0' in failures.read_text()
    assert PASSWORD not in caplog.text


def test_a_gateway_stopped_during_a_run_is_one_warning_and_the_run_succeeds(
    home: Settings, gateway: subprocess.Popen
) -> None:
    url = f"http://{USER}:{PASSWORD}@{ADDRESS}"
    process = atalaia("ingest", "probe", *DAY, env={"ATALAIA_PUSHGATEWAY_URL": url})
    running = until_running(home, process)
    process.send_signal(signal.SIGSTOP)  # hold it mid-run while the gateway goes away
    gateway.kill()  # stopped: it answers nothing more
    gateway.wait(timeout=10)
    process.send_signal(signal.SIGCONT)
    stdout, stderr = process.communicate(timeout=120)
    assert running and process.returncode == 0, stderr
    warnings_ = [line for line in stderr.splitlines() if line.strip()]
    assert len(warnings_) == 1 and "could not push metrics to Pushgateway" in warnings_[0]
    assert f"{USER}:***@{ADDRESS}" in warnings_[0]
    assert PASSWORD not in stdout + stderr
    assert counts(home)["landed"] == 48
