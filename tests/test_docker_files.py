"""The compose stack's files, checked with what needs no Docker engine.

No engine runs here, so nothing is built or started: the files are parsed and checked for
consistency with each other and with the code (service names, ports, URLs, passwords,
volumes, health checks, the Dockerfile's base image and what it copies, the datasources and
every query of the Grafana dashboard). The dashboard's SQL runs on a real PostgreSQL store
filled by the real jobs; amtool checks the Alertmanager configuration where it is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from sqlalchemy import text

from atalaia import jobs, store
from atalaia.attribution import shares_text
from atalaia.config import Monitor
from atalaia.metrics import METRICS
from atalaia.queries import events_as_scored, scores_as_scored
from atalaia.settings import Settings
from storage.engine import transaction
from storage.models import Base
from tests.conftest import REPO

DOCKER = REPO / "docker"
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker-1",
    "airflow-worker-2",
    "flower",
    "atalaia-demo",
}
WORKERS = ("airflow-worker-1", "airflow-worker-2")
SERVICES = AIRFLOW_SERVICES | {
    "postgres",
    "redis",
    "pushgateway",
    "prometheus",
    "alertmanager",
    "grafana",
}
# Where the services listen inside the stack's network.
PORTS = {
    "postgres": 5432,
    "redis": 6379,
    "airflow-apiserver": 8080,
    "pushgateway": 9091,
    "prometheus": 9090,
    "alertmanager": 9093,
    "grafana": 3000,
    "flower": 5555,
}
PROMETHEUS_OWN_SERIES = {"ALERTS"}
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def resolve(value: str) -> str:
    """A compose value with ``${NAME:-default}`` replaced by its default, as without .env."""
    return VARIABLE.sub(lambda match: match.group(2) or "", value).replace("$$", "$")


def read_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return read_yaml(DOCKER / "compose.yaml")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {name: resolve(str(value)) for name, value in service.get("environment", {}).items()}


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, comments dropped and continued lines joined."""
    joined = re.sub(r"\\\n\s*", " ", (DOCKER / "Dockerfile").read_text())
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def dockerfile_args() -> dict[str, str]:
    return dict(
        line.removeprefix("ARG ").split("=", 1)
        for line in dockerfile()
        if line.startswith("ARG ") and "=" in line
    )


def expand_args(line: str) -> str:
    args = dockerfile_args()
    return re.sub(r"\$\{(\w+)\}", lambda match: args[match.group(1)], line)


# --- compose -------------------------------------------------------------------------


def test_the_stack_has_every_service(services: dict[str, Any]) -> None:
    assert set(services) == SERVICES


def test_images_are_pinned_and_airflow_is_built_from_the_dockerfile(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"v?\d+\.\d+(\.\d+)?\S*", tag), f"{name}: {image}"
        if name in AIRFLOW_SERVICES:
            build = service["build"]
            assert (DOCKER / build["context"]).resolve() == REPO
            assert (REPO / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        else:
            assert "build" not in service, name


def test_long_running_services_have_health_checks_and_dependencies_fit(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        one_shot = service.get("restart") == "no"
        if not one_shot:
            assert service["restart"] == "always", name
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        for target, needs in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if needs["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}'s health"
            else:
                assert needs["condition"] == "service_completed_successfully"
                assert services[target]["restart"] == "no", f"{target} must be one-shot"


def test_volumes_are_declared_and_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            assert target.startswith("/"), f"{name}: {volume}"
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} undeclared"


def test_airflow_services_share_one_configuration(services: dict[str, Any]) -> None:
    common = environment(services["airflow-scheduler"])
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
            assert env[key] == common[key], f"{name}: {key}"
        assert env["ATALAIA_STORE_URL"] == common["ATALAIA_STORE_URL"]
        assert "atalaia-data:/opt/airflow/atalaia-data" in services[name]["volumes"]
    assert common["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert urlsplit(common["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
    execution = urlsplit(common["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert (execution.hostname, execution.port) == ("airflow-apiserver", PORTS["airflow-apiserver"])
    assert common["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags"
    init = services["airflow-init"]
    assert environment(init)["_AIRFLOW_DB_MIGRATE"] == "true"
    assert "atalaia db upgrade" in init["command"][-1]
    assert "atalaia demo" in services["atalaia-demo"]["command"][-1]


def test_two_celery_workers_take_the_tasks_under_their_own_hostnames(
    services: dict[str, Any],
) -> None:
    workers = {name: services[name] for name in WORKERS}
    for name, worker in workers.items():
        # The hostname Airflow records for the worker's tasks, and fetches their logs from,
        # is the service's name, which the stack's network resolves.
        assert worker["hostname"] == name
        assert worker["command"][:2] == ["celery", "worker"]
        assert worker["command"][2:] == ["--celery-hostname", f"{name}@%h"]
        assert f'-d "{name}@$${{HOSTNAME}}"' in worker["healthcheck"]["test"][-1]
        assert worker["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
        assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
        assert environment(worker)["DUMB_INIT_SETSID"] == "0"
        assert "profiles" not in worker, f"{name} starts with the stack"
    assert len({tuple(worker["command"]) for worker in workers.values()}) == len(WORKERS)


def test_flower_is_optional_behind_a_login_on_loopback(services: dict[str, Any]) -> None:
    flower = services["flower"]
    assert flower["profiles"] == ["flower"]
    assert flower["command"] == ["celery", "flower"]
    user, _, password = environment(flower)["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"].partition(":")
    assert user and password
    assert flower["ports"] == [f"127.0.0.1:{PORTS['flower']}:{PORTS['flower']}"]
    assert '--user "$${AIRFLOW__CELERY__FLOWER_BASIC_AUTH}"' in flower["healthcheck"]["test"][-1]


def test_urls_name_services_ports_databases_and_passwords_that_exist(
    services: dict[str, Any],
) -> None:
    airflow = environment(services["airflow-scheduler"])
    postgres = environment(services["postgres"])
    init_script = (DOCKER / "postgres" / "init-atalaia.sh").read_text()

    metadata = urlsplit(airflow["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert (metadata.hostname, metadata.port) == ("postgres", PORTS["postgres"])
    assert (metadata.username, metadata.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert metadata.path == f"/{postgres['POSTGRES_DB']}"

    store_url = urlsplit(airflow["ATALAIA_STORE_URL"])
    assert store_url.scheme == "postgresql+psycopg"
    assert (store_url.hostname, store_url.port) == ("postgres", PORTS["postgres"])
    assert store_url.password == postgres["ATALAIA_DB_PASSWORD"]
    assert f"CREATE ROLE {store_url.username} LOGIN" in init_script
    assert f"CREATE DATABASE {store_url.path[1:]} OWNER {store_url.username}" in init_script
    assert (
        "./postgres/init-atalaia.sh:/docker-entrypoint-initdb.d/10-atalaia.sh:ro"
        in (services["postgres"]["volumes"])
    )

    pushgateway = urlsplit(airflow["ATALAIA_PUSHGATEWAY_URL"])
    assert (pushgateway.hostname, pushgateway.port) == ("pushgateway", PORTS["pushgateway"])
    assert (
        environment(services["grafana"])["GRAFANA_DB_PASSWORD"] == (postgres["GRAFANA_DB_PASSWORD"])
    )


def test_published_ports_are_the_services_own_and_on_loopback(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for published in service.get("ports", []):
            address, host_port, container_port = published.split(":")
            assert address == "127.0.0.1", f"{name} is reachable from other machines"
            assert int(container_port) == PORTS[name]


def test_the_init_script_is_valid_bash() -> None:
    script = DOCKER / "postgres" / "init-atalaia.sh"
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# --- Prometheus and Alertmanager -------------------------------------------------------


def test_prometheus_scrapes_the_pushgateway_honouring_labels_and_alerts_alertmanager(
    services: dict[str, Any],
) -> None:
    config = read_yaml(DOCKER / "prometheus" / "prometheus.yml")
    jobs_by_name = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs_by_name["pushgateway"]["honor_labels"] is True
    assert jobs_by_name["pushgateway"]["static_configs"] == [
        {"targets": [f"pushgateway:{PORTS['pushgateway']}"]}
    ]
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == [f"alertmanager:{PORTS['alertmanager']}"]
    # The rule files sit beside the configuration in the container, as in the repository.
    mounted = {volume.split(":")[1] for volume in services["prometheus"]["volumes"]}
    for rule_file in config["rule_files"]:
        assert (DOCKER / "prometheus" / rule_file).exists()
        assert f"/etc/prometheus/{rule_file}" in mounted
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


@pytest.mark.skipif(
    shutil.which("amtool") is None,
    reason="amtool is not installed (apt-get install prometheus-alertmanager; .ci/run does)",
)
def test_amtool_accepts_the_alertmanager_config() -> None:
    path = DOCKER / "alertmanager" / "alertmanager.yml"
    checked = subprocess.run(
        ["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout + checked.stderr


def test_alertmanager_groups_per_monitor_and_every_receiver_is_wired(
    services: dict[str, Any],
) -> None:
    """Events group per monitor (never per entity); the receivers' templates exist and are
    mounted where the configuration looks; secrets come from mounted files; Atalaia posts
    to the stack's Alertmanager."""
    folder = DOCKER / "alertmanager"
    config = read_yaml(folder / "alertmanager.yml")
    route = config["route"]
    assert route["group_by"] == ["alertname", "monitor"]
    for child in route["routes"]:
        assert "group_by" not in child or "entity" not in child["group_by"]
    assert any(child["matchers"] == ['alertname="AtalaiaEvent"'] for child in route["routes"])
    mounts = dict(volume.split(":")[:2] for volume in services["alertmanager"]["volumes"])
    (templates,) = config["templates"]
    assert mounts["./alertmanager/templates"] == "/etc/alertmanager/" + templates.split("/")[0]
    defined = set()
    for path in folder.glob(templates):
        defined |= set(re.findall(r'\{\{ define "([\w.]+)" -?\}\}', path.read_text()))
    assert defined
    for name, value in config["global"].items():
        if name.endswith("_file"):
            assert value.startswith(mounts["./alertmanager/secrets"] + "/"), name
    assert (folder / "secrets" / ".gitignore").read_text().splitlines()[-2:] == [
        "*",
        "!.gitignore",
    ]
    for receiver in config["receivers"]:
        kinds = {"webhook_configs", "email_configs", "slack_configs"}
        assert kinds <= set(receiver), receiver["name"]
        for kind in kinds:
            for integration in receiver[kind]:
                assert integration["send_resolved"] is True
                text = json.dumps(integration)
                used = set(re.findall(r'template \\"([\w.]+)\\"', text))
                assert used <= defined, used - defined
                assert used or kind == "webhook_configs", f"{kind} uses no template"
    atalaia = urlsplit(environment(services["airflow-scheduler"])["ATALAIA_ALERTMANAGER_URL"])
    assert (atalaia.hostname, atalaia.port) == ("alertmanager", PORTS["alertmanager"])


# --- Dockerfile ------------------------------------------------------------------------


def test_the_image_extends_airflow_3_3_in_the_version_the_project_accepts() -> None:
    base = [expand_args(line) for line in dockerfile() if line.startswith("FROM ")]
    assert len(base) == 1
    match = re.fullmatch(r"FROM apache/airflow:(\d+\.\d+\.\d+)-python3\.11", base[0])
    assert match, base[0]
    pyproject = (REPO / "pyproject.toml").read_text()
    accepted = re.search(r'"apache-airflow([<>=!~][^"]*)"', pyproject).group(1)
    assert match.group(1) in SpecifierSet(accepted)
    assert match.group(1).startswith("3.3.")
    # The image's Airflow is the release line the tests here run with.
    assert match.group(1).split(".")[:2] == version("apache-airflow").split(".")[:2]


def test_the_image_installs_the_package_and_copies_dags_and_monitors(
    services: dict[str, Any],
) -> None:
    lines = [expand_args(line) for line in dockerfile()]
    installs = [line for line in lines if line.startswith("RUN pip install")]
    assert (
        installs
        and 'pip install --no-cache-dir "apache-airflow==3.3.2" "/opt/atalaia[celery]"'
        in (installs[0])
    )
    user = [line for line in lines if line.startswith("USER ")]
    assert user == ["USER airflow"], "pip installs into the airflow user's site, not root's"
    copied = {}
    for line in lines:
        if line.startswith("COPY "):
            *sources, target = [part for part in line.split()[1:] if not part.startswith("--")]
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                copied[source] = target
    for package in ("atalaia", "detectors", "storage"):
        assert copied[package] == f"/opt/atalaia/{package}"
    env = environment(services["airflow-scheduler"])
    assert copied["dags"] == env["AIRFLOW__CORE__DAGS_FOLDER"]
    image_env = dict(re.findall(r"(ATALAIA_\w+)=(\S+)", " ".join(lines)))
    assert copied["monitors"] == image_env["ATALAIA_MONITORS_DIR"]
    assert (REPO / "monitors" / "demo.yaml").exists()
    assert image_env["ATALAIA_HOME"] == "/opt/airflow/atalaia-data"
    # The build context is the repository: everything copied is let through the ignore file.
    allowed = {
        line[1:].rstrip("/")
        for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert set(copied) <= allowed
    assert "*" in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()


# --- Grafana ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def datasources() -> dict[str, dict[str, Any]]:
    path = DOCKER / "grafana" / "provisioning" / "datasources" / "datasources.yml"
    return {source["uid"]: source for source in read_yaml(path)["datasources"]}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads((DOCKER / "grafana" / "dashboards" / "atalaia.json").read_text())


EVENTS_PANEL = "Events (from the store)"
SCORES_PANEL = "Score (z) per entity (from the store)"


def sql_panel(dashboard: dict[str, Any], title: str = EVENTS_PANEL) -> str:
    (panel,) = [p for p in dashboard["panels"] if p["title"] == title]
    return panel["targets"][0]["rawSql"]


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def datasource_type(dashboard: dict[str, Any], reference: dict[str, str]) -> str:
    """The plugin type a panel's ``${variable}`` datasource stands for."""
    name = re.fullmatch(r"\$\{(\w+)\}", reference["uid"]).group(1)
    variable = variables(dashboard)[name]
    assert variable["type"] == "datasource"
    return variable["query"]


def test_the_datasources_reach_prometheus_and_the_store_read_only(
    datasources: dict[str, dict[str, Any]], services: dict[str, Any]
) -> None:
    prometheus = datasources["atalaia-prometheus"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == f"http://prometheus:{PORTS['prometheus']}"
    sql = datasources["atalaia-store"]
    assert sql["type"] == "grafana-postgresql-datasource"
    assert sql["url"] == f"postgres:{PORTS['postgres']}"
    store_url = urlsplit(environment(services["airflow-scheduler"])["ATALAIA_STORE_URL"])
    assert sql["jsonData"]["database"] == store_url.path[1:]
    assert sql["user"] != store_url.username, "Grafana reads with its own read-only login"
    init_script = (DOCKER / "postgres" / "init-atalaia.sh").read_text()
    assert f"CREATE ROLE {sql['user']} LOGIN" in init_script
    assert f"CREATE ROLE {sql['user']} LOGIN PASSWORD :'reader_password' IN ROLE " in init_script
    assert "GRANT SELECT" not in init_script, "the reader's grants come from storage/grants.py"
    assert sql["secureJsonData"]["password"] == "$GRAFANA_DB_PASSWORD"
    assert "GRAFANA_DB_PASSWORD" in services["grafana"]["environment"]


def test_the_dashboard_provider_reads_the_mounted_folder(services: dict[str, Any]) -> None:
    path = DOCKER / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
    (provider,) = read_yaml(path)["providers"]
    mounts = dict(volume.split(":")[:2] for volume in services["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_every_panel_uses_a_provisioned_datasource_and_exported_metrics(
    dashboard: dict[str, Any], datasources: dict[str, dict[str, Any]]
) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    used: set[str] = set()
    provisioned = {source["type"]: source for source in datasources.values()}
    for panel in dashboard["panels"]:
        # A datasource variable, never a uid: the dashboard imports into any Grafana.
        kind = datasource_type(dashboard, panel["datasource"])
        source = provisioned[kind]
        assert panel["datasource"]["type"] == source["type"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            if source["type"] != "prometheus":
                continue
            names = set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*(?=\s*\{)", target["expr"]))
            assert names, f"{panel['title']}: {target['expr']}"
            assert names <= set(METRICS) | PROMETHEUS_OWN_SERIES, f"{panel['title']}: {names}"
            assert 'monitor=~"$monitor"' in target["expr"], panel["title"]
            used |= names
    # What the dashboard is for: per monitor, anomaly rate, max z, open events, staleness,
    # drift and model version.
    assert {
        "atalaia_batch_anomaly_ratio",
        "atalaia_alpha",
        "atalaia_batch_max_z",
        "atalaia_open_events",
        "atalaia_last_success_timestamp_seconds",
        "atalaia_drift_statistic",
        "atalaia_drift_detected",
        "atalaia_champion_version",
    } <= used
    named = variables(dashboard)
    for name, uid in (("prometheus", "atalaia-prometheus"), ("store", "atalaia-store")):
        assert named[name]["current"]["value"] == uid  # the provisioned one by default
        assert datasources[uid]["type"] == named[name]["query"]
    variable = named["monitor"]
    assert variable["datasource"] == {"type": "prometheus", "uid": "${prometheus}"}
    assert named["entity"]["datasource"]["uid"] == "${store}"
    assert "$__timeFilter(s.ts)" in named["entity"]["query"]
    assert "airflow_url" in named
    assert re.search(r"label_values\((atalaia_\w+), monitor\)", variable["definition"]).group(
        1
    ) in set(METRICS)


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[x, y] = panel["title"]


@pytest.mark.parametrize("title", [EVENTS_PANEL, SCORES_PANEL])
def test_the_store_queries_name_tables_and_columns_of_the_store(
    dashboard: dict[str, Any], title: str
) -> None:
    sql = sql_panel(dashboard, title)
    aliases = {alias: table for table, alias in re.findall(r"(?:FROM|JOIN) (\w+) AS (\w+)", sql)}
    tables = Base.metadata.tables
    assert set(aliases.values()) <= set(tables) and {"runs", "batches"} <= set(aliases.values())
    for alias, column in re.findall(r"\b(\w+)\.(\w+)\b", sql):
        if alias in aliases:
            assert column in tables[aliases[alias]].c, f"{alias}.{column}"


def test_an_event_row_links_to_its_drilldown_page(dashboard: dict[str, Any]) -> None:
    (panel,) = [p for p in dashboard["panels"] if p["title"] == EVENTS_PANEL]
    links = [
        link
        for override in panel["fieldConfig"]["overrides"]
        for item in override["properties"]
        if item["id"] == "links"
        for link in item["value"]
    ]
    assert [link["url"] for link in links] == [
        "${airflow_url}/atalaia/monitors/${__data.fields.monitor}/events/${__data.fields.id}"
    ]
    assert '"id"' in sql_panel(dashboard) and '"monitor"' in sql_panel(dashboard)


T0 = datetime(2026, 1, 5, tzinfo=UTC)


def grafana_sql(sql: str, start: datetime, end: datetime) -> str:
    """Grafana's rendering of the macros and of multi-value $monitor and $entity."""
    return (
        sql.replace("$monitor", "'servers','another'")
        .replace("$entity", "'host-3','host-5'")
        .replace(
            "$__timeFilter(s.ts)", f"s.ts BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'"
        )
        .replace("$__timeFrom()", f"'{start.isoformat()}'")
        .replace("$__timeTo()", f"'{end.isoformat()}'")
    )


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_the_store_panels_show_findings_as_scored_on_postgresql(
    dashboard: dict[str, Any], servers: Monitor, settings: Settings
) -> None:
    """Version 1 scores day 8, version 2 (promoted) day 10: the events table and the score
    panel show both days, each as its version found it, as atalaia.queries reads them."""
    day = timedelta(days=1)
    for n in (0, 1, 2, 8, 10):
        jobs.ingest(servers, T0 + n * day, T0 + (n + 1) * day, settings=settings)
    jobs.train(servers, settings=settings)
    jobs.score(servers, T0 + 8 * day, T0 + 9 * day, settings=settings)
    jobs.train(servers, settings=settings)
    jobs.promote_version(servers, 2, "a test promotion", settings=settings)
    jobs.score(servers, T0 + 10 * day, T0 + 11 * day, settings=settings)
    start, end = T0 + 8 * day, T0 + 11 * day
    engine = store.engine(settings.store_url)
    with engine.connect() as connection:
        rows = connection.execute(text(grafana_sql(sql_panel(dashboard), start, end)))
        rows = rows.mappings().all()
        points = (
            connection.execute(text(grafana_sql(sql_panel(dashboard, SCORES_PANEL), start, end)))
            .mappings()
            .all()
        )
    with transaction(engine) as session:
        expected = events_as_scored(session, 1, start, end)
        scores = scores_as_scored(session, 1, start, end)
    assert {version for _, version in expected} == {1, 2}
    assert sorted(r["id"] for r in rows) == sorted(e.id for e, _ in expected)
    for row in rows:
        event, version = next((e, v) for e, v in expected if e.id == row["id"])
        assert (row["monitor"], row["entity"], row["start"]) == (
            "servers",
            event.entity,
            event.start_ts,
        )
        assert row["peak z"] == event.peak_z
        assert row["model version"] == version
        assert row["top features"] == shares_text(event.top_features)
    chosen = scores[scores["entity"].isin(["host-3", "host-5"])]
    assert len(points) == len(chosen) == 2 * 2 * 288
    assert sorted((p["metric"], p["time"], p["z"]) for p in points) == sorted(
        zip("servers/" + chosen["entity"], chosen["ts"], chosen["z"], strict=True)
    )
