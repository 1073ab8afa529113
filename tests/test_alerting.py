"""Event alerts reach people: Atalaia -> a real Alertmanager -> webhook, Slack and email.

Alertmanager (Debian's ``prometheus-alertmanager``; ``.ci/run`` installs it) runs on
loopback with ``docker/alertmanager/alertmanager.yml``, its receivers' addresses pointed at
sinks in this test: an HTTP server for the webhook and Slack, a minimal SMTP server for
email. Its routing, grouping and templates are the file's own; only the waits are shortened.
Without the binary the tests skip with the reason.
"""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import socketserver
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from atalaia import alerting, jobs, store
from atalaia.config import Monitor, load_monitor
from atalaia.errors import AtalaiaError
from atalaia.queries import events_as_scored
from atalaia.settings import Settings
from storage.engine import transaction
from tests.conftest import REPO, write_monitor

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
AMTOOL = shutil.which("amtool")
CONFIG_DIR = REPO / "docker" / "alertmanager"
HOST = "127.0.0.1"
PORTS = {"alertmanager": 34001, "cluster": 34002, "http": 34003, "smtp": 34004}
AIRFLOW = "http://airflow.example:8080"
HOSTS = 300
T0 = datetime(2026, 2, 2, tzinfo=UTC)
DAY = timedelta(days=1)
T_SERVERS = datetime(2026, 1, 5, tzinfo=UTC)  # the demo's data (tests.conftest's servers)
FLEET = """\
source: {kind: files, path: '${ATALAIA_HOME}/fleet/*.csv'}
timestamp: ts
entities: [host]
features: [load, errors]
frequency: 1h
baseline: {start: 2026-02-02T00:00:00Z, end: 2026-02-05T00:00:00Z}
calibration: {alpha: 0.001}
"""


# -- sinks ----------------------------------------------------------------------------


@dataclass
class Sinks:
    """What the receivers delivered: webhook and Slack bodies, and emails."""

    webhook: list[dict[str, Any]] = field(default_factory=list)
    slack: list[dict[str, Any]] = field(default_factory=list)
    mail: list[email.message.EmailMessage] = field(default_factory=list)

    def wait(self, ready: Any, what: str, seconds: float = 60) -> None:
        """Poll until ``ready()`` (a deadline only guards against a hang)."""
        deadline = time.monotonic() + seconds
        while not ready():
            assert time.monotonic() < deadline, f"no {what} arrived"
            time.sleep(0.2)


def http_sink(sinks: Sinks) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            {"/webhook": sinks.webhook, "/slack": sinks.slack}[self.path].append(body)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((HOST, PORTS["http"]), Handler)


def smtp_sink(sinks: Sinks) -> socketserver.ThreadingTCPServer:
    """Just enough SMTP for Alertmanager's client: greet, accept one message, keep it."""

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(f"{line}\r\n".encode())

        def handle(self) -> None:
            self.reply("220 sink")
            while line := self.rfile.readline().decode():
                verb = line.strip().split(" ")[0].upper()
                if verb == "EHLO":
                    self.reply("250-sink")
                    self.reply("250 8BITMIME")
                elif verb == "DATA":
                    self.reply("354 go on")
                    lines = []
                    while (text := self.rfile.readline().decode()) not in (".\r\n", ""):
                        lines.append(text[1:] if text.startswith("..") else text)
                    sinks.mail.append(
                        email.message_from_string("".join(lines), policy=email.policy.default)
                    )
                    self.reply("250 kept")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 ok")

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    return socketserver.ThreadingTCPServer((HOST, PORTS["smtp"]), Handler)


def config_for_sinks(folder: Path) -> Path:
    """docker's configuration with the receivers pointed at the sinks and short waits."""
    config = yaml.safe_load((CONFIG_DIR / "alertmanager.yml").read_text())
    config["global"] |= {
        "smtp_smarthost": f"{HOST}:{PORTS['smtp']}",
        "smtp_require_tls": False,
        "slack_api_url": f"http://{HOST}:{PORTS['http']}/slack",
    }
    for key in ("smtp_auth_username", "smtp_auth_password_file", "slack_api_url_file"):
        config["global"].pop(key)
    config["templates"] = [str(CONFIG_DIR / "templates" / "*.tmpl")]
    config["route"] |= {"group_wait": "2s", "group_interval": "2s"}
    (receiver,) = config["receivers"]
    receiver["webhook_configs"][0]["url"] = f"http://{HOST}:{PORTS['http']}/webhook"
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Sinks]:
    """A real Alertmanager on loopback delivering to the sinks."""
    if ALERTMANAGER is None:
        pytest.skip("prometheus-alertmanager is not installed (.ci/run installs it)")
    sinks = Sinks()
    servers = [http_sink(sinks), smtp_sink(sinks)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config_for_sinks(tmp_path)}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address={HOST}:{PORTS['alertmanager']}",
            f"--cluster.listen-address={HOST}:{PORTS['cluster']}",
            f"--web.external-url=http://{HOST}:{PORTS['alertmanager']}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "alertmanager.log").open("w"),
    )
    try:
        ready = f"http://{HOST}:{PORTS['alertmanager']}/-/ready"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(ready, timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
                assert time.monotonic() < deadline, "Alertmanager did not start"
                time.sleep(0.2)
        yield sinks
    finally:
        process.terminate()
        process.wait(timeout=10)
        for server in servers:
            server.shutdown()
            server.server_close()


# -- a fleet of 300 hosts -------------------------------------------------------------


def write_fleet(folder: Path) -> None:
    """Hourly load and errors of 300 hosts over five days; every host spikes in the last
    two hours of day 3, so its event is still open when day 3 is scored."""
    rng = np.random.default_rng(3)
    stamps = pd.date_range(T0, periods=5 * 24, freq="1h")
    hosts = np.repeat([f"host-{n:03d}" for n in range(HOSTS)], len(stamps))
    load = rng.normal(50, 5, len(hosts))
    errors = rng.normal(1, 0.1, len(hosts))
    ts = np.tile(stamps, HOSTS)
    spike = (ts >= T0 + 3 * DAY + timedelta(hours=22)) & (ts < T0 + 4 * DAY)
    load[spike] += 60
    frame = pd.DataFrame({"ts": ts, "host": hosts, "load": load, "errors": errors})
    folder.mkdir(parents=True)
    for day in range(5):
        rows = frame[(frame["ts"] >= T0 + day * DAY) & (frame["ts"] < T0 + (day + 1) * DAY)]
        rows.assign(ts=rows["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
            folder / f"fleet-{day}.csv", index=False
        )


@pytest.fixture
def fleet(settings: Settings) -> Monitor:
    write_fleet(settings.home / "fleet")
    monitor = load_monitor(write_monitor(settings.monitors_dir, "fleet", FLEET))
    for day in range(5):
        jobs.ingest(monitor, T0 + day * DAY, T0 + (day + 1) * DAY, settings=settings)
    jobs.train(monitor, settings=settings)
    return monitor


def stored(settings: Settings, day: int) -> list[Any]:
    with transaction(store.engine(settings.store_url)) as session:
        rows = events_as_scored(session, 1, T0 + day * DAY, T0 + (day + 1) * DAY)
        return [event for event, _ in rows]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_incident_on_300_hosts_is_one_notification_per_receiver_then_resolves(
    alertmanager: Sinks, fleet: Monitor, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATALAIA_ALERTMANAGER_URL", f"http://{HOST}:{PORTS['alertmanager']}")
    monkeypatch.setenv("ATALAIA_AIRFLOW_URL", AIRFLOW)
    settings = Settings.from_env()
    sinks = alertmanager

    jobs.score(fleet, T0 + 3 * DAY, T0 + 4 * DAY, settings=settings)
    events = stored(settings, 3)
    spikes = {e.entity: e for e in events if e.is_open}
    assert len(spikes) == HOSTS, "every host's spike is an open event"

    sinks.wait(lambda: sinks.webhook and sinks.slack and sinks.mail, "notification")
    time.sleep(3)  # longer than group_interval: a second notification would be here now
    (notification,) = sinks.webhook
    assert notification["status"] == "firing"
    assert notification["groupLabels"] == {"alertname": "AtalaiaEvent", "monitor": "fleet"}
    alerts = {alert["labels"]["event_id"]: alert for alert in notification["alerts"]}
    assert len(notification["alerts"]) == len(events)
    for host, event in spikes.items():
        alert = alerts[str(event.id)]
        notes = alert["annotations"]
        assert alert["labels"] == {
            "alertname": "AtalaiaEvent",
            "monitor": "fleet",
            "entity": host,
            "event_id": str(event.id),
            "severity": "warning",
        }
        assert notes["state"] == "open"
        assert notes["start"] == event.start_ts.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert float(notes["peak_z"]) == pytest.approx(event.peak_z, abs=0.01)
        assert notes["top_features"].startswith("load ")  # the spiking feature leads
        assert notes["drilldown"] == f"{AIRFLOW}/atalaia/monitors/fleet/events/{event.id}"
        assert alert["generatorURL"] == notes["drilldown"]

    (slack,) = sinks.slack
    assert slack["attachments"][0]["title"] == f"[FIRING:{len(events)}] AtalaiaEvent fleet"
    text = slack["attachments"][0]["text"]
    assert text.count("• ") == 20 and f"and {len(events)} in all" in text
    (mail,) = sinks.mail
    assert mail["Subject"] == f"[FIRING:{len(events)}] AtalaiaEvent fleet"
    html = mail.get_body(("html",)).get_content()
    assert html.count("<tr><td>firing</td>") == len(events)
    first = spikes["host-000"]
    assert f'href="{AIRFLOW}/atalaia/monitors/fleet/events/{first.id}"' in html

    # Day 4 is normal: the spikes close, and their alerts resolve in one notification.
    jobs.score(fleet, T0 + 4 * DAY, T0 + 5 * DAY, settings=settings)
    spike_ids = {e.id for e in spikes.values()}
    closed = {e.id for e in stored(settings, 3) if e.id in spike_ids and not e.is_open}
    assert closed == spike_ids, "the same events, closed, keep their ids"

    def resolved() -> set[str]:
        return {
            alert["labels"]["event_id"]
            for later in sinks.webhook[1:]
            for alert in later["alerts"]
            if alert["status"] == "resolved"
        }

    sinks.wait(lambda: resolved() == {str(event_id) for event_id in closed}, "resolution")
    assert all(later["groupLabels"]["monitor"] == "fleet" for later in sinks.webhook)


# -- the templates on the demo's events -------------------------------------------------


@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed (.ci/run installs it)")
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_templates_render_the_demos_incidents(
    servers: Monitor, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's servers with its three injected incidents (days 8, 10 and 11) scored; each
    template renders every event with its entity, start, peak z, shares and link. Then an
    unreachable Alertmanager fails a scoring run in one line, after its scores are stored."""
    for n in (0, 1, 2, 8, 10, 11):
        jobs.ingest(servers, T_SERVERS + n * DAY, T_SERVERS + (n + 1) * DAY, settings=settings)
    jobs.train(servers, settings=settings)
    for n in (8, 10, 11):
        jobs.score(servers, T_SERVERS + n * DAY, T_SERVERS + (n + 1) * DAY, settings=settings)
    with transaction(store.engine(settings.store_url)) as session:
        rows = events_as_scored(session, 1, T_SERVERS, T_SERVERS + 14 * DAY)
        now = datetime.now(UTC)
        alerts = [
            alerting.event_alert("servers", event, version, now, now + DAY, AIRFLOW)
            for event, version in rows
        ]
    assert {alert["labels"]["entity"] for alert in alerts} >= {"host-2", "host-3", "host-5"}
    data = tmp_path / "data.json"
    data.write_text(json.dumps(template_data(alerts)))

    def render(name: str, kind: str = "text") -> str:
        rendered = subprocess.run(
            [
                AMTOOL,
                "template",
                "render",
                f"--template.glob={CONFIG_DIR / 'templates' / '*.tmpl'}",
                f'--template.text={{{{ template "{name}" . }}}}',
                f"--template.type={kind}",
                f"--template.data={data}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rendered.returncode == 0, rendered.stderr
        return rendered.stdout

    assert render("atalaia.title").strip() == f"[FIRING:{len(alerts)}] AtalaiaEvent servers"
    text, html = render("atalaia.text"), render("atalaia.html", "html")
    slack = render("atalaia.slack.text")
    for alert in alerts:
        notes = alert["annotations"]
        line = (
            f"servers/{alert['labels']['entity']}: since {notes['start']}, "
            f"peak z {notes['peak_z']} at {notes['peak']}"
        )
        assert line in text
        assert f"top features: {notes['top_features']}" in text
        assert notes["drilldown"] in text
        assert f'<a href="{notes["drilldown"]}">' in html
    # Slack's message lists the first 20 and says how many there are.
    assert all(alert["annotations"]["drilldown"] in slack for alert in alerts[:20])
    assert slack.count("• ") == min(20, len(alerts))
    assert len(alerts) <= 20 or f"and {len(alerts)} in all" in slack
    # host-2's broken correlation: latency carries the largest share.
    broken = [
        a
        for a in alerts
        if a["labels"]["entity"] == "host-2" and a["annotations"]["peak"].startswith("2026-01-16")
    ]
    assert broken and broken[0]["annotations"]["top_features"].startswith("latency_ms ")

    monkeypatch.setenv("ATALAIA_ALERTMANAGER_URL", "http://alerts:s3cret@127.0.0.1:34009")
    with pytest.raises(AtalaiaError) as raised:
        jobs.score(
            servers, T_SERVERS + 11 * DAY, T_SERVERS + 12 * DAY, settings=Settings.from_env()
        )
    message = str(raised.value)
    assert "scores stored, events not posted" in message and "score again" in message
    assert "s3cret" not in message and "127.0.0.1:34009" in message
    with transaction(store.engine(settings.store_url)) as session:
        again = events_as_scored(session, 1, T_SERVERS, T_SERVERS + 14 * DAY)
    assert [event.id for event, _ in again] == [event.id for event, _ in rows]


def template_data(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The data Alertmanager gives a template for one firing group of ``alerts``."""
    return {
        "receiver": "on-call",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": alert["labels"],
                "annotations": alert["annotations"],
                "startsAt": alert["startsAt"],
                "endsAt": alert["endsAt"],
                "generatorURL": alert["generatorURL"],
                "fingerprint": f"{n:016x}",
            }
            for n, alert in enumerate(alerts)
        ],
        "groupLabels": {"alertname": "AtalaiaEvent", "monitor": "servers"},
        "commonLabels": {"alertname": "AtalaiaEvent", "monitor": "servers"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
    }
