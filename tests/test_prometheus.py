"""Jobs' metrics reach a real Prometheus through a real Pushgateway, and the alerts fire.

Starts Debian's ``prometheus-pushgateway`` and ``prometheus`` on loopback, on free ports,
with a temporary data folder. Prometheus scrapes the Pushgateway every second (honouring the
pushed labels, as in docker/prometheus/prometheus.yml) and evaluates the stack's alert rules
(docker/prometheus/alerts.yml) every second. Skipped where the binaries are absent;
``.ci/run`` installs them.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from atalaia import jobs
from atalaia.config import Monitor
from atalaia.errors import NotFoundError
from atalaia.settings import Settings
from tests.conftest import REPO, stop_process

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
PROMETHEUS = shutil.which("prometheus")
ALERT_RULES = REPO / "docker" / "prometheus" / "alerts.yml"
DEADLINE_SECONDS = 60

pytestmark = [
    pytest.mark.skipif(
        PUSHGATEWAY is None or PROMETHEUS is None,
        reason="prometheus and prometheus-pushgateway are not installed "
        "(apt-get install prometheus prometheus-pushgateway; .ci/run does)",
    ),
    # The store is not what is tested here: SQLite is enough.
    pytest.mark.parametrize("store_url", ["sqlite"], indirect=True),
]

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def day(n: int) -> tuple[datetime, datetime]:
    return T0 + timedelta(days=n), T0 + timedelta(days=n + 1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(what: str, check: Callable[[], Any], process: subprocess.Popen | None = None) -> Any:
    """Poll ``check`` until it returns something truthy; fail after DEADLINE_SECONDS."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited with status {process.returncode}")
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what}: not seen within {DEADLINE_SECONDS} s")


def is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Callable[[list[str], str], str]]:
    """Start a server (command, readiness URL); every one started is stopped afterwards."""
    started: list[subprocess.Popen] = []

    def start(command: list[str], ready_url: str) -> str:
        log = (tmp_path / f"{Path(command[0]).name}.log").open("wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        wait_until(f"{command[0]} ready", lambda: is_ready(ready_url), process)
        return ready_url.rsplit("/-/", 1)[0]

    try:
        yield start
    finally:
        for process in started:
            stop_process(process)


@pytest.fixture
def pushgateway(server: Callable[[list[str], str], str]) -> str:
    """The URL of a fresh, empty Pushgateway on loopback.

    Debian's build persists to a file under /var/lib by default, which would carry pushes
    from one test (or run) to the next: an empty ``--persistence.file`` keeps them in memory.
    """
    address = f"127.0.0.1:{free_port()}"
    command = [PUSHGATEWAY, f"--web.listen-address={address}", "--persistence.file="]
    return server(command, f"http://{address}/-/ready")


@pytest.fixture
def prometheus(server: Callable[[list[str], str], str], pushgateway: str, tmp_path: Path) -> str:
    """The URL of a Prometheus scraping ``pushgateway`` every second, with the alert rules."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": [
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [pushgateway.removeprefix("http://")]}],
            }
        ],
    }
    path = tmp_path / "prometheus.yml"
    path.write_text(json.dumps(config))  # JSON is YAML
    address = f"127.0.0.1:{free_port()}"
    command = [
        PROMETHEUS,
        f"--config.file={path}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address={address}",
    ]
    return server(command, f"http://{address}/-/ready")


def api(prometheus: str, path: str, **params: str) -> Any:
    """The ``data`` of a Prometheus HTTP API answer."""
    url = f"{prometheus}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]


def series(prometheus: str, query: str) -> dict[tuple[str, str], float]:
    """The instant vector of ``query`` as {(metric name, job): value} for monitor servers.

    Every series must carry exactly the labels the job pushed: name, job and monitor.
    """
    found = {}
    for item in api(prometheus, "query", query=query)["result"]:
        labels = item["metric"]
        assert set(labels) == {"__name__", "job", "monitor"}, labels
        assert labels["monitor"] == "servers"
        found[labels["__name__"], labels["job"]] = float(item["value"][1])
    return found


def firing(prometheus: str, alertname: str) -> list[dict[str, str]]:
    """The labels of the firing alerts called ``alertname``."""
    return [
        alert["labels"]
        for alert in api(prometheus, "alerts")["alerts"]
        if alert["labels"]["alertname"] == alertname and alert["state"] == "firing"
    ]


def use_pushgateway(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Point the jobs at ``url``, the way a deployment does: the ATALAIA_ setting."""
    monkeypatch.setenv("ATALAIA_PUSHGATEWAY_URL", url)


def trained_pushing_to(
    servers: Monitor, monkeypatch: pytest.MonkeyPatch, pushgateway: str
) -> tuple[Settings, jobs.TrainResult]:
    """Settings that push to ``pushgateway``, and a model trained on the first three days."""
    use_pushgateway(monkeypatch, pushgateway)
    settings = Settings.from_env()
    for n in range(3):
        jobs.ingest(servers, *day(n), settings=settings)
    return settings, jobs.train(servers, settings=settings)


def test_jobs_push_their_metrics_and_prometheus_holds_them_with_the_right_values(
    servers: Monitor, monkeypatch: pytest.MonkeyPatch, pushgateway: str, prometheus: str
) -> None:
    settings, trained = trained_pushing_to(servers, monkeypatch, pushgateway)
    jobs.ingest(servers, *day(8), settings=settings)
    before = time.time()
    scored = jobs.score(servers, *day(8), settings=settings)
    after = time.time()
    # Day 9 holds the generator's two bad rows: the last ingest quarantines them.
    ingested = jobs.ingest(servers, *day(9), settings=settings)
    assert ingested.quarantined == 2

    query = '{__name__=~"atalaia_.+", monitor="servers"}'
    found = wait_until(
        "the last ingest's metrics in Prometheus",
        lambda: (
            (values := series(prometheus, query)).get(("atalaia_batch_rows", "ingest"))
            == ingested.rows
            and values
        ),
    )

    assert found[("atalaia_batch_rows", "score")] == scored.rows == 6 * 288
    assert found[("atalaia_batch_anomalies", "score")] == scored.anomalies
    assert found[("atalaia_batch_anomaly_ratio", "score")] == pytest.approx(
        scored.anomalies / scored.rows, rel=1e-12
    )
    assert found[("atalaia_batch_max_z", "score")] == pytest.approx(scored.max_z, rel=1e-12)
    assert found[("atalaia_open_events", "score")] == sum(e["is_open"] for e in scored.events)
    assert found[("atalaia_model_version", "score")] == 1
    assert found[("atalaia_champion_version", "score")] == 1
    assert found[("atalaia_alpha", "score")] == servers.calibration.alpha
    assert before <= found[("atalaia_last_success_timestamp_seconds", "score")] <= after

    assert found[("atalaia_batch_quarantined_rows", "ingest")] == 2
    assert found[("atalaia_model_version", "train")] == trained.version == 1
    assert found[("atalaia_training_rows", "train")] == trained.train_rows
    assert found[("atalaia_training_duration_seconds", "train")] == pytest.approx(
        trained.seconds, rel=1e-12
    )
    assert math.isfinite(found[("atalaia_training_loss", "train")])
    assert not [name for name, _ in found if name == "atalaia_last_failure_timestamp_seconds"]

    # The rules of the stack evaluate on these series without error, and the quarantine
    # alert fires for the last ingest.
    alerts = wait_until(
        "AtalaiaRowsQuarantined firing", lambda: firing(prometheus, "AtalaiaRowsQuarantined")
    )
    assert [(a["monitor"], a["job"], a["severity"]) for a in alerts] == [
        ("servers", "ingest", "warning")
    ]
    rules = [rule for group in api(prometheus, "rules")["groups"] for rule in group["rules"]]
    stack_rules = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    assert len(rules) == sum(len(group["rules"]) for group in stack_rules)
    assert {rule["health"] for rule in rules} == {"ok"}, [r.get("lastError") for r in rules]


def test_a_failed_run_keeps_the_last_success_and_the_failing_alert_fires(
    servers: Monitor, monkeypatch: pytest.MonkeyPatch, pushgateway: str, prometheus: str
) -> None:
    settings, _ = trained_pushing_to(servers, monkeypatch, pushgateway)
    jobs.ingest(servers, *day(3), settings=settings)
    jobs.score(servers, *day(3), settings=settings)
    success = 'atalaia_last_success_timestamp_seconds{job="score"}'
    succeeded = wait_until("the score's success", lambda: series(prometheus, success))
    assert not firing(prometheus, "AtalaiaJobFailing")

    with pytest.raises(NotFoundError, match="run ingest first"):
        jobs.score(servers, *day(4), settings=settings)

    failure = 'atalaia_last_failure_timestamp_seconds{job="score"}'
    failed = wait_until("the score's failure", lambda: series(prometheus, failure))
    assert series(prometheus, success) == succeeded
    key = ("atalaia_last_failure_timestamp_seconds", "score")
    assert failed[key] > succeeded[("atalaia_last_success_timestamp_seconds", "score")]
    alerts = wait_until("AtalaiaJobFailing firing", lambda: firing(prometheus, "AtalaiaJobFailing"))
    assert [(a["monitor"], a["job"]) for a in alerts] == [("servers", "score")]
