"""Airflow DAGs for every monitor file in ``ATALAIA_MONITORS_DIR`` (default: ``monitors/``
beside this folder): ``atalaia__<monitor>__score`` and ``atalaia__<monitor>__retrain``.

Wiring only. Parsing reads the monitor files and nothing else; the tasks import
``atalaia.jobs`` (pandas, the detectors, the store) when they run, and each calls one job,
so everything here can also be run from the ``atalaia`` command line.

- score, on ``schedule.score`` over data intervals from ``schedule.start`` (default: the
  baseline's end) to ``schedule.end`` (default: none), with ``schedule.catchup``:
  batch_interval (which interval this run scores; fails at once when there is none) ->
  wait_for_data (until the interval has source rows, at most ``schedule.max_data_delay``
  after its end) -> ingest -> plan (the entity partitions) -> score (one mapped task per
  partition, all with the version the plan pinned) -> events (rebuilt once for the whole
  batch; records the batch's score run and exports its metrics) -> check_drift ->
  request_retraining, which runs only when drift was found and updates the monitor's drift
  Asset. ``max_active_runs=1``, so scheduled runs (catchup included) go one interval at a
  time, in order; a backfill applies its own ``--max-active-runs`` instead, which is safe:
  scores of different intervals never share a key, and the events task, which rebuilds
  events across interval edges from the neighbours' scores, runs one at a time per DAG
  (``max_active_tis_per_dag=1``).
- retrain, on ``schedule.retrain`` and whenever the drift Asset is updated: one task that
  trains a candidate, compares it with the champion and promotes it when it is better by
  ``retraining.min_improvement``, or, when drift triggered the run, when it is not worse
  (``atalaia.promotion``). ``max_active_runs=1`` as well.

A run scores the schedule interval that holds its logical date, so a scheduled run, a
backfill run and a manual run with the same logical date score the same interval (for a
manual run that is not the data interval Airflow shows: the CLI infers that one from the
trigger time, the UI and ``dag.test`` from the interval before the date). A manual run
without a logical date scores the last complete interval before it was triggered. Every
task logs what it did and returns a small summary.

The store is the Airflow connection ``atalaia_store`` when it exists, else
``ATALAIA_STORE_URL``. A monitor file that cannot be loaded becomes one DAG,
``atalaia__<file name>__invalid``, whose description is the error and whose only task fails
with it; the other monitors load as usual.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    PokeReturnValue,
    dag,
    task,
)
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from atalaia.config import Monitor, as_utc, dag_id, duration, monitor_files
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
INTERVAL_TIMEOUT = timedelta(minutes=5)
# How often a run whose interval has no rows yet looks again (sooner if the monitor's
# schedule.max_data_delay is shorter); between looks the task frees its worker slot.
DATA_POKE_INTERVAL = timedelta(minutes=5)
INGEST_TIMEOUT = timedelta(hours=1)
SCORE_TIMEOUT = timedelta(hours=2)
EVENTS_TIMEOUT = timedelta(minutes=30)
DRIFT_TIMEOUT = timedelta(minutes=30)
RETRAIN_TIMEOUT = timedelta(hours=4)

log = logging.getLogger("atalaia.dags")


def last_start(monitor: Monitor) -> datetime | None:
    """The score DAG's ``end_date``: just before ``schedule.end``, as Airflow still schedules
    an interval that starts at its end date."""
    end = monitor.schedule.end
    return None if end is None else end - timedelta(microseconds=1)


def drift_asset(monitor: str) -> Asset:
    """The Asset a monitor's score DAG updates when drift is found; it triggers retraining."""
    return Asset(name=f"atalaia__{monitor}__drift", uri=f"atalaia://{monitor}/drift")


def settings() -> Settings:
    """``ATALAIA_*`` settings, with the store of the ``atalaia_store`` connection if defined;
    each task reads them once and passes them to its job."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    found = Settings.from_env()
    try:
        return found.with_store(Connection.get(STORE_CONNECTION))
    except AirflowNotFoundException:
        return found


@contextmanager
def no_retry_for_config_errors() -> Iterator[None]:
    """A monitor file that is wrong stays wrong: fail the task without retrying."""
    try:
        yield
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from exc


def run_interval(
    cron: str, logical_date: datetime | None, run_after: datetime
) -> tuple[datetime, datetime, str]:
    """The interval of ``cron`` (UTC) a score run scores, and why that one.

    With a logical date: the interval that holds it, the one a scheduled or backfill run of
    that logical date scores. Without one (``airflow dags trigger`` with no date): the last
    complete interval before ``run_after``.
    """
    import pendulum
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.interval import CronDataIntervalTimetable as CoreCronTimetable

    timetable = CoreCronTimetable(cron, timezone="UTC")
    if logical_date is None:
        found = timetable.infer_manual_data_interval(run_after=pendulum.instance(run_after))
        why = f"no logical date: the last complete interval before {as_utc(run_after)}"
    else:
        before = timetable.infer_manual_data_interval(run_after=pendulum.instance(logical_date))
        found = timetable.next_dagrun_info(
            last_automated_data_interval=before,
            restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
        ).data_interval
        why = f"the interval that holds its logical date {as_utc(logical_date)}"
    return as_utc(found.start), as_utc(found.end), why


def bounds(interval: dict[str, str]) -> tuple[datetime, datetime]:
    """The start and end of the ``batch_interval`` task's summary."""
    return as_utc(interval["start"]), as_utc(interval["end"])


def score_dag(monitor: Monitor) -> DAG:
    """The monitor's scheduled scoring: ingest, score by partition, events, drift check."""
    name = monitor.name
    start = monitor.schedule.start or monitor.baseline.end
    if start is None:
        raise ConfigError(
            f"monitor {name}: schedule.start: required when the baseline is last_intervals "
            "(the first data interval the score DAG covers)"
        )
    if monitor.schedule.end is not None and monitor.schedule.end <= start:
        raise ConfigError(
            f"monitor {name}: schedule.end: {monitor.schedule.end} is not after the first "
            f"interval's start {start}"
        )
    delay = duration(monitor.schedule.max_data_delay)

    @dag(
        dag_id=dag_id(name, "score"),
        description=f"Score {name}: ingest, score, events, drift check",
        schedule=CronDataIntervalTimetable(monitor.schedule.score, timezone="UTC"),
        start_date=start,
        end_date=last_start(monitor),
        catchup=monitor.schedule.catchup,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["atalaia", name, "score"],
        auto_register=False,
        doc_md=monitor.description or None,
    )
    def scoring() -> None:
        @task(retries=0, execution_timeout=INTERVAL_TIMEOUT)
        def batch_interval(dag_run=None) -> dict[str, str]:
            """Which interval this run scores; fail at once, without retries, if none."""
            start, end, why = run_interval(
                monitor.schedule.score, dag_run.logical_date, dag_run.run_after
            )
            where = f"monitor {name}: run {dag_run.run_id} would score [{start}, {end})"
            if end > datetime.now(UTC):
                raise AirflowFailException(f"{where} ({why}), which is not over yet")
            if monitor.schedule.end is not None and start >= monitor.schedule.end:
                raise AirflowFailException(
                    f"{where} ({why}), which starts at or after schedule.end {monitor.schedule.end}"
                )
            log.info(
                "monitor %s: run %s scores [%s, %s): %s", name, dag_run.run_id, start, end, why
            )
            return {"start": start.isoformat(), "end": end.isoformat(), "why": why}

        @task.sensor(
            mode="reschedule",
            poke_interval=min(DATA_POKE_INTERVAL, delay).total_seconds(),
            timeout=delay.total_seconds(),
            retries=0,
        )
        def wait_for_data(interval: dict[str, str]) -> PokeReturnValue:
            """Done when the interval's source has rows; fails once its data is too late."""
            from atalaia import jobs
            from atalaia.errors import SourceError

            start, end = bounds(interval)
            deadline = end + delay
            try:
                rows = jobs.arrived_rows(monitor, start, end, settings=settings())
                problem = "no source rows"
            except SourceError as exc:  # a database that is down, a file half written
                rows, problem = 0, str(exc)
            if rows:
                log.info("monitor %s: %d source rows in [%s, %s)", name, rows, start, end)
                return PokeReturnValue(is_done=True, xcom_value={"rows": rows})
            if datetime.now(UTC) >= deadline:
                raise AirflowFailException(
                    f"monitor {name}: {problem} in [{start}, {end}) by {deadline} "
                    f"(schedule.max_data_delay {monitor.schedule.max_data_delay} after the "
                    "interval's end): if the source stopped, set schedule.end; if it is late, "
                    "raise schedule.max_data_delay and clear this run"
                )
            log.info(
                "monitor %s: %s in [%s, %s) yet; looking again until %s",
                name,
                problem,
                start,
                end,
                deadline,
            )
            return PokeReturnValue(is_done=False)

        @task(execution_timeout=INGEST_TIMEOUT)
        def ingest(interval: dict[str, str]) -> dict[str, Any]:
            """Land the interval's accepted rows; quarantine the others."""
            from atalaia import jobs

            start, end = bounds(interval)
            with no_retry_for_config_errors():
                landed = jobs.ingest(monitor, start, end, settings=settings())
            log.info(
                "monitor %s: [%s, %s): landed %d rows as batch %d, quarantined %d",
                name,
                start,
                end,
                landed.rows,
                landed.batch_id,
                landed.quarantined,
            )
            return {
                "batch_id": landed.batch_id,
                "rows": landed.rows,
                "quarantined": landed.quarantined,
            }

        @task(execution_timeout=INGEST_TIMEOUT)
        def plan(interval: dict[str, str]) -> list[dict[str, int]]:
            """The landed batch's entity partitions, each pinned to the champion's version."""
            from dataclasses import asdict

            from atalaia import jobs

            start, end = bounds(interval)
            with no_retry_for_config_errors():
                partitions = jobs.plan_scoring(monitor, start, end, settings=settings())
            log.info(
                "monitor %s: [%s, %s): %d partition(s) to score with version %d",
                name,
                start,
                end,
                len(partitions),
                partitions[0].model_version,
            )
            return [asdict(partition) for partition in partitions]

        @task(execution_timeout=SCORE_TIMEOUT)
        def score(partition: dict[str, int], interval: dict[str, str]) -> dict[str, Any]:
            """Score one partition's entities with the pinned model version."""
            from atalaia import jobs

            start, end = bounds(interval)
            share = jobs.Partition(**partition)
            with no_retry_for_config_errors():
                result = jobs.score(monitor, start, end, settings=settings(), partition=share)
            log.info(
                "monitor %s: [%s, %s) %s: scored %d rows, %d anomalous, max z %.2f",
                name,
                start,
                end,
                share,
                result.rows,
                result.anomalies,
                result.max_z,
            )
            return {
                "partition": share.index,
                "model_version": result.model_version,
                "rows": result.rows,
                "anomalies": result.anomalies,
                "max_z": result.max_z,
            }

        # One events task at a time across runs: a backfill runs several intervals at once
        # (its own --max-active-runs, not the DAG's), and rebuilds of neighbouring intervals
        # must not interleave.
        @task(execution_timeout=EVENTS_TIMEOUT, max_active_tis_per_dag=1)
        def events(interval: dict[str, str], partitions: list[dict[str, int]]) -> dict[str, Any]:
            """Rebuild the batch's events; record its score run and export its metrics."""
            from atalaia import jobs

            start, end = bounds(interval)
            version = partitions[0]["model_version"]
            with no_retry_for_config_errors():
                result = jobs.finish_scoring(monitor, start, end, version, settings=settings())
            still_open = sum(event["is_open"] for event in result.events)
            log.info(
                "monitor %s: [%s, %s) scored by version %d: %d rows, %d anomalous, "
                "%d event(s) (%d open), max z %.2f",
                name,
                start,
                end,
                result.model_version,
                result.rows,
                result.anomalies,
                len(result.events),
                still_open,
                result.max_z,
            )
            return {
                "model_version": result.model_version,
                "rows": result.rows,
                "anomalies": result.anomalies,
                "events": len(result.events),
                "open_events": still_open,
                "max_z": result.max_z,
            }

        @task(execution_timeout=DRIFT_TIMEOUT)
        def check_drift(interval: dict[str, str]) -> dict[str, Any]:
            """Compare recent scores with the calibration: the distance, the limit, the verdict."""
            from atalaia import jobs

            with no_retry_for_config_errors():
                result = jobs.check_drift(monitor, bounds(interval)[1], settings=settings())
            check = result.check
            log.info(
                "monitor %s: drift over [%s, %s) for version %d: %s (%d rows, %d anomalous)",
                name,
                result.start,
                result.end,
                result.model_version,
                check.reason,
                check.rows,
                check.anomalies,
            )
            return {
                "model_version": result.model_version,
                "rows": check.rows,
                "distance": check.distance,
                "limit": monitor.drift.max_distance,
                "detected": check.detected,
                "reason": check.reason,
            }

        @task(outlets=[drift_asset(name)], execution_timeout=DRIFT_TIMEOUT)
        def request_retraining(drift: dict[str, Any]) -> None:
            """Succeeds (updating the drift Asset, which starts the retrain DAG) on drift only."""
            if not drift["detected"]:
                raise AirflowSkipException(f"no drift: {drift['reason']}")
            log.info("monitor %s: drift found (%s); retraining requested", name, drift["reason"])

        interval = batch_interval()
        partitions = plan(interval)
        wait_for_data(interval) >> ingest(interval) >> partitions
        scored = score.partial(interval=interval).expand(partition=partitions)
        finished = events(interval, partitions)
        drift = check_drift(interval)
        scored >> finished >> drift
        request_retraining(drift)

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
        dag_id=dag_id(name, "retrain"),
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
        def retrain(triggering_asset_events=None) -> dict[str, Any]:
            """Train a candidate, compare it with the champion, promote it or keep the champion."""
            from atalaia import jobs

            after_drift = bool(triggering_asset_events)
            with no_retry_for_config_errors():
                result = jobs.retrain(monitor, settings=settings(), after_drift=after_drift)
            log.info(
                "monitor %s: version %d trained on %d rows of [%s, %s)%s; %s; champion: version %d",
                name,
                result.version,
                result.baseline_rows,
                result.baseline_start,
                result.baseline_end,
                " after drift" if after_drift else "",
                "promoted" if result.promoted else "kept as a candidate",
                result.champion_version,
            )
            return {
                "version": result.version,
                "promoted": result.promoted,
                "champion_version": result.champion_version,
                "after_drift": after_drift,
                "reason": result.reason,
            }

        retrain()

    return retraining()


def invalid_monitor_dag(path: Path, message: str) -> DAG:
    """A DAG standing for a monitor file that cannot be loaded: its only task fails with why."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)

    @dag(
        dag_id=dag_id(stem, "invalid"),
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
    """Every DAG of the monitor files in ``folder`` (``config.monitor_files``), by id; a bad
    file gives its invalid DAG."""
    dags: dict[str, DAG] = {}
    for path, monitor in monitor_files(folder).items():
        try:
            if isinstance(monitor, ConfigError):
                raise monitor
            built = [score_dag(monitor), retrain_dag(monitor)]
            for made in built:
                made.validate()  # a bad schedule, say, here rather than as the file's error
        except ConfigError as exc:  # its message names the file and the field
            built = [invalid_monitor_dag(path, str(exc))]
        except Exception as exc:  # any error in one file must not hide the other monitors
            built = [invalid_monitor_dag(path, f"{path}: {type(exc).__name__}: {exc}")]
        dags.update((made.dag_id, made) for made in built)
    return dags


# Airflow collects the DAG objects among the module's globals.
globals().update(monitor_dags(MONITORS_DIR))
