"""The on-call page inside Airflow: a real api-server with the plugin, over the demo's store.

One module-scoped Airflow api-server (simple auth manager, two users: ``oncall`` with the
``user`` role, who may edit DAGs, and ``watcher`` with ``viewer``, who may only read) serves
the page on a loopback port of 33000-33099; the page is driven in headless Chromium through
Selenium. Airflow is never imported here (``tests/test_dags.py`` sets ``AIRFLOW_HOME``
before it is), only run as a server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from atalaia import demo_data, jobs, store
from atalaia.cli import app
from atalaia.config import find_monitor
from atalaia.evaluation import evaluate_scores
from atalaia.labelled import stored_labelled_scores
from atalaia.queries import model_version
from atalaia.settings import Settings
from storage.engine import transaction
from storage.models import LabelRow, ModelRow
from tests.conftest import REPO

PORTS = range(33000, 33100)
USERS = {"oncall": ("user", "oncall-password"), "watcher": ("viewer", "watcher-password")}
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = pytest.mark.slow


@dataclass
class Server:
    """The api-server, where it listens, and the demo store it reads."""

    url: str
    store_url: str
    env: dict[str, str]
    folder: Path

    def token(self, user: str) -> str:
        body = {"username": user, "password": USERS[user][1]}
        status, answer = request(f"{self.url}/auth/token", "POST", body)
        assert status == 201, answer
        return answer["access_token"]


def request(
    url: str, method: str = "GET", body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    """Status and JSON answer of one HTTP request (a bearer token when given)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    call = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=60) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode(errors="replace")


def plugins_folder(airflow_home: Path) -> Path:
    """``plugins/`` of this checkout, unless the installed distribution's entry point
    already brings the plugin (then an empty folder, so it is not registered twice)."""
    installed = entry_points(group="airflow.plugins").select(name="atalaia")
    if installed:
        (airflow_home / "plugins").mkdir(exist_ok=True)
        return airflow_home / "plugins"
    return REPO / "plugins"


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo's store and an Airflow api-server with the plugin over it."""
    folder = tmp_path_factory.mktemp("on-call")
    store_url = f"sqlite:///{folder / 'atalaia.db'}"
    atalaia_env = {
        "ATALAIA_HOME": str(folder / "home"),
        "ATALAIA_STORE_URL": store_url,
        "ATALAIA_MONITORS_DIR": str(REPO / "monitors"),
    }
    result = CliRunner().invoke(app, ["demo"], env=atalaia_env)
    assert result.exit_code == 0, result.output
    airflow_home = folder / "airflow"
    (airflow_home / "dags").mkdir(parents=True)
    passwords = {name: password for name, (_, password) in USERS.items()}
    (airflow_home / "passwords.json").write_text(json.dumps(passwords))
    env = {
        **os.environ,
        **atalaia_env,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder(airflow_home)),
        "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
            f"{name}:{role}" for name, (role, _) in USERS.items()
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": "a-secret-for-this-test-only",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrated = subprocess.run(
        [airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=180
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    port = free_port()
    log = (folder / "api-server.log").open("w")
    process = subprocess.Popen(
        [airflow, "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not healthy(url):
            assert process.poll() is None, (folder / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the api-server did not start in 120 s"
            time.sleep(0.5)
        yield Server(url, store_url, atalaia_env, folder)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        store.engine(store_url).dispose()
        store.engine.cache_clear()


def healthy(url: str) -> bool:
    """Whether the api-server at ``url`` answers its health check."""
    try:
        return request(f"{url}/api/v2/monitor/health")[0] == 200
    except OSError:  # not listening yet
        return False


def labels(server: Server) -> list[LabelRow]:
    with transaction(store.engine(server.store_url)) as session:
        rows = list(session.scalars(select(LabelRow).order_by(LabelRow.id)))
        session.expunge_all()
    return rows


def champion_version(server: Server) -> int:
    with transaction(store.engine(server.store_url)) as session:
        return session.scalar(select(ModelRow.version).where(ModelRow.status == "champion"))


def events(server: Server, token: str) -> list[dict[str, Any]]:
    status, found = request(f"{server.url}/atalaia/api/monitors/demo/events", token=token)
    assert status == 200, found
    return found


def incident_event(found: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The event overlapping the demo's injected incident of ``kind``."""
    incident = next(i for i in demo_data.INCIDENTS if i.kind == kind)
    return next(
        e
        for e in found
        if e["entity"] == incident.host
        and datetime.fromisoformat(e["start"]) <= incident.end
        and datetime.fromisoformat(e["end"]) >= incident.start
    )


def test_airflow_loads_the_plugin_with_its_app_and_view(server: Server) -> None:
    status, plugins = request(f"{server.url}/api/v2/plugins", token=server.token("watcher"))
    assert status == 200, plugins
    plugin = next(p for p in plugins["plugins"] if p["name"] == "atalaia")
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/atalaia"]
    assert plugin["external_views"][0]["href"] == "/atalaia/"


def test_anonymous_and_forged_requests_are_refused_and_write_nothing(server: Server) -> None:
    event = events(server, server.token("oncall"))[0]
    before = (len(labels(server)), champion_version(server))
    reads = [
        "/atalaia/",
        "/atalaia/assets/page.js",
        f"/atalaia/monitors/demo/events/{event['id']}",
        "/atalaia/api/monitors",
        "/atalaia/api/monitors/demo/events",
        "/atalaia/api/monitors/demo/swimlane",
        "/atalaia/api/monitors/demo/versions",
        f"/atalaia/api/events/{event['id']}",
    ]
    writes = [
        (f"/atalaia/api/events/{event['id']}/verdict", {"verdict": "false_alarm"}),
        ("/atalaia/api/monitors/demo/versions/1/promote", {"reason": "anonymous"}),
        ("/atalaia/api/monitors/demo/rollback", {"reason": "anonymous"}),
    ]
    for token, expected in ((None, 401), ("not-a-jwt", 403)):
        for path in reads:
            assert request(server.url + path, token=token)[0] == expected, path
        for path, body in writes:
            assert request(server.url + path, "POST", body, token=token)[0] == expected, path
    assert (len(labels(server)), champion_version(server)) == before


def test_a_viewer_may_read_but_not_give_feedback_or_change_the_champion(server: Server) -> None:
    token = server.token("watcher")
    status, monitors = request(f"{server.url}/atalaia/api/monitors", token=token)
    assert status == 200 and monitors[0]["name"] == "demo" and not monitors[0]["may_edit"]
    event = events(server, token)[0]
    before = (len(labels(server)), champion_version(server))
    body = {"verdict": "incident"}
    verdict = f"{server.url}/atalaia/api/events/{event['id']}/verdict"
    assert request(verdict, "POST", body, token=token)[0] == 403
    rollback = f"{server.url}/atalaia/api/monitors/demo/rollback"
    assert request(rollback, "POST", {"reason": "viewer"}, token=token)[0] == 403
    assert (len(labels(server)), champion_version(server)) == before


def test_a_cross_site_form_cannot_give_feedback_with_the_cookie(server: Server) -> None:
    """A form on another site can send the session cookie and a text body, not JSON."""
    event = events(server, server.token("oncall"))[0]
    before = len(labels(server))
    call = urllib.request.Request(
        f"{server.url}/atalaia/api/events/{event['id']}/verdict",
        data=b'{"verdict": "false_alarm"}',
        method="POST",
        headers={"Content-Type": "text/plain", "Cookie": f"_token={server.token('oncall')}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(call, timeout=60)
    assert refused.value.code == 422
    assert len(labels(server)) == before


@pytest.fixture
def browser(server: Server) -> Iterator[Any]:
    """Headless Chromium, signed in as ``oncall`` through Airflow's own login page."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver are not installed (Debian: chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1400,2200"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.get(f"{server.url}/auth/login")
        form = WebDriverWait(driver, 60).until(
            lambda _: driver.find_elements(By.CSS_SELECTOR, "input[name=password]")
        )
        driver.find_element(By.CSS_SELECTOR, "input[name=username]").send_keys("oncall")
        form[0].send_keys(USERS["oncall"][1])
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(driver, 60).until(lambda _: driver.get_cookie("_token"))
        yield driver
    finally:
        driver.quit()


def test_the_page_explains_an_event_and_takes_a_false_alarm(
    server: Server, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait_for(condition: Any) -> Any:
        return WebDriverWait(browser, 60).until(lambda _: condition())

    browser.get(f"{server.url}/plugin/atalaia")  # the "Atalaia" entry of Airflow's UI
    frame = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, 'iframe[src$="/atalaia/"]'))
    browser.switch_to.frame(frame[0])
    wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    listed = browser.find_elements(By.CSS_SELECTOR, "#events tbody tr")
    assert len(listed) == 12
    assert browser.find_element(By.ID, "status").text == ""

    broken = incident_event(events(server, server.token("oncall")), "broken correlation")
    cells = browser.find_elements(
        By.CSS_SELECTOR, f'#swimlane .cell.event[data-entity="{broken["entity"]}"]'
    )
    next(c for c in cells if c.get_attribute("title").endswith(f"event {broken['id']}")).click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#shares tbody tr[data-feature]"))
    assert browser.find_element(By.ID, "event-title").text.startswith(f"{broken['id']}: host-2")
    shares = {
        row.get_attribute("data-feature"): float(row.get_attribute("data-share"))
        for row in browser.find_elements(By.CSS_SELECTOR, "#shares tbody tr")
    }
    assert max(shares, key=shares.get) == "latency_ms"
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#feature-charts svg polygon")) == 4

    before = labels(server)
    browser.find_element(By.ID, "false-alarm").click()
    wait_for(lambda: "recorded" in browser.find_element(By.ID, "verdict").text)
    added = [label for label in labels(server) if label.id not in {b.id for b in before}]
    assert len(added) == 1
    assert (added[0].kind, added[0].entity) == ("false_alarm", "host-2")
    assert (added[0].start_ts.isoformat(), added[0].end_ts.isoformat()) == (
        broken["start"],
        broken["end"],
    )
    browser.switch_to.default_content()
    browser.save_screenshot(str(tmp_path / "on-call-page.png"))  # inside Airflow's UI
    browser.switch_to.frame(frame[0])

    spike = incident_event(events(server, server.token("oncall")), "spike")
    row = browser.find_element(By.CSS_SELECTOR, f'#events tbody tr[data-event-id="{spike["id"]}"]')
    row.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: browser.find_element(By.ID, "event-title").text.startswith(f"{spike['id']}:"))
    first = timings(browser)

    browser.switch_to.default_content()
    browser.get(f"{server.url}/atalaia/monitors/demo/events/{broken['id']}")  # alerts' link
    wait_for(lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    assert browser.find_element(By.ID, "verdict").text == "false alarm"
    browser.save_screenshot(str(tmp_path / "drill-down.png"))
    measured = {"first visit after start": first, "second visit": timings(browser)}
    (tmp_path / "timings.json").write_text(json.dumps(measured, indent=1))
    print(f"on-call page timings (ms): {measured}; screenshots in {tmp_path}")


def timings(browser: Any) -> dict[str, float]:
    """The page's load (navigation start to load event) and the page's own measures
    (``atalaia-monitor``: a monitor's swimlane, events and versions shown; ``atalaia-event``:
    a drill-down shown), in milliseconds, from the browser's performance entries."""
    return browser.execute_script(
        "const nav = performance.getEntriesByType('navigation')[0];"
        "const found = {page_load: Math.round(nav.loadEventEnd - nav.startTime)};"
        "performance.getEntriesByType('measure').forEach((m, i) =>"
        " found[`${m.name} ${i}`] = Math.round(m.duration));"
        "return found;"
    )


def test_verdicts_are_what_evaluate_reads(server: Server) -> None:
    token = server.token("oncall")
    found = events(server, token)
    spike, broken = (incident_event(found, kind) for kind in ("spike", "broken correlation"))
    for event, verdict in ((spike, "incident"), (broken, "false_alarm"), (broken, "false_alarm")):
        url = f"{server.url}/atalaia/api/events/{event['id']}/verdict"
        status, answer = request(url, "POST", {"verdict": verdict}, token=token)
        assert status == 200, answer
    kinds = [(label.entity, label.kind) for label in labels(server)]
    assert kinds.count(("host-3", "incident")) == 1
    assert kinds.count(("host-2", "false_alarm")) == 1  # a verdict given twice is one label
    with transaction(store.engine(server.store_url)) as session:
        model = model_version(session, "demo", None)
        start = demo_data.START + timedelta(days=demo_data.BASELINE_DAYS)
        frame = stored_labelled_scores(session, model, start, start + timedelta(days=7))
    result = evaluate_scores(
        frame["label"], frame["score"], frame["flag"], frame["entity"], max_gap=1
    )
    assert result.events.tp == 1  # the confirmed spike
    assert result.events.fp == len(found) - 1  # the false alarm among the others
    by_event = {e["id"]: e["verdict"] for e in events(server, token)}
    assert (by_event[spike["id"]], by_event[broken["id"]]) == ("incident", "false_alarm")


def test_promote_and_rollback_change_the_champion(server: Server) -> None:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.env.items():
            patch.setenv(name, value)
        settings = Settings.from_env()
        monitor = find_monitor(settings.monitors_dir, "demo")
        baseline = (demo_data.START, demo_data.START + timedelta(days=3))  # quick to train
        trained = jobs.train(monitor, baseline, settings=settings)
    assert trained.status == "candidate"
    token, base = server.token("oncall"), f"{server.url}/atalaia/api/monitors/demo"
    status, answer = request(
        f"{base}/versions/{trained.version}/promote", "POST", {"reason": "test"}, token=token
    )
    assert status == 200, answer
    assert champion_version(server) == trained.version
    status, versions = request(f"{base}/versions", token=token)
    assert versions[0]["previous_champion"] == 1 and "by oncall" in versions[0]["status_reason"]
    status, answer = request(f"{base}/rollback", "POST", {"reason": "test"}, token=token)
    assert (status, answer["champion_version"]) == (200, 1), answer
    assert champion_version(server) == 1
    status, answer = request(f"{base}/rollback", "POST", {"reason": "again"}, token=token)
    assert status == 409 and "replaced no earlier champion" in answer["detail"]
    with transaction(store.engine(server.store_url)) as session:
        assert session.scalar(select(func.count()).select_from(ModelRow)) == 2
