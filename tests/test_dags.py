"""The Airflow DAGs with real Airflow 3: parsing, and ``dag.test()`` runs on a SQLite store.

Airflow reads ``AIRFLOW_HOME`` when it is first imported, so this one module holds every
Airflow test: it shares one temporary home, whose metadata database is migrated once, and
imports Airflow only inside fixtures and tests. ``dag.test()`` runs each task in this
process, the way a worker would, against the monitor files and store set up here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from atalaia import demo_data, jobs, store
from atalaia.cli import app
from atalaia.config import Monitor, as_utc, load_monitor
from atalaia.metrics import textfile_path
from atalaia.settings import Settings, connection_url
from storage.batches import find_batch
from storage.engine import transaction
from storage.events import events_overlapping
from storage.models import BatchRow, ModelRow, RunRow
from storage.scores import read_scores
from tests.conftest import REPO, write_monitor

DAGS = REPO / "dags"
DAY = timedelta(days=1)
START = demo_data.START
SCORED_DAYS = range(7, 13)
SHIFTED_FROM = 10  # from this day on every host's memory is 5 points up: drift
# The demo's monitor, with two partitions of its six hosts and a short retraining window.
DEMO_LIKE = (REPO / "monitors" / "demo.yaml").read_text().replace("name: demo\n", "") + (
    "scoring:\n  partition_entities: 4\nretraining:\n  intervals: 3\n"
)


def interval(n: int) -> tuple[Any, Any]:
    return START + n * DAY, START + (n + 1) * DAY


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary AIRFLOW_HOME with a migrated metadata database; DAGs from ``dags/``."""
    if "airflow" in sys.modules:
        pytest.fail("Airflow was imported before tests/test_dags.py could set AIRFLOW_HOME")
    home = tmp_path_factory.mktemp("airflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_HOME", str(home))
        patch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
        patch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        migrate = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True
        )
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        yield home


def dag_bag(monitors: Path, patch: pytest.MonkeyPatch) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    patch.setenv("ATALAIA_MONITORS_DIR", str(monitors))
    return DagBag(dag_folder=DAGS)


def test_every_shipped_monitor_gets_a_score_and_a_retrain_dag(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import Asset, AssetOrTimeSchedule, CronDataIntervalTimetable

    bag = dag_bag(REPO / "monitors", monkeypatch)
    assert bag.import_errors == {}
    names = [load_monitor(path).name for path in sorted((REPO / "monitors").glob("*.yaml"))]
    assert sorted(bag.dag_ids) == sorted(
        f"atalaia__{name}__{kind}" for name in names for kind in ("score", "retrain")
    )
    for name in names:
        score = bag.dags[f"atalaia__{name}__score"]
        retrain = bag.dags[f"atalaia__{name}__retrain"]
        assert set(score.tags) == {"atalaia", name, "score"}
        assert set(retrain.tags) == {"atalaia", name, "retrain"}
        assert isinstance(score.timetable, CronDataIntervalTimetable)
        assert score.catchup and not retrain.catchup
        assert score.max_active_runs == retrain.max_active_runs == 1
        assert [t.task_id for t in score.topological_sort()] == [
            "batch_interval",
            "wait_for_data",
            "ingest",
            "plan",
            "score",
            "events",
            "check_drift",
            "request_retraining",
        ]
        drift = Asset(name=f"atalaia__{name}__drift", uri=f"atalaia://{name}/drift")
        assert score.task_dict["request_retraining"].outlets == [drift]
        assert isinstance(retrain.timetable, AssetOrTimeSchedule)
        assert drift in retrain.timetable.asset_condition.objects
        # Finding the interval fails at once; waiting for data is the sensor's own retry.
        for task_id in ("batch_interval", "wait_for_data"):
            assert score.task_dict[task_id].retries == 0
        assert score.task_dict["wait_for_data"].mode == "reschedule"
        retried = [t for t in score.tasks if t.task_id not in ("batch_interval", "wait_for_data")]
        for task in [*retried, *retrain.tasks]:
            assert task.retries == 3 and task.retry_exponential_backoff == 2.0
            assert task.execution_timeout is not None
        assert score.task_dict["score"].execution_timeout == timedelta(hours=2)
        assert score.task_dict["events"].max_active_tis_per_dag == 1


def test_the_demo_monitor_stops_scheduling_at_the_end_of_its_data(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bag = dag_bag(REPO / "monitors", monkeypatch)
    score, retrain = bag.dags["atalaia__demo__score"], bag.dags["atalaia__demo__retrain"]
    end = demo_data.START + demo_data.DAYS * DAY
    assert load_monitor(REPO / "monitors" / "demo.yaml").schedule.end == end
    # Airflow still schedules an interval that starts at its end date: the last one here
    # is the sample data's last day.
    assert score.end_date == end - timedelta(microseconds=1)
    assert retrain.end_date is None  # retraining keeps its schedule and the drift Asset
    assert score.start_date == demo_data.START + demo_data.BASELINE_DAYS * DAY


def test_a_broken_monitor_file_is_one_failing_dag_and_the_others_load(
    airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "monitors"
    write_monitor(folder, "good", DEMO_LIKE)
    write_monitor(folder, "broken", DEMO_LIKE.replace("features:", "columns:"))
    (folder / "other.yaml").write_text(f"name: good\n{DEMO_LIKE}")  # a second "good"
    write_monitor(folder, "hourly", DEMO_LIKE.replace('score: "@daily"', 'score: "hourly"'))
    ended = DEMO_LIKE.replace("end: 2026-01-19T00:00:00Z", "end: 2026-01-10T00:00:00Z")
    write_monitor(folder, "ended", ended)

    bag = dag_bag(folder, monkeypatch)

    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == [
        "atalaia__broken__invalid",
        "atalaia__ended__invalid",
        "atalaia__good__retrain",
        "atalaia__good__score",
        "atalaia__hourly__invalid",
        "atalaia__other__invalid",
    ]
    broken = bag.dags["atalaia__broken__invalid"]
    assert broken.description.startswith(f"{folder / 'broken.yaml'}: columns: unknown setting;")
    assert "monitor 'good' is already defined in" in bag.dags["atalaia__other__invalid"].description
    assert bag.dags["atalaia__ended__invalid"].description == (
        "monitor ended: schedule.end: 2026-01-10 00:00:00+00:00 is not after the first "
        "interval's start 2026-01-12 00:00:00+00:00"
    )
    hourly = bag.dags["atalaia__hourly__invalid"].description
    assert hourly.startswith(f"{folder / 'hourly.yaml'}: AirflowTimetableInvalid: Exactly 5, 6")
    run = broken.test()
    assert run.state == "failed"


def test_parsing_the_dag_file_imports_nothing_heavy(airflow_home: Path) -> None:
    probe = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "print(sorted(m for m in ('pandas', 'torch', 'sklearn', 'scipy', 'detectors', "
        "'storage', 'atalaia.jobs') if m in sys.modules))"
    )
    parsed = subprocess.run(
        [sys.executable, "-c", probe, str(DAGS / "atalaia_dags.py")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "ATALAIA_MONITORS_DIR": str(REPO / "monitors")},
    )
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    assert parsed.stdout.strip().splitlines()[-1] == "[]"


def test_the_store_connection_becomes_a_sqlalchemy_url(airflow_home: Path) -> None:
    url = connection_url("postgres", "db.example", 5432, "atalaia", "p@ss/w", "store")
    assert url == "postgresql+psycopg://atalaia:p%40ss%2Fw@db.example:5432/store"
    assert connection_url("sqlite", "/data/a.db", None, None, None, None) == "sqlite:////data/a.db"
    assert connection_url("sqlite", "", None, None, None, "/data/a.db") == "sqlite:////data/a.db"


@dataclass
class Demo:
    """The demo-like monitor under Airflow: its monitor, settings and the score DAG's runs."""

    monitor: Monitor
    settings: Settings
    runs: dict[int, Any]
    bag: Any


@pytest.fixture(scope="module")
def demo(airflow_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The score DAG run with ``dag.test()`` over days 7 to 12 of the demo data.

    Its store is the ``atalaia_store`` connection (ATALAIA_STORE_URL points elsewhere), its
    champion trained on days 0-6 beforehand, as docs/airflow.md's set-up does.
    """
    home = tmp_path_factory.mktemp("demo")
    store_url = f"sqlite:///{home / 'store.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATALAIA_HOME", str(home))
        patch.setenv("ATALAIA_STORE_URL", f"sqlite:///{home / 'not-this-one.db'}")
        patch.setenv(
            "AIRFLOW_CONN_ATALAIA_STORE", f'{{"conn_type": "sqlite", "host": "{home}/store.db"}}'
        )
        for name in ("LANDING_DIR", "MODELS_DIR", "METRICS_DIR", "PUSHGATEWAY_URL"):
            patch.delenv(f"ATALAIA_{name}", raising=False)
        monitor = load_monitor(write_monitor(home / "monitors", "demo", DEMO_LIKE))
        settings = Settings(**{**Settings.from_env().__dict__, "store_url": store_url})
        for path in demo_data.write_files(home / "sources" / "demo"):
            frame = pd.read_csv(path, dtype=str)
            if pd.Timestamp(frame["timestamp"].iloc[0]) >= pd.Timestamp(interval(SHIFTED_FROM)[0]):
                frame["memory"] = frame["memory"].astype(float) + 5
                frame.to_csv(path, index=False)
        store.upgrade(store_url)
        for n in range(7):
            jobs.ingest(monitor, *interval(n), settings=settings)
        jobs.train(monitor, settings=settings)

        bag = dag_bag(home / "monitors", patch)
        dag = bag.dags["atalaia__demo__score"]
        for task in dag.tasks:  # a failure here should fail the test now, not after backoff
            task.retries = 0
        runs = {n: dag.test(logical_date=interval(n)[0]) for n in SCORED_DAYS}
        yield Demo(monitor, settings, runs, bag)
        store.engine(store_url).dispose()
        store.engine.cache_clear()


def summary(run: Any, task_id: str, map_index: int = -1) -> Any:
    """What a task of ``run`` returned (its XCom)."""
    from airflow import settings as airflow_settings
    from airflow.models.xcom import XComModel

    with airflow_settings.Session() as session:
        row = session.scalar(
            XComModel.get_many(
                run_id=run.run_id,
                key="return_value",
                task_ids=task_id,
                dag_ids=run.dag_id,
                map_indexes=map_index,
            )
        )
        return None if row is None else XComModel.deserialize_value(row)


def task_states(run: Any) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for instance in sorted(run.get_task_instances(), key=lambda ti: (ti.task_id, ti.map_index)):
        states.setdefault(instance.task_id, []).append(str(instance.state))
    return states


def test_the_score_dag_scores_each_interval_once_by_partition(demo: Demo) -> None:
    for n, run in demo.runs.items():
        # A manual run with a logical date scores the interval that holds it, as a scheduled
        # or backfill run of that date does, not the interval before it that Airflow shows.
        assert (run.data_interval_start, run.data_interval_end) == interval(n - 1)
        scored = summary(run, "batch_interval")
        assert (as_utc(scored["start"]), as_utc(scored["end"])) == interval(n)
        assert run.state == "success", task_states(run)
        assert task_states(run)["score"] == ["success", "success"]
    with transaction(store.engine(demo.settings.store_url)) as session:
        scores = read_scores(session, 1, interval(7)[0], interval(12)[1])
        runs = session.execute(
            select(RunRow.job, RunRow.status, RunRow.interval_start, RunRow.rows, RunRow.message)
            .where(RunRow.interval_end > interval(7)[0])
            .order_by(RunRow.id)
        ).all()
        events = events_overlapping(session, 1, *interval(8))
    ingested = {run.interval_start: run.rows for run in runs if run.job == "ingest"}
    per_day = scores.groupby(scores["ts"].dt.floor("D")).size()
    assert {stamp.to_pydatetime(): rows for stamp, rows in per_day.items()} == ingested
    assert len(ingested) == len(SCORED_DAYS)
    assert scores["model_id"].unique().tolist() == [1]
    # Per interval: ingest, two partitions of three hosts, the batch's score run, drift.
    jobs_per_day = [(job, status) for job, status, *_ in runs]
    assert jobs_per_day == [
        ("ingest", "success"),
        ("score_partition", "success"),
        ("score_partition", "success"),
        ("score", "success"),
        ("drift", "success"),
    ] * len(SCORED_DAYS)
    partitions = [rows for job, _, _, rows, _ in runs if job == "score_partition"]
    assert partitions[:2] == [3 * 288, 3 * 288]
    # The day-8 spike on host-3, whose rows the two partitions split between them only by host.
    spike = [e for e in events if e.entity == "host-3" and e.start_ts.hour == 14]
    assert len(spike) == 1 and spike[0].anomalies >= 5
    # Every task returns what it did, as the store recorded it (day 9: two rows quarantined).
    ingest_run, first, second, batch_run, drift_run = runs[10:15]  # day 9's, in job order
    assert ingest_run.interval_start == interval(9)[0]
    with transaction(store.engine(demo.settings.store_url)) as session:
        batch = session.scalars(
            select(BatchRow).where(BatchRow.interval_start == interval(9)[0])
        ).one()
    day = demo.runs[9]
    assert summary(day, "wait_for_data") == {"rows": batch.row_count + 2}
    assert summary(day, "ingest") == {
        "batch_id": batch.id,
        "rows": batch.row_count,
        "quarantined": 2,
    }
    assert summary(day, "plan") == [
        {"index": 0, "count": 2, "model_version": 1},
        {"index": 1, "count": 2, "model_version": 1},
    ]
    shares = [summary(day, "score", index) for index in (0, 1)]
    recorded = {run.message: run.rows for run in (first, second)}
    assert {
        f"partition {share['partition'] + 1} of 2 (version {share['model_version']})": share["rows"]
        for share in shares
    } == recorded
    scored = summary(day, "events")
    assert scored["rows"] == batch_run.rows == batch.row_count
    assert scored["anomalies"] == sum(p["anomalies"] for p in shares)
    assert scored["model_version"] == 1
    assert summary(demo.runs[8], "events")["events"] >= len(spike)  # the day of the spike
    drift = summary(day, "check_drift")
    assert drift["limit"] == demo.monitor.drift.max_distance
    assert drift["reason"] == drift_run.message
    assert drift["detected"] == ("above the limit" in drift_run.message)
    score_metrics = textfile_path(demo.settings, "demo", "score").read_text()
    last = ingested[interval(12)[0]]
    assert f'atalaia_batch_rows{{job="score",monitor="demo"}} {float(last)}' in score_metrics


def test_drift_updates_the_asset_that_triggers_retraining(demo: Demo) -> None:
    from airflow import settings as airflow_settings
    from airflow.models.asset import AssetEvent, AssetModel

    with transaction(store.engine(demo.settings.store_url)) as session:
        verdicts = dict(
            session.execute(
                select(RunRow.interval_end, RunRow.message).where(RunRow.job == "drift")
            ).all()
        )
    for n in (7, 8, 9):  # windows of normal days only
        assert "within the limit" in verdicts[interval(n)[1]]
        assert task_states(demo.runs[n])["request_retraining"] == ["skipped"]
    assert "above the limit" in verdicts[interval(12)[1]]  # three shifted days
    assert task_states(demo.runs[12])["request_retraining"] == ["success"]
    requested = sum(
        task_states(run)["request_retraining"] == ["success"] for run in demo.runs.values()
    )
    with airflow_settings.Session() as session:
        updates = session.scalar(
            select(func.count())
            .select_from(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "atalaia__demo__drift")
        )
    assert updates == requested


def test_running_an_interval_again_leaves_the_same_rows(demo: Demo) -> None:
    def stored() -> tuple[pd.DataFrame, list[tuple], int]:
        with transaction(store.engine(demo.settings.store_url)) as session:
            scores = read_scores(session, 1, *interval(8))
            events = [
                (e.entity, e.start_ts, e.end_ts, e.anomalies, e.peak_z)
                for e in events_overlapping(session, 1, *interval(8))
            ]
            runs = session.scalar(select(func.count()).select_from(RunRow))
        return scores, events, runs

    scores, events, runs = stored()
    again = demo.bag.dags["atalaia__demo__score"].test(logical_date=interval(8)[0])
    assert again.state == "success"
    scores_after, events_after, runs_after = stored()
    pd.testing.assert_frame_equal(scores, scores_after)
    assert events == events_after
    assert runs_after == runs + 5


def test_the_retrain_dag_promotes_a_better_candidate_and_a_rollback_restores(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = demo.bag.dags["atalaia__demo__retrain"]
    for task in dag.tasks:
        task.retries = 0
    run = dag.test()
    assert run.state == "success", task_states(run)
    with transaction(store.engine(demo.settings.store_url)) as session:
        models = {m.version: m for m in session.scalars(select(ModelRow))}
    candidate = models[2]
    # Learned from days 9-11 (two of them shifted), judged on day 12.
    assert (candidate.baseline_start, candidate.baseline_end) == (interval(9)[0], interval(11)[1])
    assert candidate.evaluation["holdout_start"] == interval(12)[0].isoformat()
    assert candidate.status == "champion", candidate.status_reason
    assert candidate.status_reason.startswith("better than version 1 by at least 25%")
    champion_alarms = candidate.evaluation["champion"]["false_alarms"]
    assert candidate.evaluation["candidate"]["false_alarms"] < champion_alarms
    assert models[1].status == "retired"
    assert summary(run, "retrain") == {
        "version": 2,
        "promoted": True,
        "champion_version": 2,
        "after_drift": False,
        "reason": candidate.status_reason,
    }

    # Retraining again on the same data, without drift, keeps the champion.
    again = dag.test()
    assert again.state == "success", task_states(again)
    kept = summary(again, "retrain")
    assert (kept["version"], kept["promoted"], kept["champion_version"]) == (3, False, 2)
    assert kept["reason"].startswith("kept version 2: not worse, but not better by 25%")

    monkeypatch.setenv("ATALAIA_STORE_URL", demo.settings.store_url)
    monkeypatch.setenv("ATALAIA_MONITORS_DIR", str(demo.settings.home / "monitors"))
    rolled = CliRunner().invoke(app, ["models", "rollback", "demo", "--reason", "test"])
    assert rolled.exit_code == 0, rolled.output
    with transaction(store.engine(demo.settings.store_url)) as session:
        statuses = dict(session.execute(select(ModelRow.version, ModelRow.status)).all())
    assert statuses == {1: "champion", 2: "retired", 3: "candidate"}


def printed(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """Everything logged or printed so far in this test (dag.test runs tasks in-process)."""
    captured = capfd.readouterr()
    return caplog.text + captured.out + captured.err


def test_an_interval_without_data_fails_once_after_its_deadline_and_waits_before_it(
    demo: Demo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    source = demo.settings.home / "sources" / "demo"
    last_day = source / f"metrics-{interval(13)[0]:%Y-%m-%d}.csv"
    aside = tmp_path / last_day.name
    last_day.rename(aside)
    try:
        # Day 13's rows were due by 06:00 the next day (schedule.max_data_delay 6h).
        run = demo.bag.dags["atalaia__demo__score"].test(logical_date=interval(13)[0])
    finally:
        aside.rename(last_day)
    assert run.state == "failed"
    states = task_states(run)
    assert states["batch_interval"] == ["success"]
    assert states["wait_for_data"] == ["failed"] and states["ingest"] == ["upstream_failed"]
    (waited,) = [ti for ti in run.get_task_instances() if ti.task_id == "wait_for_data"]
    assert waited.try_number == 1  # failed once, no retries
    assert (
        "monitor demo: no source rows in [2026-01-18 00:00:00+00:00, 2026-01-19 00:00:00+00:00) "
        "by 2026-01-19 06:00:00+00:00 (schedule.max_data_delay 6h after the interval's end)"
    ) in printed(caplog, capfd)
    with transaction(store.engine(demo.settings.store_url)) as session:
        assert find_batch(session, 1, *interval(13)) is None

    # A monitor that allows its data a year: the run waits, and scores once rows arrive.
    late = DEMO_LIKE.replace(
        '  retrain: "@weekly"\n', '  retrain: "@weekly"\n  max_data_delay: 400D\n'
    )
    assert "max_data_delay: 400D" in late
    bag = dag_bag(write_monitor(tmp_path / "monitors", "demo", late).parent, monkeypatch)
    dag = bag.dags["atalaia__demo__score"]
    for task in dag.tasks:
        task.retries = 0
    dag.task_dict["wait_for_data"].poke_interval = 1
    from airflow import settings as airflow_settings
    from airflow.models.taskreschedule import TaskReschedule

    def reschedules() -> int:
        with airflow_settings.Session() as session:
            return session.scalar(select(func.count()).select_from(TaskReschedule))

    def arrive_after_the_first_look(seen: int) -> None:
        """Bring the rows back once the sensor has looked and found none (however slowly
        a loaded machine gets there)."""
        deadline = time.monotonic() + 300
        while reschedules() == seen and time.monotonic() < deadline:
            time.sleep(0.2)
        aside.rename(last_day)

    last_day.rename(aside)
    arrival = threading.Thread(target=arrive_after_the_first_look, args=[reschedules()])
    arrival.start()
    try:
        waited_run = dag.test(logical_date=interval(13)[0])
    finally:
        arrival.join()
    assert waited_run.state == "success", task_states(waited_run)
    assert summary(waited_run, "wait_for_data") == {"rows": 6 * 288}
    assert summary(waited_run, "ingest")["rows"] == 6 * 288
    (sensor,) = [ti for ti in waited_run.get_task_instances() if ti.task_id == "wait_for_data"]

    with airflow_settings.Session() as session:
        rescheduled = session.scalar(
            select(func.count())
            .select_from(TaskReschedule)
            .where(TaskReschedule.ti_id == sensor.id)
        )
    assert rescheduled >= 1  # it looked, found nothing, and looked again
    assert (
        "monitor demo: no source rows in [2026-01-18 00:00:00+00:00, 2026-01-19 00:00:00+00:00) "
        "yet; looking again until 2027-02-23 00:00:00+00:00"
    ) in printed(caplog, capfd)


# dag.test() without a logical date clears every earlier run's task instances of the DAG,
# so the runs without one come last.
def test_a_run_without_a_logical_date_scores_the_last_complete_interval(
    demo: Demo, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    dag = demo.bag.dags["atalaia__demo__score"]
    run = dag.test(logical_date=None, run_after=interval(9)[1] + timedelta(hours=3))
    assert run.logical_date is None and run.data_interval_start is None
    assert run.state == "success", task_states(run)
    scored = summary(run, "batch_interval")
    assert (as_utc(scored["start"]), as_utc(scored["end"])) == interval(9)
    assert scored["why"].startswith("no logical date: the last complete interval before")

    # Triggered now, its last complete interval is long after the demo's schedule.end: it
    # fails at once, without retries, instead of failing on an empty batch and retrying.
    now = dag.test(logical_date=None)
    assert now.state == "failed"
    assert task_states(now)["batch_interval"] == ["failed"]
    assert task_states(now)["ingest"] == ["upstream_failed"]
    (first,) = [ti for ti in now.get_task_instances() if ti.task_id == "batch_interval"]
    assert first.try_number == 1
    yesterday = as_utc(now.run_after).replace(hour=0, minute=0, second=0, microsecond=0) - DAY
    output = printed(caplog, capfd)
    assert (
        f"would score [{yesterday}, {yesterday + DAY}) (no logical date: the last complete "
        "interval before"
    ) in output
    assert "which starts at or after schedule.end 2026-01-19 00:00:00+00:00" in output
