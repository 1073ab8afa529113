"""Probe: Grafana's read-only login, set up as docker/postgres/init-atalaia.sh sets it up,
reads what the dashboard shows and nothing else: no configuration, no other table."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from atalaia import store
from tests.conftest import REPO
from tests.faults.probe import PG_PORT, Cluster

DASHBOARD = REPO / "docker" / "grafana" / "dashboards" / "atalaia.json"
INIT = REPO / "docker" / "postgres" / "init-atalaia.sh"
MACROS = {
    "$monitor": "'probe'",
    "$entity": "'x'",
    "$__timeFilter(s.ts)": "s.ts > now() - interval '7 days'",
    "$__timeFrom()": "now() - interval '7 days'",
    "$__timeTo()": "now()",
}


def dashboard_queries() -> list[str]:
    """The SQL of every panel of the dashboard, with Grafana's macros filled in."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("rawSql", "query"):  # panels' SQL, and template variables' SQL
                if isinstance(node.get(key), str) and "SELECT" in node[key]:
                    found.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(DASHBOARD.read_text()))
    for macro, value in MACROS.items():
        found = [query.replace(macro, value) for query in found]
    return found


def test_grafanas_login_reads_the_dashboard_and_never_the_configuration(cluster: Cluster) -> None:
    environment = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(PG_PORT),
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "ATALAIA_DB_PASSWORD": "store-pw",
        "GRAFANA_DB_PASSWORD": "reader-pw",
    }
    done = subprocess.run(["bash", str(INIT)], env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    owner = f"postgresql+psycopg://atalaia:store-pw@127.0.0.1:{PG_PORT}/atalaia"
    store.upgrade(owner)  # `atalaia db upgrade`, as the store's owner
    with store.engine(owner).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO monitors (name, config, config_sha256, created_at, updated_at) "
                "VALUES ('probe', '{\"source\": \"secret\"}', '', now(), now())"
            )
        )
    store.engine(owner).dispose()
    reader = create_engine(
        f"postgresql+psycopg://grafana_reader:reader-pw@127.0.0.1:{PG_PORT}/atalaia"
    )
    try:
        queries = dashboard_queries()
        assert queries
        for query in queries:
            with reader.connect() as connection:
                connection.execute(text(query.replace(":", r"\:"))).all()
        for forbidden in (
            "SELECT config FROM monitors",
            "SELECT * FROM monitors",
            "SELECT top_features FROM scores",
            "SELECT message FROM runs",
            "SELECT * FROM quarantine",
            "SELECT * FROM labels",
            "SELECT landing_path FROM batches",
            "SELECT artifact_path FROM models",
        ):
            with reader.connect() as connection, pytest.raises(ProgrammingError, match="denied"):
                connection.execute(text(forbidden))
        with reader.connect() as connection:
            assert connection.execute(text("SELECT name FROM monitors")).scalar() == "probe"
    finally:
        reader.dispose()
        store.engine.cache_clear()
