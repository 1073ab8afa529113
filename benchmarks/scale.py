"""The pipeline at scale, through its own commands, beside the floors measured in the same run.

    .venv/bin/python -m benchmarks.scale [--backends sqlite,postgresql] [--rows 250000,1000000]
        [--daily 10] [--series] [--big 10000000] [--threads 1]

Scenarios (each in a fresh ``ATALAIA_HOME`` and a fresh store):

- **tabular**: a files monitor with 20 numeric features and 100 entities at a one-minute
  step, gmm on single rows; 200,000 baseline rows, then one batch of each ``--rows`` size.
  The source is Parquet files of 100,000 rows each (1,000 steps of every entity).
  ``atalaia db upgrade``, ``ingest`` (baseline and batch), ``train`` and ``score`` run as
  subprocesses under ``/usr/bin/time -v`` (wall seconds and peak RSS).
- **daily**: the same monitor, ``--daily`` batches of 100,000 rows ingested and scored with
  ``--every 1000min`` (one interval per source file).
- **series**: 1,000 entities x 1,440 one-minute steps x 4 features, window 32, for ``ar`` and
  ``gmm``: ``train`` on one day, ``score`` the next.
- **big** (``--big N``): N rows after the baseline, ingested and scored on PostgreSQL in
  1,000,000-row intervals (``--every``).

Floors, measured in the same run on the same data: reading the batch's Parquet files with
pyarrow; the saved model's ``decision_function`` on the batch's features; writing as many
score rows into a table with the scores' key, by ``executemany`` upsert in one transaction on
SQLite and by ``COPY`` on PostgreSQL. The run's floor is their sum.

PostgreSQL runs use ``ATALAIA_TEST_POSTGRES_URL``'s server: each scenario creates and drops its
own database there. Results go to ``benchmarks/results/scale.md`` with the host's CPU model and
widest vector instructions beside every number.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import RESULTS_DIR, cpu_model, log, provenance

FEATURES = [f"f{i:02d}" for i in range(20)]
ENTITIES = 100
FILE_ROWS = 100_000
BASELINE_ROWS = 200_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SERIES_ENTITIES = 1_000
SERIES_STEPS = 1_440
SERIES_FEATURES = ["cpu", "memory", "latency", "errors"]
# baseline.max_train_rows of the many-series monitor: 1,440 x 1,000 windows of 128 values
# are 1.5 GB; a uniform sample of this many windows is fitted instead (calibration scores
# every held-out window).
SERIES_TRAIN_ROWS = 200_000
BIG_INTERVAL_ROWS = 1_000_000
# Targets of issue 23, recorded beside the measurements.
MAX_FLOOR_RATIO = 2.0
MAX_RSS_GROWTH = 0.10
MAX_SERIES_SECONDS = 30.0
MAX_SERIES_RSS_MB = 1024.0


@dataclass
class Measured:
    """One command's wall time and peak resident memory."""

    seconds: float
    peak_mb: float
    output: str = ""


@dataclass
class Row:
    """One line of a results table."""

    scenario: str
    backend: str
    stage: str
    rows: int
    seconds: float
    peak_mb: float | None = None
    floor_seconds: float | None = None
    notes: str = ""
    extra: dict = field(default_factory=dict)


def run_command(args: list[str], env: dict[str, str]) -> Measured:
    """Run ``atalaia ARGS`` under ``/usr/bin/time -v``; its wall time and peak RSS."""
    command = ["/usr/bin/time", "-v", str(Path(sys.executable).parent / "atalaia"), *args]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"atalaia {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    measured = Measured(seconds, int(peak.group(1)) / 1024 if peak else float("nan"), done.stdout)
    log(f"atalaia {' '.join(args)}: {measured.seconds:.2f} s, {measured.peak_mb:.0f} MB")
    return measured


# -- data ------------------------------------------------------------------------------


def tabular_rows(first_step: int, steps: int, seed: int) -> pd.DataFrame:
    """``steps`` one-minute steps of every entity from ``T0 + first_step`` minutes: 20
    correlated features with an offset per entity and 0.5% of rows shifted."""
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(0).normal(size=(4, len(FEATURES)))
    offsets = np.random.default_rng(1).normal(scale=0.5, size=(ENTITIES, len(FEATURES)))
    n = steps * ENTITIES
    values = rng.normal(size=(n, 4)) @ mixing + 0.3 * rng.normal(size=(n, len(FEATURES)))
    entity = np.tile(np.arange(ENTITIES), steps)
    values += offsets[entity]
    shifted = rng.random(n) < 0.005
    values[shifted] += rng.normal(scale=4.0, size=(shifted.sum(), len(FEATURES)))
    stamps = pd.date_range(T0 + timedelta(minutes=first_step), periods=steps, freq="1min")
    frame = pd.DataFrame(values, columns=FEATURES)
    frame.insert(0, "host", [f"host-{e:03d}" for e in entity])
    frame.insert(0, "timestamp", np.repeat(stamps.to_numpy(), ENTITIES))
    return frame


def write_tabular_source(folder: Path, total_rows: int) -> list[Path]:
    """Parquet files of FILE_ROWS rows each, in time order, from T0."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    steps_per_file = FILE_ROWS // ENTITIES
    for index in range(int(np.ceil(total_rows / FILE_ROWS))):
        steps = min(steps_per_file, (total_rows - index * FILE_ROWS) // ENTITIES)
        frame = tabular_rows(index * steps_per_file, steps, seed=100 + index)
        path = folder / f"part-{index:05d}.parquet"
        frame.to_parquet(path, index=False)
        paths.append(path)
    return paths


def write_series_source(folder: Path, days: int) -> None:
    """``days`` days of 1,000 entities x 4 features at one-minute steps, one file per day: a
    daily cycle, noise, and a few level shifts."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    phase = rng.uniform(0, 2 * np.pi, size=(SERIES_ENTITIES, len(SERIES_FEATURES)))
    for day in range(days):
        t = np.arange(day * SERIES_STEPS, (day + 1) * SERIES_STEPS)
        cycle = np.sin(2 * np.pi * t[None, :, None] / SERIES_STEPS + phase[:, None, :])
        noise = rng.normal(scale=0.2, size=(SERIES_ENTITIES, SERIES_STEPS, len(SERIES_FEATURES)))
        values = cycle + noise
        if day:
            hit = rng.choice(SERIES_ENTITIES, 20, replace=False)
            values[hit, 600:630, :] += 3.0
        stamps = T0 + pd.to_timedelta(t, unit="min")
        frame = pd.DataFrame(
            values.reshape(-1, len(SERIES_FEATURES)), columns=SERIES_FEATURES
        ).assign(
            timestamp=np.tile(stamps.to_numpy(), SERIES_ENTITIES),
            host=np.repeat([f"host-{e:04d}" for e in range(SERIES_ENTITIES)], SERIES_STEPS),
        )
        frame.to_parquet(folder / f"day-{day}.parquet", index=False)


def monitor_yaml(
    path: Path, name: str, source: Path, features: list[str], detector: str, extra: str = ""
) -> None:
    window = 32 if features == SERIES_FEATURES else 1
    baseline_end = T0 + (
        timedelta(days=1) if window > 1 else timedelta(minutes=BASELINE_ROWS // ENTITIES)
    )
    text = f"""name: {name}
source:
  kind: files
  path: {source}/*.parquet
timestamp: timestamp
entities: [host]
features: [{", ".join(features)}]
frequency: 1min
detector:
  kind: {detector}
  window: {window}
baseline:
  start: {T0.isoformat()}
  end: {baseline_end.isoformat()}
{extra}"""
    path.write_text(text)


# -- stores ----------------------------------------------------------------------------


class Store:
    """A fresh store for one scenario: a SQLite file, or a new PostgreSQL database."""

    def __init__(self, backend: str, home: Path, name: str) -> None:
        self.backend = backend
        self.name = name
        if backend == "sqlite":
            self.url = f"sqlite:///{home / 'atalaia.db'}"
        else:
            server = os.environ["ATALAIA_TEST_POSTGRES_URL"].rsplit("/", 1)[0]
            self._admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
            self.url = f"{server}/{name}"

    def _admin(self, *statements: str) -> None:
        import psycopg

        server = os.environ["ATALAIA_TEST_POSTGRES_URL"].replace("+psycopg", "")
        with psycopg.connect(server, autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)

    def drop(self) -> None:
        if self.backend == "postgresql":
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}"')


def environment(home: Path, store: Store, threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATALAIA_")}
    root = str(Path(__file__).resolve().parents[1])
    env.update(
        PYTHONPATH=root,
        ATALAIA_HOME=str(home),
        ATALAIA_STORE_URL=store.url,
        ATALAIA_METRICS_DIR=str(home / "metrics"),
    )
    if threads:
        env["ATALAIA_BLAS_THREADS"] = str(threads)
    return env


# -- floors ----------------------------------------------------------------------------


def floor_read(paths: list[Path]) -> float:
    began = time.perf_counter()
    for path in paths:
        pq.read_table(path)
    return time.perf_counter() - began


def floor_decision(home: Path, monitor: str, paths: list[Path]) -> float:
    """The saved champion's ``decision_function`` on the batch's features (read beforehand)."""
    import detectors

    folder = sorted((home / "models" / monitor).iterdir())[-1]
    detector = detectors.load(folder)
    X = pd.concat([pd.read_parquet(p, columns=FEATURES) for p in paths]).to_numpy()
    began = time.perf_counter()
    detector.decision_function(X)
    return time.perf_counter() - began


def score_columns(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    entity = np.tile([f"host-{e:03d}" for e in range(ENTITIES)], n // ENTITIES + 1)[:n]
    minutes = np.repeat(np.arange(n // ENTITIES + 1), ENTITIES)[:n]
    stamps = np.datetime64(T0.replace(tzinfo=None), "us") + minutes.astype("timedelta64[m]")
    return {
        "entity": entity,
        "ts": stamps,
        "raw_score": rng.normal(size=n),
        "p_value": rng.random(n),
        "z": rng.normal(size=n),
        "is_anomaly": rng.random(n) < 0.01,
    }


SCORE_TABLE = (
    "CREATE TABLE floor_scores (monitor_id INTEGER, entity VARCHAR(255), ts {ts}, "
    "model_id INTEGER, batch_id INTEGER, raw_score FLOAT, p_value FLOAT, z FLOAT, "
    "is_anomaly BOOLEAN, top_features {json}, PRIMARY KEY (monitor_id, entity, ts, model_id))"
)


def floor_write_sqlite(n: int) -> float:
    """executemany upsert of n score rows on the (monitor, entity, ts, model) key."""
    columns = score_columns(n)
    with tempfile.TemporaryDirectory() as folder:
        connection = sqlite3.connect(Path(folder) / "floor.db")
        connection.execute(SCORE_TABLE.format(ts="DATETIME", json="JSON"))
        began = time.perf_counter()
        stamps = np.datetime_as_string(columns["ts"], unit="us")
        rows = zip(
            [1] * n,
            columns["entity"].tolist(),
            np.char.replace(stamps, "T", " ").tolist(),
            [1] * n,
            [1] * n,
            columns["raw_score"].tolist(),
            columns["p_value"].tolist(),
            columns["z"].tolist(),
            columns["is_anomaly"].tolist(),
            [None] * n,
            strict=True,
        )
        connection.executemany(
            "INSERT INTO floor_scores VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT "
            "(monitor_id, entity, ts, model_id) DO UPDATE SET raw_score = excluded.raw_score",
            rows,
        )
        connection.commit()
        seconds = time.perf_counter() - began
        connection.close()
    return seconds


def floor_write_postgres(n: int, url: str) -> float:
    """COPY of n score rows into a table with the scores' key."""
    import psycopg

    columns = score_columns(n)
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        connection.execute(SCORE_TABLE.format(ts="TIMESTAMPTZ", json="JSONB"))
        began = time.perf_counter()
        table = pa.table(
            {
                "monitor_id": pa.array(np.ones(n, dtype=np.int32)),
                "entity": columns["entity"],
                "ts": pa.array(columns["ts"]).cast(pa.timestamp("us", "UTC")),
                "model_id": pa.array(np.ones(n, dtype=np.int32)),
                "batch_id": pa.array(np.ones(n, dtype=np.int32)),
                "raw_score": columns["raw_score"],
                "p_value": columns["p_value"],
                "z": columns["z"],
                "is_anomaly": columns["is_anomaly"],
                "top_features": pa.nulls(n, pa.string()),
            }
        )
        import pyarrow.csv as pcsv

        sink = pa.BufferOutputStream()
        pcsv.write_csv(table, sink, pcsv.WriteOptions(include_header=False))
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY floor_scores FROM STDIN (FORMAT csv)") as copy,
        ):
            copy.write(sink.getvalue().to_pybytes())
        connection.commit()
        seconds = time.perf_counter() - began
        connection.execute("DROP TABLE floor_scores")
        connection.commit()
    return seconds


# -- scenarios -------------------------------------------------------------------------


def ingest_train_and_score(
    monitor: Path, env: dict[str, str], base_end: int, end: int, every: str
) -> tuple[Measured, Measured]:
    """Through the commands: upgrade the store, ingest and train on steps ``0..base_end``,
    then ingest and score ``base_end..end`` in intervals of ``every``; the measured ingest
    and score of the second part."""
    run_command(["db", "upgrade"], env)
    run_command(["ingest", str(monitor), "--start", _stamp(0), "--end", _stamp(base_end)], env)
    run_command(["train", str(monitor)], env)
    interval = ["--start", _stamp(base_end), "--end", _stamp(end), "--every", every]
    ingest = run_command(["ingest", str(monitor), *interval], env)
    return ingest, run_command(["score", str(monitor), *interval], env)


def _stamp(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def tabular(backend: str, batch_rows: int, work: Path, threads: int) -> list[Row]:
    """Baseline, then one batch of ``batch_rows`` rows: ingest, train, score, and the floors."""
    home = work / f"tabular-{backend}-{batch_rows}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    source = work / f"source-tabular-{BASELINE_ROWS + batch_rows}"
    if not source.exists():
        write_tabular_source(source, BASELINE_ROWS + batch_rows)
    paths = sorted(source.glob("*.parquet"))
    batch_paths = paths[BASELINE_ROWS // FILE_ROWS :]
    monitor = home / "scale.yaml"
    monitor_yaml(monitor, "scale", source, FEATURES, "gmm")
    store = Store(backend, home, f"atalaia_scale_{os.getpid()}")
    env = environment(home, store, threads)
    base_end = BASELINE_ROWS // ENTITIES
    batch_end = base_end + batch_rows // ENTITIES
    rows = []
    label = f"tabular {batch_rows:,}"
    try:
        run_command(["db", "upgrade"], env)
        ingest_base = run_command(
            ["ingest", str(monitor), "--start", _stamp(0), "--end", _stamp(base_end)], env
        )
        rows.append(Row(label, backend, "ingest baseline", BASELINE_ROWS, *_m(ingest_base)))
        ingest = run_command(
            ["ingest", str(monitor), "--start", _stamp(base_end), "--end", _stamp(batch_end)],
            env,
        )
        train = run_command(["train", str(monitor)], env)
        rows.append(Row(label, backend, "train (gmm)", BASELINE_ROWS, *_m(train)))
        scored = run_command(
            ["score", str(monitor), "--start", _stamp(base_end), "--end", _stamp(batch_end)],
            env,
        )
        read = floor_read(batch_paths)
        decision = floor_decision(home, "scale", batch_paths)
        write = (
            floor_write_sqlite(batch_rows)
            if backend == "sqlite"
            else floor_write_postgres(batch_rows, store.url)
        )
        floor = read + decision + write
        rows.append(
            Row(
                label,
                backend,
                "ingest batch",
                batch_rows,
                *_m(ingest),
                floor_seconds=read,
                notes="floor: reading the batch's Parquet files",
            )
        )
        rows.append(
            Row(
                label,
                backend,
                "score (gmm)",
                batch_rows,
                *_m(scored),
                floor_seconds=floor,
                notes=f"floor = read {read:.2f} s + decision_function {decision:.2f} s "
                f"+ write {write:.2f} s",
            )
        )
        startup = run_command(["--help"], env)
        rows.append(Row(label, backend, "atalaia --help", 0, *_m(startup)))
        step = ["--start", _stamp(batch_end - 1), "--end", _stamp(batch_end)]
        run_command(["ingest", str(monitor), *step], env)
        one_step = run_command(["score", str(monitor), *step], env)
        rows.append(Row(label, backend, "score one step (start-up)", ENTITIES, *_m(one_step)))
    finally:
        store.drop()
    return rows


def daily(backend: str, batches: int, work: Path, threads: int) -> list[Row]:
    """Ten daily batches of 100,000 rows, ingested and scored with ``--every``."""
    home = work / f"daily-{backend}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    total = BASELINE_ROWS + batches * FILE_ROWS
    source = work / f"source-tabular-{total}"
    if not source.exists():
        write_tabular_source(source, total)
    monitor = home / "scale.yaml"
    monitor_yaml(monitor, "scale", source, FEATURES, "gmm")
    store = Store(backend, home, f"atalaia_scale_{os.getpid()}")
    env = environment(home, store, threads)
    base_end = BASELINE_ROWS // ENTITIES
    end = total // ENTITIES
    every = f"{FILE_ROWS // ENTITIES}min"
    label = f"daily {batches} x 100,000"
    try:
        ingest, scored = ingest_train_and_score(monitor, env, base_end, end, every)
        read = floor_read(sorted(source.glob("*.parquet"))[BASELINE_ROWS // FILE_ROWS :])
        return [
            Row(label, backend, "ingest --every", total - BASELINE_ROWS, *_m(ingest), read),
            Row(label, backend, "score --every (gmm)", total - BASELINE_ROWS, *_m(scored)),
        ]
    finally:
        store.drop()


def series(
    backend: str, detector: str, work: Path, threads: int, online: bool = False
) -> list[Row]:
    """1,000 entities x 1,440 steps x 4 features, window 32: train on a day, score the next
    (with ``online``, the score learns the day online: ``baseline.adapt.online``)."""
    home = work / f"series-{backend}-{detector}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    source = work / "source-series"
    if not source.exists():
        write_series_source(source, 2)
    monitor = home / "series.yaml"
    monitor_yaml(
        monitor,
        "series",
        source,
        SERIES_FEATURES,
        detector,
        f"  max_train_rows: {SERIES_TRAIN_ROWS}\n"
        + ("  adapt:\n    online: true\n" if online else ""),
    )
    store = Store(backend, home, f"atalaia_scale_{os.getpid()}")
    env = environment(home, store, threads)
    day = 24 * 60
    label = "series 1,000 x 1,440 x 4, window 32" + (", adapt.online" if online else "")
    rows_per_day = SERIES_ENTITIES * SERIES_STEPS
    try:
        run_command(["db", "upgrade"], env)
        run_command(
            [
                "ingest",
                str(monitor),
                "--start",
                _stamp(0),
                "--end",
                _stamp(2 * day),
                "--every",
                "1D",
            ],
            env,
        )
        train = run_command(["train", str(monitor)], env)
        scored = run_command(
            ["score", str(monitor), "--start", _stamp(day), "--end", _stamp(2 * day)], env
        )
        updates = _update_seconds(store.url)
        return [
            Row(label, backend, f"train ({detector})", rows_per_day, *_m(train)),
            Row(label, backend, f"score ({detector})", rows_per_day, *_m(scored)),
            Row(
                label,
                backend,
                f"train + score ({detector})",
                rows_per_day,
                train.seconds + scored.seconds,
                max(train.peak_mb, scored.peak_mb),
                notes=f"targets: under {MAX_SERIES_SECONDS:.0f} s and {MAX_SERIES_RSS_MB:.0f} MB",
            ),
            *[
                Row(
                    label,
                    backend,
                    f"online update within score ({detector})",
                    rows_per_day,
                    seconds,
                    notes=f"{seconds / scored.seconds:.1%} of the score command; target: "
                    "under 10% of scoring the batch",
                )
                for seconds in updates
            ],
        ]
    finally:
        store.drop()


def _update_seconds(url: str) -> list[float]:
    """How long each online update recorded in the store took (``model_updates``)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT seconds FROM model_updates")).scalars())
    finally:
        engine.dispose()


def big(rows_total: int, work: Path, threads: int) -> list[Row]:
    """``rows_total`` rows after the baseline, ingested and scored on PostgreSQL in
    1,000,000-row intervals."""
    home = work / "big-postgresql"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    total = BASELINE_ROWS + rows_total
    source = work / f"source-tabular-{total}"
    if not source.exists():
        write_tabular_source(source, total)
    monitor = home / "scale.yaml"
    monitor_yaml(monitor, "scale", source, FEATURES, "gmm")
    store = Store("postgresql", home, f"atalaia_scale_{os.getpid()}")
    env = environment(home, store, threads)
    base_end = BASELINE_ROWS // ENTITIES
    end = total // ENTITIES
    every = f"{BIG_INTERVAL_ROWS // ENTITIES}min"
    label = f"big {rows_total:,}"
    try:
        ingest, scored = ingest_train_and_score(monitor, env, base_end, end, every)
        return [
            Row(label, "postgresql", "ingest --every 1M rows", rows_total, *_m(ingest)),
            Row(label, "postgresql", "score --every 1M rows (gmm)", rows_total, *_m(scored)),
        ]
    finally:
        store.drop()


def _m(measured: Measured) -> tuple[float, float]:
    return measured.seconds, measured.peak_mb


# -- report ----------------------------------------------------------------------------


def report(rows: list[Row], isa: str) -> str:
    table = pd.DataFrame(
        {
            "scenario": [r.scenario for r in rows],
            "store": [r.backend for r in rows],
            "stage": [r.stage for r in rows],
            "rows": [f"{r.rows:,}" for r in rows],
            "seconds": [f"{r.seconds:.2f}" for r in rows],
            "peak RSS (MB)": ["" if r.peak_mb is None else f"{r.peak_mb:.0f}" for r in rows],
            "floor (s)": [
                "" if r.floor_seconds is None else f"{r.floor_seconds:.2f}" for r in rows
            ],
            "x floor": [
                "" if not r.floor_seconds else f"{r.seconds / r.floor_seconds:.1f}" for r in rows
            ],
            "CPU": [isa] * len(rows),
            "notes": [r.notes for r in rows],
        }
    )
    return table.to_markdown(index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rows", default="250000,1000000", help="tabular batch sizes")
    parser.add_argument("--daily", type=int, default=0, help="daily 100k-row batches (0: skip)")
    parser.add_argument("--series", default="", help="detectors for the many-series case")
    parser.add_argument(
        "--online",
        action="store_true",
        help="the many-series case learns each scored day online (baseline.adapt.online)",
    )
    parser.add_argument("--big", type=int, default=0, help="rows for the PostgreSQL big run")
    parser.add_argument("--threads", type=int, default=1, help="ATALAIA_THREADS for the commands")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "scale-bench")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "scale.md")
    parser.add_argument("--title", default="", help="a heading for this run's section")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    isa = cpu_model()
    rows: list[Row] = []
    backends = [b for b in args.backends.split(",") if b]
    for backend in backends:
        for size in [int(s) for s in args.rows.split(",") if s]:
            log(f"tabular {backend} {size}")
            rows += tabular(backend, size, args.work, args.threads)
        if args.daily:
            log(f"daily {backend}")
            rows += daily(backend, args.daily, args.work, args.threads)
        for detector in [d for d in args.series.split(",") if d]:
            log(f"series {backend} {detector}")
            rows += series(backend, detector, args.work, args.threads, args.online)
    if args.big:
        log(f"big {args.big}")
        rows += big(args.big, args.work, args.threads)
    section = f"## {args.title or 'Run'}\n\n{provenance()}\n{report(rows, isa)}\n"
    print(section)
    if args.output:
        previous = args.output.read_text() if args.output.exists() else HEADER
        args.output.write_text(previous.rstrip() + "\n\n" + section)


HEADER = """# The pipeline at scale (issue 23)

Written by `python -m benchmarks.scale`; each section is one run, newest last. Every command
runs as a subprocess under `/usr/bin/time -v`; floors are measured in the same run on the same
data. The CPU column gives the host's model and widest vector instructions.
"""


if __name__ == "__main__":
    main()
