"""Airflow DAGs for every monitor file in ``ATALAIA_MONITORS_DIR`` (default: ``monitors/``
beside this folder): ``atalaia__<monitor>__score`` and ``atalaia__<monitor>__retrain``.

Wiring only. Parsing reads the monitor files and nothing else; the tasks import
``atalaia.jobs`` (pandas, the detectors, the store) when they run, and each calls one job,
so everything here can also be run from the ``atalaia`` command line.

- score, on ``schedule.score`` over data intervals from ``schedule.start`` (default: the
  baseline's end), with ``schedule.catchup``: ingest -> score (one mapped task per entity
  partition, all with the version the plan pinned) -> events (rebuilt once for the whole
  batch; records the batch's score run and exports its metrics) -> check_drift ->
  request_retraining, which runs only when drift was found and updates the monitor's drift
  Asset. ``max_active_runs=1``, so scheduled runs (catchup included) go one interval at a
  time, in order; a backfill applies its own ``--max-active-runs`` instead, which is safe:
  scores of different intervals never share a key, and the events task, which rebuilds
  events across interval edges from the neighbours' scores, runs one at a time per DAG
  (``max_active_tis_per_dag=1``).
- retrain, on ``schedule.retrain`` and whenever the drift Asset is updated: one task that
  trains a candidate on recent batches, compares it with the champion and promotes it only
  when it is not worse (``atalaia.promotion``). ``max_active_runs=1`` as well.

The store is the Airflow connection ``atalaia_store`` when it exists, else
``ATALAIA_STORE_URL``. A monitor file that cannot be loaded becomes one DAG,
``atalaia__<file name>__invalid``, whose description is the error and whose only task fails
with it; the other monitors load as usual.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    dag,
    task,
)
from airflow.sdk.exceptions import AirflowFailException

from atalaia.config import Monitor, load_monitor
from atalaia.errors import ConfigError
from atalaia.settings import Settings

MONITORS_DIR = Path(
    os.environ.get("ATALAIA_MONITORS_DIR") or Path(__file__).resolve().parents[1] / "monitors"
)
STORE_CONNECTION = "atalaia_store"
# A failed task is retried after 2, 4, 8 minutes: long enough for a late file or a
# restarted database, short enough to catch up within the hour.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "atalaia",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=1),
}
INGEST_TIMEOUT = timedelta(hours=1)
SCORE_TIMEOUT = timedelta(hours=2)
EVENTS_TIMEOUT = timedelta(minutes=30)
DRIFT_TIMEOUT = timedelta(minutes=30)
RETRAIN_TIMEOUT = timedelta(hours=4)


def drift_asset(monitor: str) -> Asset:
    """The Asset a monitor's score DAG updates when drift is found; it triggers retraining."""
    return Asset(name=f"atalaia__{monitor}__drift", uri=f"atalaia://{monitor}/drift")


def store_url(
    conn_type: str | None,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    schema: str | None,
) -> str:
    """The SQLAlchemy URL of an Airflow connection's fields.

    ``postgres`` connections use psycopg 3; a ``sqlite`` connection names the database file
    in its host (or, written as a URI ``sqlite:////path``, in its schema).
    """
    from sqlalchemy.engine import URL

    if conn_type == "sqlite":
        return URL.create("sqlite", database=host or schema).render_as_string(hide_password=False)
    driver = "postgresql+psycopg" if conn_type in ("postgres", "postgresql") else conn_type
    url = URL.create(
        driver or "", username=login, password=password, host=host, port=port, database=schema
    )
    return url.render_as_string(hide_password=False)


def settings() -> Settings:
    """``ATALAIA_*`` settings, with the store of the ``atalaia_store`` connection if defined."""
    from dataclasses import replace

    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    found = Settings.from_env()
    try:
        connection = Connection.get(STORE_CONNECTION)
    except AirflowNotFoundException:
        return found
    url = store_url(
        connection.conn_type,
        connection.host,
        connection.port,
        connection.login,
        connection.password,
        connection.schema,
    )
    return replace(found, store_url=url)


@contextmanager
def no_retry_for_config_errors() -> Iterator[None]:
    """A monitor file that is wrong stays wrong: fail the task without retrying."""
    try:
        yield
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from exc


def score_dag(monitor: Monitor) -> DAG:
    """The monitor's scheduled scoring: ingest, score by partition, events, drift check."""
    name = monitor.name
    start = monitor.schedule.start or monitor.baseline.end
    if start is None:
        raise ConfigError(
            f"monitor {name}: schedule.start: required when the baseline is last_intervals "
            "(the first data interval the score DAG covers)"
        )

    @dag(
        dag_id=f"atalaia__{name}__score",
        description=f"Score {name}: ingest, score, events, drift check",
        schedule=CronDataIntervalTimetable(monitor.schedule.score, timezone="UTC"),
        start_date=start,
        catchup=monitor.schedule.catchup,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["atalaia", name, "score"],
        auto_register=False,
        doc_md=monitor.description or None,
    )
    def scoring() -> None:
        @task(execution_timeout=INGEST_TIMEOUT)
        def ingest(data_interval_start=None, data_interval_end=None) -> list[dict[str, int]]:
            """Land the interval's rows; return the entity partitions to score."""
            from dataclasses import asdict

            from atalaia import jobs

            with no_retry_for_config_errors():
                found = settings()
                jobs.ingest(monitor, data_interval_start, data_interval_end, settings=found)
                plan = jobs.plan_scoring(
                    monitor, data_interval_start, data_interval_end, settings=found
                )
            return [asdict(partition) for partition in plan]

        @task(execution_timeout=SCORE_TIMEOUT)
        def score(
            partition: dict[str, int], data_interval_start=None, data_interval_end=None
        ) -> None:
            """Score one partition's entities with the pinned model version."""
            from atalaia import jobs

            with no_retry_for_config_errors():
                jobs.score(
                    monitor,
                    data_interval_start,
                    data_interval_end,
                    settings=settings(),
                    partition=jobs.Partition(**partition),
                )

        # One events task at a time across runs: a backfill runs several intervals at once
        # (its own --max-active-runs, not the DAG's), and rebuilds of neighbouring intervals
        # must not interleave.
        @task(execution_timeout=EVENTS_TIMEOUT, max_active_tis_per_dag=1)
        def events(
            plan: list[dict[str, int]], data_interval_start=None, data_interval_end=None
        ) -> None:
            """Rebuild the batch's events; record its score run and export its metrics."""
            from atalaia import jobs

            with no_retry_for_config_errors():
                jobs.finish_scoring(
                    monitor,
                    data_interval_start,
                    data_interval_end,
                    plan[0]["model_version"],
                    settings=settings(),
                )

        @task.short_circuit(execution_timeout=DRIFT_TIMEOUT)
        def check_drift(data_interval_end=None) -> bool:
            """Compare recent scores with the calibration; True (go on) when drift is found."""
            from atalaia import jobs

            with no_retry_for_config_errors():
                result = jobs.check_drift(monitor, data_interval_end, settings=settings())
            return result.check.detected

        @task(outlets=[drift_asset(name)], execution_timeout=DRIFT_TIMEOUT)
        def request_retraining() -> None:
            """Succeeding updates the drift Asset, which starts the retrain DAG."""

        plan = ingest()
        scored = score.expand(partition=plan)
        finished = events(plan)
        scored >> finished >> check_drift() >> request_retraining()

    return scoring()


def retrain_dag(monitor: Monitor) -> DAG:
    """The monitor's retraining, on its retrain schedule and when drift is found."""
    name = monitor.name
    drift = drift_asset(name)
    schedule: Any = drift
    if monitor.schedule.retrain is not None:
        timetable = CronTriggerTimetable(monitor.schedule.retrain, timezone="UTC")
        schedule = AssetOrTimeSchedule(timetable=timetable, assets=[drift])

    @dag(
        dag_id=f"atalaia__{name}__retrain",
        description=f"Retrain {name} on recent batches; promote the candidate if not worse",
        schedule=schedule,
        start_date=monitor.schedule.start or monitor.baseline.end,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["atalaia", name, "retrain"],
        auto_register=False,
    )
    def retraining() -> None:
        @task(execution_timeout=RETRAIN_TIMEOUT)
        def retrain() -> dict[str, Any]:
            """Train a candidate, compare it with the champion, promote it or keep the champion."""
            from atalaia import jobs

            with no_retry_for_config_errors():
                result = jobs.retrain(monitor, settings=settings())
            return {
                "version": result.version,
                "promoted": result.promoted,
                "champion_version": result.champion_version,
                "reason": result.reason,
            }

        retrain()

    return retraining()


def invalid_monitor_dag(path: Path, message: str) -> DAG:
    """A DAG standing for a monitor file that cannot be loaded: its only task fails with why."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)

    @dag(
        dag_id=f"atalaia__{stem}__invalid",
        description=message[:200],
        schedule=None,
        start_date=None,
        catchup=False,
        tags=["atalaia", "invalid-monitor"],
        auto_register=False,
        doc_md=f"Monitor file `{path}` cannot be loaded:\n\n```\n{message}\n```",
    )
    def invalid() -> None:
        @task(retries=0)
        def report_invalid_monitor() -> None:
            """Fail with the reason the monitor file cannot be loaded."""
            raise AirflowFailException(message)

        report_invalid_monitor()

    return invalid()


def monitor_dags(folder: Path) -> dict[str, DAG]:
    """Every DAG of the monitor files in ``folder``, by id; a bad file gives its invalid DAG."""
    dags: dict[str, DAG] = {}
    names: dict[str, Path] = {}
    for path in sorted(folder.glob("*.y*ml")):
        try:
            monitor = load_monitor(path)
            if monitor.name in names:
                raise ConfigError(
                    f"{path}: name: monitor {monitor.name!r} is already defined in "
                    f"{names[monitor.name]}"
                )
            built = [score_dag(monitor), retrain_dag(monitor)]
            for made in built:
                made.validate()  # a bad schedule, say, here rather than as the file's error
            names[monitor.name] = path
        except ConfigError as exc:  # its message names the file and the field
            built = [invalid_monitor_dag(path, str(exc))]
        except Exception as exc:  # any error in one file must not hide the other monitors
            built = [invalid_monitor_dag(path, f"{path}: {type(exc).__name__}: {exc}")]
        dags.update((made.dag_id, made) for made in built)
    return dags


# Airflow collects the DAG objects among the module's globals.
globals().update(monitor_dags(MONITORS_DIR))
