"""The demo's DAGs under a real Airflow scheduler, as an operator runs them; prints what happened.

Too slow for the test suite (every task is a process of its own), so it is a script whose
output docs/airflow.md records. In a temporary AIRFLOW_HOME it starts Airflow's api-server
(on 127.0.0.1, for the tasks' execution API), dag-processor and scheduler (LocalExecutor),
with a SQLite metadata database (or ``--metadata-url``, e.g. a PostgreSQL database), and
the repository's ``dags/`` and ``monitors/``. Then, as in docs/airflow.md's set-up, it lands the
demo's baseline week and trains its champion, and:

1. unpauses the demo's score and retrain DAGs: catch-up must end in success at the demo's
   ``schedule.end``, every interval scored once, no task retried;
2. triggers the score DAG with no logical date: it must fail at once, without retries;
3. backfills two days, first with Airflow's default reprocess behaviour (it skips both:
   they have runs, and records why), then with ``--reprocess-behavior completed`` (both
   scored again);
4. prints what the task logs of one run say.

Exit status 0 when every check holds. Run from the repository root with the project's venv:
``python docker/airflow-local-check.py`` (about 20 minutes on two busy cores).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCORE, RETRAIN = "atalaia__demo__score", "atalaia__demo__retrain"
DEMO_DAYS = [f"2026-01-{day}" for day in range(12, 19)]  # the scored week, to schedule.end
FINISHED = ("success", "failed")
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    """Print one check's outcome; remember failures for the exit status."""
    print(f"  [{'ok' if ok else 'FAILED'}] {what}", flush=True)
    if not ok:
        failures.append(what)


def run(env: dict[str, str], *args: str, ok: tuple[int, ...] = (0,)) -> str:
    """Run a command to completion; return its output (stdout and stderr)."""
    done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def wait(until: Callable[[], bool], what: str, timeout: float) -> None:
    began = time.monotonic()
    while not until():
        if time.monotonic() - began > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(5)
    print(f"  ({what}: {time.monotonic() - began:.0f} s)", flush=True)


class Metadata:
    """Read-only queries on Airflow's metadata database."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params))

    def runs(self, dag_id: str) -> list[Any]:
        return self.rows(
            "SELECT run_id, run_type, state, logical_date, data_interval_start, start_date, "
            "end_date FROM dag_run WHERE dag_id = :dag ORDER BY id",
            dag=dag_id,
        )

    def idle(self, dag_id: str) -> bool:
        return not any(run.state not in FINISHED for run in self.runs(dag_id))

    def tasks(self, dag_id: str, run_id: str) -> dict[str, tuple[str, int]]:
        found = self.rows(
            "SELECT task_id, map_index, state, try_number FROM task_instance "
            "WHERE dag_id = :dag AND run_id = :run",
            dag=dag_id,
            run=run_id,
        )
        return {
            f"{t.task_id}[{t.map_index}]" if t.map_index >= 0 else t.task_id: (
                t.state,
                t.try_number,
            )
            for t in found
        }

    def summary(self, dag_id: str, run_id: str, task_id: str) -> Any:
        found = self.rows(
            "SELECT value FROM xcom WHERE dag_id = :dag AND run_id = :run AND task_id = :task "
            "AND key = 'return_value' AND map_index = -1",
            dag=dag_id,
            run=run_id,
            task=task_id,
        )
        if not found:
            return None
        value = found[0].value
        return json.loads(value) if isinstance(value, str | bytes) else value


def score_runs(store_url: str) -> dict[str, int]:
    """Successful batch score runs in the store, per interval start day."""
    engine = create_engine(store_url)
    with engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT interval_start, count(*) FROM runs WHERE job = 'score' "
                "AND status = 'success' GROUP BY interval_start"
            )
        )
        counts = {str(start)[:10]: count for start, count in found}
    engine.dispose()
    return counts


def describe(metadata: Metadata, dag_id: str, run: Any) -> str:
    scored = metadata.summary(dag_id, run.run_id, "batch_interval") or {}
    tasks = metadata.tasks(dag_id, run.run_id)
    again = sorted(task for task, (_, tries) in tasks.items() if tries > 1)
    took = (run.end_date - run.start_date).total_seconds() if run.end_date else None
    return (
        f"{run.run_id}: {run.run_type}, {run.state}, logical date {run.logical_date}, "
        f"Airflow's data interval from {run.data_interval_start}, scored "
        f"{scored.get('start', '-')} .. {scored.get('end', '-')}, "
        f"{'unfinished' if took is None else f'{took:.0f} s'}"
        f"{', on a second try (retried or cleared): ' + ', '.join(again) if again else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata-url", help="Airflow's metadata DB (default: SQLite)")
    parser.add_argument("--port", type=int, default=32000, help="the api-server's port")
    parser.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="atalaia-airflow-check-"))
    metadata_url = args.metadata_url or f"sqlite:///{home}/airflow.db"
    store_url = f"sqlite:///{home}/store.db"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        # Airflow also opens an async engine; psycopg 3 serves both (asyncpg is not installed).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(args.port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{args.port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "ATALAIA_HOME": str(home / "atalaia"),
        "ATALAIA_STORE_URL": store_url,
        "ATALAIA_MONITORS_DIR": str(REPO / "monitors"),
        "PYTHONPATH": str(REPO),
    }
    for name in ("ATALAIA_LANDING_DIR", "ATALAIA_MODELS_DIR", "ATALAIA_PUSHGATEWAY_URL"):
        env.pop(name, None)
    airflow, atalaia = str(BIN / "airflow"), [str(BIN / "atalaia")]
    print(f"AIRFLOW_HOME {home}; metadata {metadata_url.split('@')[-1]}", flush=True)

    print("Set-up: the demo's data, its baseline week landed, its champion trained", flush=True)
    run(
        env,
        sys.executable,
        "-c",
        "import sys; from pathlib import Path; "
        "from atalaia import demo_data; demo_data.write_files(Path(sys.argv[1]))",
        str(home / "atalaia" / "sources" / "demo"),
    )
    run(env, *atalaia, "db", "upgrade")
    run(
        env,
        *atalaia,
        "ingest",
        "demo",
        "--start",
        "2026-01-05",
        "--end",
        "2026-01-12",
        "--every",
        "1D",
    )
    run(env, *atalaia, "train", "demo")
    run(env, airflow, "db", "migrate")

    servers = []
    for name, command in [
        ("api-server", [airflow, "api-server"]),
        ("dag-processor", [airflow, "dag-processor"]),
        ("scheduler", [airflow, "scheduler", "--skip-serve-logs"]),
    ]:
        log = (home / f"{name}.log").open("w")
        servers.append(
            subprocess.Popen(
                command, env=env, cwd=REPO, stdout=log, stderr=log, start_new_session=True
            )
        )
    metadata = Metadata(metadata_url)
    try:
        scenario(env, airflow, metadata, store_url, home)
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        metadata.engine.dispose()
        if not args.keep:
            import shutil

            shutil.rmtree(home, ignore_errors=True)
    print(f"\n{len(failures)} check(s) failed" if failures else "\nevery check held")
    raise SystemExit(1 if failures else 0)


def scenario(env: dict[str, str], airflow: str, metadata: Metadata, store_url: str, home: Path):
    serialized = "SELECT count(*) FROM serialized_dag WHERE dag_id IN (:score, :retrain)"

    def parsed() -> bool:
        try:
            return metadata.rows(serialized, score=SCORE, retrain=RETRAIN)[0][0] == 2
        except Exception:  # the tables may not be there yet
            return False

    wait(parsed, "the dag-processor parsed the demo's DAGs", 300)

    print("\n1. Unpausing the demo's DAGs: catch-up to schedule.end")
    unpaused = time.monotonic()
    for dag_id in (SCORE, RETRAIN):
        run(env, airflow, "dags", "unpause", dag_id)

    def caught_up() -> bool:
        runs = metadata.runs(SCORE)
        dates = {str(r.logical_date)[:10] for r in runs if r.state in FINISHED}
        return set(DEMO_DAYS) <= dates and metadata.idle(SCORE) and metadata.idle(RETRAIN)

    wait(caught_up, "catch-up", 3600)
    print(f"    catch-up took {time.monotonic() - unpaused:.0f} s")
    runs = metadata.runs(SCORE)
    for r in runs:
        print("   ", describe(metadata, SCORE, r))
    check(len(runs) == len(DEMO_DAYS), f"{len(runs)} score runs for the {len(DEMO_DAYS)} days")
    check(all(r.state == "success" for r in runs), "every score run succeeded")
    retried = [
        r.run_id for r in runs if any(t > 1 for _, t in metadata.tasks(SCORE, r.run_id).values())
    ]
    check(not retried, f"no task retried ({retried or 'none'})")
    check(
        score_runs(store_url) == {day: 1 for day in DEMO_DAYS},
        f"the store holds one batch score run per day: {score_runs(store_url)}",
    )
    next_run = metadata.rows("SELECT next_dagrun FROM dag WHERE dag_id = :dag", dag=SCORE)
    check(next_run[0][0] is None, f"nothing scheduled after the demo's schedule.end: {next_run}")
    retrains = metadata.runs(RETRAIN)
    for r in retrains:
        summary = metadata.summary(RETRAIN, r.run_id, "retrain")
        print("    retrain", r.run_id, r.run_type, r.state, summary)
    check(all(r.state == "success" for r in retrains), f"{len(retrains)} retrain run(s) succeeded")

    print("\n2. A manual run without a logical date")
    run(env, airflow, "dags", "trigger", SCORE)
    wait(lambda: metadata.idle(SCORE), "the run without a logical date", 600)
    (dateless,) = [r for r in metadata.runs(SCORE) if r.logical_date is None]
    print("   ", describe(metadata, SCORE, dateless))
    tasks = metadata.tasks(SCORE, dateless.run_id)
    check(dateless.state == "failed", "it failed")
    first = tasks["batch_interval"]
    check(first == ("failed", 1), f"at batch_interval, on its first try: {first}")
    logs = home / "logs" / f"dag_id={SCORE}" / f"run_id={dateless.run_id}"
    reason = [
        detail["exc_value"]
        for path in sorted(logs.glob("task_id=batch_interval/*.log"))
        for line in path.read_text().splitlines()
        if line.startswith("{")
        for detail in json.loads(line).get("error_detail", [])
        if "would score" in detail.get("exc_value", "")
    ]
    print("    its error:", reason[0] if reason else None)
    check(bool(reason), "its log says which interval it would score and why it does not")

    print("\n3. Backfilling 2026-01-13 and 2026-01-14")
    dates = ["--from-date", "2026-01-13", "--to-date", "2026-01-14"]
    backfill = [airflow, "backfill", "create", "--dag-id", SCORE, *dates]
    dry = run(env, *backfill, "--dry-run")
    print("    dry run:", " | ".join(dry.strip().splitlines()[-3:]))
    before = score_runs(store_url)

    def backfilled(number: int) -> Callable[[], bool]:
        done = "SELECT count(*) FROM backfill WHERE completed_at IS NOT NULL"
        return lambda: metadata.rows(done)[0][0] == number and metadata.idle(SCORE)

    run(env, *backfill)
    wait(backfilled(1), "the backfill with the default reprocess behaviour", 600)
    run(env, *backfill, "--reprocess-behavior", "completed")
    wait(backfilled(2), "the backfill with --reprocess-behavior completed", 1800)
    reasons = metadata.rows(
        "SELECT backfill_id, logical_date, dag_run_id, exception_reason FROM backfill_dag_run "
        "ORDER BY id"
    )
    for reason in reasons:
        print("    backfill_dag_run:", tuple(reason))
    check(
        [(r.backfill_id, r.exception_reason) for r in reasons]
        == [(1, "already exists"), (1, "already exists"), (2, None), (2, None)],
        "by default Airflow skips both dates and records why (already exists); with "
        "--reprocess-behavior completed it runs both",
    )
    after = score_runs(store_url)
    again = ("2026-01-13", "2026-01-14")
    check(
        all(after[day] == before[day] + (day in again) for day in DEMO_DAYS),
        f"--reprocess-behavior completed scored both days again: {after}",
    )
    for r in metadata.runs(SCORE):
        if r.run_type == "backfill":
            print("   ", describe(metadata, SCORE, r))
            check(r.state == "success", f"backfill run {r.run_id} succeeded")

    print("\n4. What the task logs say (2026-01-15's run)")
    lines = []
    logs = home / "logs" / f"dag_id={SCORE}"
    paths = logs.glob("run_id=scheduled__2026-01-16*/**/*.log")
    for path in sorted(paths, key=lambda path: path.stat().st_mtime):
        for line in path.read_text().splitlines():
            if "monitor demo:" in line:
                lines.append(json.loads(line)["event"] if line.startswith("{") else line)
    for line in lines:
        print("   ", line[:300])
    check(
        any("landed" in line for line in lines) and any("drift" in line for line in lines),
        "the task logs say what each task did",
    )


if __name__ == "__main__":
    main()
