"""The time-series runners measure what a monitor does: a SMAP channel and a NAB file, run
through the runner and through the ``atalaia`` commands with a monitor YAML, give the same
scores, flags and events."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import create_engine, select

from atalaia.config import Monitor
from atalaia.representation import lookback
from atalaia.walk import scheduled_intervals, ticks_within
from benchmarks import nab, smap
from benchmarks.common import parse_spec
from benchmarks.monitored import load_template, monitor_document, run_monitored
from storage.models import EventRow, ScoreRow

DATA = Path(os.environ.get("ATALAIA_DATA_DIR", Path(__file__).parents[2] / "shared" / "data"))
DAY = pd.Timedelta(days=1)

pytestmark = pytest.mark.skipif(
    not (DATA / "smap").is_dir() or not (DATA / "nab").is_dir(),
    reason=f"no SMAP and NAB data in {DATA} (set ATALAIA_DATA_DIR)",
)


def atalaia(home: Path, *arguments: str) -> None:
    environ = os.environ | {
        "ATALAIA_HOME": str(home),
        "ATALAIA_STORE_URL": f"sqlite:///{home / 'cli.db'}",
        "ATALAIA_MONITORS_DIR": str(home / "monitors"),
    }
    environ.pop("ATALAIA_PUSHGATEWAY_URL", None)
    command = [sys.executable, "-m", "atalaia", *arguments]
    done = subprocess.run(command, env=environ, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def intervals_as_commands(
    home: Path, command: str, monitor: Path, start: pd.Timestamp, end: pd.Timestamp
) -> None:
    """Run ``command`` over the daily intervals of [start, end): whole days with one
    ``--every 1D``, a partial day on its own."""
    for first, last in scheduled_intervals("@daily", start, end):
        every = ["--every", "1D"] if last - first == DAY else []
        arguments = ["--start", first.isoformat(), "--end", last.isoformat(), *every]
        atalaia(home, command, str(monitor), *arguments)


def through_the_commands(
    tmp_path: Path, document: dict, frame: pd.DataFrame, end: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    home = tmp_path / "cli"
    (home / "monitors").mkdir(parents=True)
    source = home / "series.parquet"
    frame.to_parquet(source, index=False)
    path = home / "monitors" / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document | {"source": {"kind": "files", "path": str(source)}}))
    monitor = Monitor.model_validate(document)
    start, split = monitor.baseline.start, monitor.baseline.end
    atalaia(home, "db", "upgrade")
    intervals_as_commands(home, "ingest", path, start, split)
    atalaia(home, "train", str(path))
    intervals_as_commands(home, "ingest", path, split, end)
    intervals_as_commands(home, "score", path, split, end)
    engine = create_engine(f"sqlite:///{home / 'cli.db'}")
    with engine.connect() as connection:
        scores = pd.read_sql(select(ScoreRow).order_by(ScoreRow.ts), connection)
        events = pd.read_sql(select(EventRow).order_by(EventRow.start_ts), connection)
    engine.dispose()
    return scores, events


def assert_same(runner, scores: pd.DataFrame, events: pd.DataFrame) -> None:
    ran = runner.scores.sort_values("ts").reset_index(drop=True)
    assert len(ran) == len(scores) > 0
    np.testing.assert_array_equal(ran["is_anomaly"], scores["is_anomaly"].astype(bool))
    np.testing.assert_allclose(ran["raw_score"], scores["raw_score"], rtol=1e-12)
    np.testing.assert_allclose(ran["p_value"], scores["p_value"], rtol=1e-12)
    assert ran["is_anomaly"].any(), "the series has flags to compare"
    found = pd.to_datetime(events["start_ts"], utc=True), pd.to_datetime(events["end_ts"], utc=True)
    ran_events = runner.events.sort_values("start_ts")
    assert list(pd.to_datetime(ran_events["start_ts"], utc=True)) == list(found[0])
    assert list(pd.to_datetime(ran_events["end_ts"], utc=True)) == list(found[1])


def test_a_smap_channel_gives_the_same_flags_and_events_both_ways(tmp_path: Path) -> None:
    folders = smap.array_folders(DATA / "smap", tmp_path / "cache")
    train, test = (array[:, [0]] for array in smap.channel_arrays(folders, "A-5"))
    document = monitor_document(
        load_template("smap"),
        parse_spec("ar"),
        0,
        name="a5",
        source="series.parquet",
        features=["x0"],
        frequency="1min",
        baseline=(smap.SERIES_START, smap.SERIES_START + DAY),
    )
    steps = lookback(Monitor.model_validate(document)) // pd.Timedelta(minutes=1)
    frame, test_start = smap.channel_frame(train, test, steps)
    document["baseline"] = {"start": str(smap.SERIES_START), "end": str(test_start)}
    end = test_start + pd.Timedelta(minutes=len(test))

    runner = run_monitored(document, frame, end)
    assert_same(runner, *through_the_commands(tmp_path, document, frame, end))


def test_a_nab_file_gives_the_same_flags_and_events_both_ways(tmp_path: Path) -> None:
    file = "realKnownCause/ec2_request_latency_system_failure.csv"
    frame = nab.load_corpus(DATA / "nab")[file]
    probation = nab.probationary_length(len(frame))
    series = pd.DataFrame(
        {"ts": frame["timestamp"].dt.tz_localize("UTC"), "value": frame["value"].astype(float)}
    )
    split = series["ts"].iloc[probation]
    # up to the first weekly retrain, which the commands below do not run
    end = (
        next(
            last
            for _, last in scheduled_intervals("@daily", split, series["ts"].iloc[-1])
            if ticks_within("@weekly", split, last)
        )
        - DAY
    )
    series = series[series["ts"] < end]
    document = monitor_document(
        load_template("nab"),
        parse_spec("ar"),
        0,
        name="ec2",
        source="series.parquet",
        features=["value"],
        frequency=nab.frequency(frame["timestamp"]),
        baseline=(series["ts"].iloc[0], split),
    )

    runner = run_monitored(document, series, end)
    assert runner.retrains == 0
    assert_same(runner, *through_the_commands(tmp_path, document, series, end))
