"""Walking a monitor forward in time, interval by interval, as its scheduled DAGs do.

Each data interval of the monitor's score schedule (``schedule.score``) between ``start`` and
``end`` is ingested and scored; after an interval in which the retrain schedule
(``schedule.retrain``) ticked, the monitor is retrained (``atalaia.jobs.retrain``, with its
gate). Nothing here is a separate pipeline: every step is a job the CLI and the DAGs run, so
``atalaia walk`` and the time-series benchmarks measure what a scheduled monitor does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from croniter import croniter

from atalaia import jobs
from atalaia.config import Monitor, as_utc
from atalaia.errors import EmptyBatchError
from atalaia.settings import Settings


@dataclass
class WalkResult:
    """What walking a monitor forward did: each scored interval, and each retrain."""

    scored: list[jobs.ScoreResult] = field(default_factory=list)
    retrained: list[jobs.RetrainResult] = field(default_factory=list)
    empty_intervals: int = 0
    retrains_without_data: list[str] = field(default_factory=list)


def scheduled_intervals(
    schedule: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at every tick of the cron ``schedule`` (a preset such as
    ``@daily`` or a cron expression): the data intervals its runs would cover, the first and
    last one partial where ``start`` or ``end`` falls between ticks."""
    start, end = as_utc(start), as_utc(end)
    ticks = croniter(schedule, start)
    bounds, first = [], start
    while first < end:
        tick = min(as_utc(ticks.get_next(datetime)), end)
        bounds.append((first, tick))
        first = tick
    return bounds


def ticks_within(schedule: str, start: datetime, end: datetime) -> bool:
    """Whether the cron ``schedule`` ticks in ``(start, end]``."""
    return as_utc(croniter(schedule, as_utc(start)).get_next(datetime)) <= as_utc(end)


def walk_forward(
    monitor: Monitor, start: datetime, end: datetime, *, settings: Settings
) -> WalkResult:
    """Ingest and score every scheduled interval of ``[start, end)``, retraining when the
    retrain schedule ticks; an interval without rows is counted and not scored, and a
    retrain without rows to learn from (its run recorded as failed) is noted and the walk
    goes on, as the DAGs do."""
    result = WalkResult()
    for first, last in scheduled_intervals(monitor.schedule.score, start, end):
        if ingest_available(monitor, first, last, settings=settings):
            result.scored.append(jobs.score(monitor, first, last, settings=settings))
        else:
            result.empty_intervals += 1
        if monitor.schedule.retrain and ticks_within(monitor.schedule.retrain, first, last):
            try:
                result.retrained.append(jobs.retrain(monitor, settings=settings))
            except EmptyBatchError as refused:  # the DAG's retrain task fails; scoring goes on
                result.retrains_without_data.append(str(refused))
    return result


def ingest_available(
    monitor: Monitor, start: datetime, end: datetime, *, settings: Settings
) -> int:
    """Ingest ``[start, end)`` and return the rows landed; 0 where the source holds no row
    in it (a gap in the data, which a walk steps over)."""
    try:
        return jobs.ingest(monitor, start, end, settings=settings).rows
    except EmptyBatchError:
        return 0
