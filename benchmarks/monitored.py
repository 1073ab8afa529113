"""A benchmark series run as a monitor, through the product's own path.

A time-series runner describes each series as a monitor: its settings come from a monitor
template in ``benchmarks/monitors/`` (the settings every series gets), and the runner fills
in what belongs to the series (its name, file, features, frequency and baseline). The series
is written as a Parquet file into a temporary home with a SQLite store; the baseline is
ingested interval by interval and trained on (``atalaia.jobs``), and the rest is walked
forward as the monitor's DAGs would run it (``atalaia.walk``). Scores, flags and events are
then read back from the store: what a user of the monitor would see.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from atalaia import jobs, store
from atalaia.config import Monitor
from atalaia.queries import monitor_key, reading
from atalaia.settings import Settings
from atalaia.walk import ingest_available, scheduled_intervals, walk_forward
from benchmarks.common import PYOD_PREFIX, DetectorFailure, DetectorSpec, constructor_params
from detectors import pyod_adapter
from storage.events import events_overlapping
from storage.scores import read_scores

TEMPLATES = Path(__file__).parent / "monitors"
# The detector settings a spec such as ``ar(window=8)`` may set besides its parameters.
DETECTOR_SETTINGS = ("window", "smoothing", "seasons")
TIMESTAMP = "ts"


@dataclass(frozen=True)
class MonitoredSeries:
    """A series' steps after its baseline as the monitor scored them, and its events.

    ``scores`` holds each stored step: ``ts``, ``raw_score`` (smoothed), ``p_value`` and
    ``is_anomaly``; ``events`` the stored events' ``start_ts`` and ``end_ts``.
    """

    scores: pd.DataFrame
    events: pd.DataFrame
    retrains: int
    fit_seconds: float
    score_seconds: float


def add_template_option(parser: argparse.ArgumentParser, default: str) -> None:
    """The ``--template`` option of a runner whose series go through the product's path."""
    parser.add_argument(
        "--template",
        default=default,
        help="monitor template in benchmarks/monitors/ (default: %(default)s)",
    )


def load_template(name: str) -> dict[str, Any]:
    """The monitor template ``benchmarks/monitors/<name>.yaml`` as a mapping."""
    return yaml.safe_load((TEMPLATES / f"{name}.yaml").read_text())


def monitor_document(
    template: dict[str, Any],
    spec: DetectorSpec,
    seed: int,
    *,
    name: str,
    source: str,
    features: list[str],
    frequency: str,
    baseline: tuple[pd.Timestamp, pd.Timestamp],
) -> dict[str, Any]:
    """The monitor (as its YAML mapping) for one series and one detector spec.

    The spec's ``window``, ``smoothing`` and ``seasons`` override the template's detector
    settings; its other parameters are the detector's, with ``random_state`` set to ``seed``
    where the detector takes one.
    """
    detector = dict(template.get("detector", {}))
    params = {k: v for k, v in spec.params.items() if k not in DETECTOR_SETTINGS}
    kind = spec.name
    if spec.is_pyod_baseline:
        kind = pyod_adapter.PREFIX + spec.name.removeprefix(PYOD_PREFIX)
    if "random_state" in constructor_params(kind):
        params = {"random_state": seed} | params
    detector |= {k: v for k, v in spec.params.items() if k in DETECTOR_SETTINGS}
    detector |= {"kind": kind, "params": params}
    return template | {
        "name": name,
        "source": {"kind": "files", "path": source},
        "timestamp": TIMESTAMP,
        "features": features,
        "frequency": frequency,
        "baseline": template.get("baseline", {})
        | {"start": baseline[0].isoformat(), "end": baseline[1].isoformat()},
        "detector": detector,
    }


@contextmanager
def temporary_home() -> Iterator[Settings]:
    """Settings for a fresh home with a migrated SQLite store, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="atalaia-bench-") as folder:
        home = Path(folder)
        environ = {
            "ATALAIA_HOME": str(home),
            "ATALAIA_STORE_URL": f"sqlite:///{home / 'store.db'}",
            "ATALAIA_MONITORS_DIR": str(home / "monitors"),
        }
        settings = Settings.from_env(environ)
        store.upgrade(settings.store_url)
        try:
            yield settings
        finally:
            store.engine(settings.store_url).dispose()
            store.engine.cache_clear()


def run_monitored(
    document: dict[str, Any], frame: pd.DataFrame, end: pd.Timestamp
) -> MonitoredSeries:
    """Ingest and train on the document's baseline, walk on to ``end``, read the results.

    ``frame`` holds the series: a ``ts`` column (aware UTC) and the document's features. A
    detector or calibration that fails becomes a :class:`DetectorFailure`.
    """
    with temporary_home() as settings:
        source = settings.home / "series.parquet"
        frame.to_parquet(source, index=False)
        document = document | {"source": {"kind": "files", "path": str(source)}}
        monitor = Monitor.model_validate(document)
        settings.monitors_dir.mkdir(parents=True, exist_ok=True)
        (settings.monitors_dir / f"{monitor.name}.yaml").write_text(yaml.safe_dump(document))
        start, split = monitor.baseline.start, monitor.baseline.end
        try:
            began = time.perf_counter()
            for first, last in scheduled_intervals(monitor.schedule.score, start, split):
                ingest_available(monitor, first, last, settings=settings)
            jobs.train(monitor, settings=settings)
            fit_seconds = time.perf_counter() - began
            began = time.perf_counter()
            walked = walk_forward(monitor, split, end, settings=settings)
            score_seconds = time.perf_counter() - began
        except Exception as exc:  # a benchmark records any failure of a series and goes on
            raise DetectorFailure(f"{type(exc).__name__}: {exc}") from exc
        with reading(settings) as session:
            identifier = monitor_key(session, monitor.name)
            scores = read_scores(session, identifier, split, end)
            found = events_overlapping(session, identifier, split, end)
            events = pd.DataFrame(
                [(event.start_ts, event.end_ts) for event in found],
                columns=["start_ts", "end_ts"],
            )
    return MonitoredSeries(scores, events, len(walked.retrained), fit_seconds, score_seconds)


def row_results(
    monitored: MonitoredSeries, stamps: pd.Series, step: pd.Timedelta
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Per row of a series (its timestamps ``stamps``, aware UTC, in order): the stored score
    and flag of the step it falls in (NaN and False where none), and the stored events as
    inclusive row ranges."""
    origin = pd.Timestamp(0, tz="UTC")
    steps = origin + ((stamps - origin) // step) * step
    stored = monitored.scores.set_index("ts")
    scores = stored["raw_score"].reindex(steps).to_numpy(dtype=np.float64)
    flags = stored["is_anomaly"].reindex(steps).fillna(False).to_numpy(dtype=bool)
    values = _naive_utc(stamps)
    events = []
    for start_ts, end_ts in monitored.events.itertuples(index=False):
        first = int(np.searchsorted(values, _naive_utc(start_ts), "left"))
        last = int(
            np.searchsorted(
                values, _naive_utc(end_ts) + pd.Timedelta(step).to_timedelta64(), "left"
            )
        )
        if last > first:
            events.append((first, last - 1))
    return scores, flags, events


def _naive_utc(stamps: Any) -> Any:
    """Aware timestamps (one or a series) as naive UTC ``datetime64`` values."""
    if isinstance(stamps, pd.Series):
        return stamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    stamp = pd.Timestamp(stamps)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.tz_localize(None).to_datetime64()
