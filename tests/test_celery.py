"""The DAGs on Airflow's CeleryExecutor: docker/celery-local.sh and what it relies on.

Airflow is only imported in subprocesses here: tests/test_dags.py sets ``AIRFLOW_HOME``
before this process first imports it. The slow test runs the whole script (two real Celery
workers, Redis, PostgreSQL) without its kill check, which waits for the DAGs' 2-4 minute
retry delay; that check is run as a benchmark (benchmarks/results/celery.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import pytest

from atalaia.config import load_monitor
from tests.conftest import REPO

SCRIPT = REPO / "docker" / "celery-local.sh"
# By path: a "docker" package (Docker's SDK) may be installed and shadow the folder.
_spec = importlib.util.spec_from_file_location("celery_check", REPO / "docker" / "celery_check.py")
celery_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(celery_check)


def test_the_script_is_valid_bash() -> None:
    checked = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_the_fleet_is_a_valid_monitor_of_daily_files_with_incidents_in_scored_days(
    tmp_path: Path,
) -> None:
    days = celery_check.write_fleet(tmp_path, entities=8)
    monitor = load_monitor(tmp_path / "monitors" / "fleet.yaml")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert days == celery_check.fleet_days(today)
    assert monitor.baseline.start == days[0]
    assert monitor.baseline.end == monitor.schedule.start == days[celery_check.BASELINE_DAYS]
    assert monitor.schedule.end == today
    assert monitor.scoring.partition_entities == celery_check.PARTITION_ENTITIES
    files = sorted((tmp_path / "sources").glob("*.parquet"))
    assert len(files) == celery_check.BASELINE_DAYS + celery_check.SCORED_DAYS
    frames = [pd.read_parquet(path) for path in files]
    for day, frame in zip(days, frames, strict=True):
        assert frame["node"].nunique() == 8 and len(frame) == 8 * 24
        assert (frame["timestamp"].dt.floor("D") == day).all()
    # The incidents fall in the scored days, not in the baseline.
    baseline, (first, second) = frames[: celery_check.BASELINE_DAYS], frames[-2:]
    assert max(frame["cpu"].max() for frame in baseline) < 99 == first["cpu"].max()
    assert max(frame["latency_ms"].max() for frame in baseline) < 250 <= second["latency_ms"].max()


def test_the_dags_load_with_the_celery_executor(tmp_path: Path) -> None:
    celery_check.write_fleet(tmp_path, entities=4)
    probe = """
import json
import sys
from airflow.dag_processing.dagbag import DagBag
from airflow.executors.executor_loader import ExecutorLoader
from airflow.providers.celery.executors.celery_executor import app
from airflow.sdk.definitions.mappedoperator import MappedOperator

bag = DagBag(dag_folder=sys.argv[1])
score = bag.dags["atalaia__fleet__score"]
print(json.dumps({
    "executor": type(ExecutorLoader.get_default_executor()).__name__,
    "broker": app.conf.broker_url,
    "errors": {path: str(error) for path, error in bag.import_errors.items()},
    "dags": sorted(bag.dag_ids),
    "mapped": [task.task_id for task in score.tasks if isinstance(task, MappedOperator)],
}))
"""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/7",
        "ATALAIA_MONITORS_DIR": str(tmp_path / "monitors"),
    }
    parsed = subprocess.run(
        [sys.executable, "-c", probe, str(REPO / "dags")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    found = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert found["executor"] == "CeleryExecutor"
    assert found["broker"] == "redis://127.0.0.1:6379/7"
    assert found["errors"] == {}
    assert found["dags"] == ["atalaia__fleet__retrain", "atalaia__fleet__score"]
    assert found["mapped"] == ["score"]


def server_url(database_url: str) -> str:
    """The PostgreSQL server of a database URL: the URL without its database."""
    parts = urlsplit(database_url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


@pytest.mark.slow
@pytest.mark.postgres
def test_two_celery_workers_score_exactly_as_one_process() -> None:
    postgres = os.environ.get("ATALAIA_TEST_POSTGRES_URL")
    broker = os.environ.get("ATALAIA_TEST_REDIS_URL")
    if not postgres or not broker:
        pytest.skip(
            "needs ATALAIA_TEST_POSTGRES_URL and ATALAIA_TEST_REDIS_URL (.ci/run sets them)"
        )
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "CELERY_LOCAL_POSTGRES": server_url(postgres),
        "CELERY_LOCAL_DATABASES": "atalaia_test_celery",
        "CELERY_LOCAL_BROKER": broker,
        "CELERY_LOCAL_KILL": "0",
    }
    env.pop("AIRFLOW_HOME", None)
    ran = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, cwd=REPO, timeout=1200
    )
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output[-5000:]
    for check in (
        "PASS first day's run",
        "PASS second day's run",
        "PASS partitions on both workers",
        "PASS store equals the single-process run",
    ):
        assert check in output, output[-5000:]
    assert "FAIL" not in output
