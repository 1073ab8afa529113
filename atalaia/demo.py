"""The demo: a real pipeline run on generated server metrics, with the embedded defaults.

It writes the sample data as daily CSV files under ``ATALAIA_HOME/sources/demo``, upgrades
the store, then runs the same jobs the DAGs run: ingest the first week, train on it, and
ingest and score each day of the second week.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from atalaia import demo_data, jobs, store
from atalaia.config import Monitor, find_monitor
from atalaia.queries import events_as_scored, monitor_key, reading
from atalaia.settings import Settings
from storage.models import EventRow

MONITOR = "demo"


@dataclass
class DemoReport:
    """What the demo did and found."""

    monitor: Monitor
    ingested: list[jobs.IngestResult]
    trained: jobs.TrainResult
    scored: list[jobs.ScoreResult]
    events: list[EventRow]


def days(first: int, count: int) -> list[tuple[datetime, datetime]]:
    """Daily intervals of the sample data, from day ``first`` (0-based) on."""
    return [
        (demo_data.START + timedelta(days=d), demo_data.START + timedelta(days=d + 1))
        for d in range(first, first + count)
    ]


def run_demo(settings: Settings, step: Callable[[str], None] = lambda _: None) -> DemoReport:
    """Generate the data and run ingest, train and score over it; ``step`` hears progress."""
    monitor = find_monitor(settings.monitors_dir, MONITOR, settings.home)
    demo_data.write_files(settings.home / "sources" / MONITOR)
    store.upgrade(settings.store_url, settings.connect_timeout)
    step("data written, store ready")

    baseline = days(0, demo_data.BASELINE_DAYS)
    ingested = []
    for start, end in baseline:
        ingested.append(jobs.ingest(monitor, start, end, settings=settings))
        step(f"ingested {start:%Y-%m-%d}")
    trained = jobs.train(monitor, (baseline[0][0], baseline[-1][1]), settings=settings)
    step(f"trained version {trained.version}")

    scored = []
    for start, end in days(demo_data.BASELINE_DAYS, demo_data.DAYS - demo_data.BASELINE_DAYS):
        ingested.append(jobs.ingest(monitor, start, end, settings=settings))
        scored.append(jobs.score(monitor, start, end, settings=settings))
        step(f"scored {start:%Y-%m-%d}")

    with reading(settings) as session:
        identifier = monitor_key(session, MONITOR)
        found = events_as_scored(session, identifier, scored[0].start, scored[-1].end)
        events = [event for event, _ in found]
    return DemoReport(monitor, ingested, trained, scored, events)


def steps() -> int:
    """How many progress steps ``run_demo`` reports."""
    return 1 + demo_data.BASELINE_DAYS + 1 + (demo_data.DAYS - demo_data.BASELINE_DAYS)
