"""What docker/celery-local.sh needs besides processes: the fleet's data and the run's checks.

    python docker/celery_check.py reset SERVER_URL BROKER_URL DATABASE...
    python docker/celery_check.py fleet FOLDER [--entities 1000]
    python docker/celery_check.py wait-dag META_URL DAG_ID
    python docker/celery_check.py wait-run META_URL DAG_ID START [--timeout 600]
    python docker/celery_check.py kill-scoring-worker META_URL STORE_URL DAG_ID START \
        --worker HOSTNAME=SESSION --worker HOSTNAME=SESSION
    python docker/celery_check.py tasks META_URL DAG_ID START
    python docker/celery_check.py check-spread META_URL DAG_ID START
    python docker/celery_check.py check-retried META_URL STORE_URL DAG_ID START HOST
    python docker/celery_check.py compare STORE_URL REFERENCE_URL MONITOR

``reset`` drops and creates the databases and empties the broker's Redis database.
``fleet`` writes a monitor of ``--entities`` hosts with hourly metrics (Parquet, one file a
day) ending at today's midnight (UTC), with a few injected incidents, and prints the
intervals as shell assignments. The other commands read Airflow's metadata database
(``META_URL``; the REST API gives the same fields) and Atalaia's stores. Each check prints
what it found; a failed check exits with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, MetaData, Table, create_engine, select, text

DAY = timedelta(days=1)
STEP = timedelta(hours=1)
FEATURES = ["cpu", "memory", "latency_ms", "error_rate"]
BASELINE_DAYS = 3
SCORED_DAYS = 2
PARTITION_ENTITIES = 250
INCIDENT_HOSTS = (7, 123, 456)  # taken modulo the fleet's size
TERMINAL = ("success", "failed")
# Columns that say where or when a row was written, not what it holds.
BOOKKEEPING = {"id", "monitor_id", "batch_id", "model_id", "updated_at", "created_at"}


def fleet_days(today: datetime) -> list[datetime]:
    """The first instants of the data's days: the baseline's, then the two scored days."""
    first = today - (BASELINE_DAYS + SCORED_DAYS) * DAY
    return [first + n * DAY for n in range(BASELINE_DAYS + SCORED_DAYS)]


def fleet_frame(entities: int, days: list[datetime], seed: int = 11) -> pd.DataFrame:
    """Hourly metrics of ``entities`` hosts over ``days``, with incidents in the scored days.

    Each host has its own load level and daily phase; latency and errors follow CPU. On the
    first scored day host 7's CPU saturates for three hours and host 123's memory steps up
    from its last hours into the next day (an event across the interval edge); on the second
    day host 456's latency rises while its CPU idles.
    """
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(days[0], days[-1] + DAY, freq=STEP, inclusive="left")
    hours = np.arange(len(stamps))
    level = rng.uniform(20, 60, (entities, 1))
    phase = rng.uniform(0, 2 * np.pi, (entities, 1))
    noise = rng.normal(0, 3, (entities, len(hours)))
    cpu = level + 15 * np.sin(2 * np.pi * hours / 24 + phase) + noise
    memory = rng.uniform(40, 70, (entities, 1)) + rng.normal(0, 1.5, (entities, len(hours)))
    latency = 40 + 1.5 * cpu + rng.normal(0, 5, cpu.shape)
    errors = np.clip(0.2 + 0.01 * cpu + rng.normal(0, 0.1, cpu.shape), 0, None)
    first, second = BASELINE_DAYS * 24, (BASELINE_DAYS + 1) * 24
    saturated, stepped, idle = (host % entities for host in INCIDENT_HOSTS)
    cpu[saturated, first + 9 : first + 12] = 99.0
    latency[saturated, first + 9 : first + 12] += 400
    memory[stepped, second - 2 : second + 3] += 25
    cpu[idle, second + 14 : second + 17] = 5.0
    latency[idle, second + 14 : second + 17] = 250.0
    return pd.DataFrame(
        {
            "timestamp": np.tile(stamps, entities),
            "node": np.repeat([f"node-{i:04d}" for i in range(entities)], len(stamps)),
            "cpu": cpu.ravel().round(3),
            "memory": memory.ravel().round(3),
            "latency_ms": latency.ravel().round(3),
            "error_rate": errors.ravel().round(4),
        }
    )


def monitor_yaml(sources: Path, days: list[datetime]) -> str:
    """The fleet monitor: gmm over windows of two hours, scored daily over the scored days.

    ``schedule.end`` stops the catchup at the data's end, even when the script runs across
    midnight.
    """
    first_scored = days[BASELINE_DAYS]
    return f"""\
name: fleet
description: Hourly metrics of a fleet of hosts (written by docker/celery_check.py)
source:
  kind: files
  path: {sources}/*.parquet
timestamp: timestamp
entities: [node]
features: [{", ".join(FEATURES)}]
frequency: 1h
detector:
  kind: gmm
  params: {{n_components: 3}}
  window: 2
baseline:
  start: {days[0].isoformat()}
  end: {first_scored.isoformat()}
calibration:
  alpha: 0.001
events:
  max_gap: 1
schedule:
  score: "@daily"
  retrain: null
  start: {first_scored.isoformat()}
  end: {(days[-1] + DAY).isoformat()}
  catchup: true
scoring:
  partition_entities: {PARTITION_ENTITIES}
"""


def write_fleet(folder: Path, entities: int) -> list[datetime]:
    """Write ``folder``/sources/day-*.parquet and ``folder``/monitors/fleet.yaml."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = fleet_days(today)
    frame = fleet_frame(entities, days)
    sources = folder / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    for day, rows in frame.groupby(frame["timestamp"].dt.date):
        rows.to_parquet(sources / f"day-{day}.parquet", index=False)
    (folder / "monitors").mkdir(parents=True, exist_ok=True)
    (folder / "monitors" / "fleet.yaml").write_text(monitor_yaml(sources, days))
    return days


def reset(server_url: str, broker_url: str, databases: list[str]) -> None:
    """Drop and create ``databases`` on the PostgreSQL server; empty the Redis database."""
    import redis

    server = create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        for name in databases:
            quoted = connection.dialect.identifier_preparer.quote(name)
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            connection.execute(text(f"CREATE DATABASE {quoted}"))
    server.dispose()
    redis.Redis.from_url(broker_url).flushdb()


@functools.cache
def engine(url: str) -> Engine:
    """One engine (and connection pool) per database for the whole command."""
    return create_engine(url)


# --- Airflow's metadata database -------------------------------------------------------


def wait_dag(meta_url: str, dag_id: str, timeout: float) -> int:
    """Wait until the dag-processor has stored ``dag_id``; 0 when it did."""
    deadline = time.monotonic() + timeout
    query = text("SELECT count(*) FROM dag WHERE dag_id = :dag_id")
    while time.monotonic() < deadline:
        with engine(meta_url).connect() as connection:
            if connection.execute(query, {"dag_id": dag_id}).scalar():
                return 0
        time.sleep(1)
    print(f"{dag_id} was not parsed within {timeout:.0f} s", file=sys.stderr)
    return 1


def dag_run(meta_url: str, dag_id: str, start: str) -> dict[str, Any] | None:
    """The run of ``dag_id`` whose data interval starts at ``start``, if there is one."""
    with engine(meta_url).connect() as connection:
        row = connection.execute(
            text(
                "SELECT run_id, state, start_date, end_date FROM dag_run "
                "WHERE dag_id = :dag_id AND data_interval_start = :start"
            ),
            {"dag_id": dag_id, "start": start},
        ).mappings()
        return next(iter(row), None)


def task_tries(meta_url: str, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every try of every task of a run: the current ones and those in the history table."""
    query = """
        SELECT task_id, map_index, try_number, state, hostname, start_date, end_date
        FROM {table} WHERE dag_id = :dag_id AND run_id = :run_id
    """
    tries = []
    with engine(meta_url).connect() as connection:
        for table in ("task_instance", "task_instance_history"):
            tries += connection.execute(
                text(query.format(table=table)), {"dag_id": dag_id, "run_id": run_id}
            ).mappings()
    return sorted(
        (dict(row) for row in tries), key=lambda t: (t["task_id"], t["map_index"], t["try_number"])
    )


def wait_run(meta_url: str, dag_id: str, start: str, timeout: float) -> int:
    """Wait for the run to end; print its state and seconds; 0 when it succeeded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = dag_run(meta_url, dag_id, start)
        if run is not None and run["state"] in TERMINAL:
            seconds = (run["end_date"] - run["start_date"]).total_seconds()
            print(f"run {run['run_id']}: {run['state']} in {seconds:.0f} s")
            return 0 if run["state"] == "success" else 1
        time.sleep(2)
    print(f"run of {dag_id} from {start}: not finished after {timeout:.0f} s")
    return 1


def kill_session(session_id: int) -> None:
    """SIGKILL every process of a session (Linux's /proc).

    Not only the process group: Airflow runs each task in a process group of its own, which
    would outlive its worker and finish the task.
    """
    for _ in range(2):  # again, for any process forked while the first pass ran
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state_on = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            if int(state_on[3]) == session_id:  # state, ppid, pgrp, session, ...
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(stat.parent.name), signal.SIGKILL)


def kill_scoring_worker(
    meta_url: str,
    store_url: str,
    dag_id: str,
    start: str,
    workers: dict[str, int],
    timeout: float,
) -> int:
    """Kill -9 a worker in the middle of scoring a partition, as if its machine died.

    Waits until the store records a ``score_partition`` job of the interval as running, then
    kills the session (``workers``: hostname to session id) of the worker whose ``score``
    task of the run started first among those running (the one whose job has begun). Prints
    the worker's hostname, then what was running.
    """
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT count(*), extract(epoch FROM now() - min(started_at)) FROM runs "
        "WHERE job = 'score_partition' AND status = 'running' AND interval_start = :start"
    )
    while time.monotonic() < deadline:
        with engine(store_url).connect() as connection:
            writing, oldest = connection.execute(query, {"start": start}).one()
        run = dag_run(meta_url, dag_id, start) if writing else None
        if run is not None:
            running = [
                t
                for t in task_tries(meta_url, dag_id, run["run_id"])
                if t["task_id"] == "score" and t["state"] == "running" and t["hostname"]
            ]
            if running:
                victim = min(running, key=lambda t: t["start_date"])["hostname"]
                kill_session(workers[victim])
                print(victim)
                print(
                    f"at {datetime.now(UTC):%H:%M:%S} UTC, when {writing} partition job(s) were "
                    f"writing, the first for {oldest:.1f} s, and {len(running)} score task(s) "
                    "were running"
                )
                return 0
        time.sleep(0.2)
    print(f"no partition of {dag_id} from {start} was scored within {timeout:.0f} s")
    return 1


def print_tasks(meta_url: str, dag_id: str, start: str) -> int:
    """One line per try of each task of the run: what ran where, in which state."""
    run = dag_run(meta_url, dag_id, start)
    if run is None:
        print(f"no run of {dag_id} from {start}")
        return 1
    for task in task_tries(meta_url, dag_id, run["run_id"]):
        seconds = ""
        if task["start_date"] and task["end_date"]:
            seconds = f"{(task['end_date'] - task['start_date']).total_seconds():6.1f} s"
        print(
            f"{task['task_id']:>18} [{task['map_index']:>2}] try {task['try_number']} "
            f"{task['state'] or '-':>15} on {task['hostname'] or '-':<14} {seconds}"
        )
    return 0


def check_spread(meta_url: str, dag_id: str, start: str) -> int:
    """Check that the run's ``score`` partitions ran on at least two hosts."""
    run = dag_run(meta_url, dag_id, start)
    if run is None:
        print(f"no run of {dag_id} from {start}")
        return 1
    hosts: dict[str, int] = {}
    for task in task_tries(meta_url, dag_id, run["run_id"]):
        if task["task_id"] == "score" and task["state"] == "success":
            hosts[task["hostname"]] = hosts.get(task["hostname"], 0) + 1
    print(", ".join(f"{count} on {host}" for host, count in sorted(hosts.items())) or "none ran")
    return 0 if len(hosts) >= 2 else 1


def check_retried(meta_url: str, store_url: str, dag_id: str, start: str, host: str) -> int:
    """Check that a partition whose try on ``host`` did not finish succeeded on another host.

    Also counts the store's records of the interval's partition jobs by status: a worker
    killed inside a job leaves its record running until a later job marks it abandoned.
    """
    run = dag_run(meta_url, dag_id, start)
    if run is None:
        print(f"no run of {dag_id} from {start}")
        return 1
    tries = [t for t in task_tries(meta_url, dag_id, run["run_id"]) if t["task_id"] == "score"]
    lost = {t["map_index"]: t for t in tries if t["hostname"] == host and t["state"] != "success"}
    recovered = [
        t
        for t in tries
        if t["map_index"] in lost
        and t["try_number"] > lost[t["map_index"]]["try_number"]
        and t["state"] == "success"
        and t["hostname"] != host
    ]
    for t in recovered:
        first = lost[t["map_index"]]
        print(
            f"partition {t['map_index']}: try {first['try_number']} on {host} "
            f"{first['state']}, try {t['try_number']} succeeded on {t['hostname']}"
        )
    if not lost:
        print(f"no score try on {host} was lost")
    query = text(
        "SELECT status, count(*) FROM runs WHERE job = 'score_partition' "
        "AND interval_start = :start GROUP BY status ORDER BY status"
    )
    with engine(store_url).connect() as connection:
        statuses = connection.execute(query, {"start": start}).all()
    print("the store's partition jobs: " + ", ".join(f"{n} {status}" for status, n in statuses))
    return 0 if lost and len(recovered) == len(lost) and run["state"] == "success" else 1


# --- the stores ------------------------------------------------------------------------


def hashable(value: Any) -> Any:
    """A JSON column's value (a list or a dict) as its canonical text; others unchanged."""
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value


def store_rows(url: str, table_name: str, monitor: str) -> list[tuple]:
    """A table's rows for ``monitor``, bookkeeping left out, model ids as versions, sorted."""
    metadata = MetaData()
    table = Table(table_name, metadata, autoload_with=engine(url))
    models = Table("models", metadata, autoload_with=engine(url))
    monitors = Table("monitors", metadata, autoload_with=engine(url))
    columns = [column for column in table.c if column.name not in BOOKKEEPING]
    query = (
        select(models.c.version, *columns)
        .join(models, models.c.id == table.c.model_id)
        .join(monitors, monitors.c.id == table.c.monitor_id)
        .where(monitors.c.name == monitor)
    )
    with engine(url).connect() as connection:
        rows = [tuple(map(hashable, row)) for row in connection.execute(query)]
    return sorted(rows, key=repr)


def compare(url: str, reference_url: str, monitor: str) -> int:
    """Check that the two stores hold the same scores and events of ``monitor``."""
    failed = False
    for table in ("scores", "events"):
        found = store_rows(url, table, monitor)
        expected = store_rows(reference_url, table, monitor)
        missing = len(set(expected) - set(found))
        extra = len(set(found) - set(expected))
        repeated = len(found) - len(set(found))
        same = found == expected
        failed |= not same
        print(
            f"{table}: {len(found)} rows, single-process run {len(expected)}; "
            f"{'identical' if same else 'DIFFERENT'} "
            f"({missing} missing, {extra} extra or changed, {repeated} repeated)"
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    clean = commands.add_parser("reset", help="recreate the databases, empty the broker")
    clean.add_argument("server_url")
    clean.add_argument("broker_url")
    clean.add_argument("databases", nargs="+")
    fleet = commands.add_parser("fleet", help="write the fleet's data and monitor")
    fleet.add_argument("folder", type=Path)
    fleet.add_argument("--entities", type=int, default=1000)
    waited = commands.add_parser("wait-dag", help="wait for the DAG to be parsed")
    waited.add_argument("meta_url")
    waited.add_argument("dag_id")
    waited.add_argument("--timeout", type=float, default=300)
    for name in ("wait-run", "kill-scoring-worker", "tasks", "check-spread", "check-retried"):
        command = commands.add_parser(name)
        command.add_argument("meta_url")
        if name in ("kill-scoring-worker", "check-retried"):
            command.add_argument("store_url")
        if name == "kill-scoring-worker":
            command.add_argument(
                "--worker",
                action="append",
                required=True,
                help="HOSTNAME=SESSION_ID",
            )
        command.add_argument("dag_id")
        command.add_argument("start", help="the run's data interval start, ISO 8601")
        if name == "check-retried":
            command.add_argument("host", help="the killed worker's hostname")
        command.add_argument("--timeout", type=float, default=600)
    stores = commands.add_parser("compare", help="compare a store with a reference store")
    stores.add_argument("url")
    stores.add_argument("reference_url")
    stores.add_argument("monitor")
    args = parser.parse_args(argv)

    if args.command == "reset":
        reset(args.server_url, args.broker_url, args.databases)
        return 0
    if args.command == "fleet":
        days = write_fleet(args.folder, args.entities)
        first_scored = BASELINE_DAYS
        print(f"BASELINE_START={days[0].isoformat()}")
        print(f"FIRST_DAY={days[first_scored].isoformat()}")
        print(f"SECOND_DAY={days[first_scored + 1].isoformat()}")
        print(f"END={(days[-1] + DAY).isoformat()}")
        return 0
    if args.command == "wait-dag":
        return wait_dag(args.meta_url, args.dag_id, args.timeout)
    if args.command == "wait-run":
        return wait_run(args.meta_url, args.dag_id, args.start, args.timeout)
    if args.command == "kill-scoring-worker":
        workers = {name: int(pgid) for name, pgid in (w.split("=") for w in args.worker)}
        return kill_scoring_worker(
            args.meta_url, args.store_url, args.dag_id, args.start, workers, args.timeout
        )
    if args.command == "tasks":
        return print_tasks(args.meta_url, args.dag_id, args.start)
    if args.command == "check-spread":
        return check_spread(args.meta_url, args.dag_id, args.start)
    if args.command == "check-retried":
        return check_retried(args.meta_url, args.store_url, args.dag_id, args.start, args.host)
    return compare(args.url, args.reference_url, args.monitor)


if __name__ == "__main__":
    sys.exit(main())
