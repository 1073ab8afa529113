"""Job runs: one row per execution, started before the work and finished after it.

A running run records its host, process id and a heartbeat; ``abandon_stale_runs`` marks
``abandoned`` the running runs whose process is gone or whose heartbeat stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.models import RunRow, utcnow
from storage.types import RunStatus


def start_run(
    session: Session,
    monitor_id: int,
    job: str,
    interval_start: datetime | None = None,
    interval_end: datetime | None = None,
    *,
    host: str | None = None,
    pid: int | None = None,
) -> int:
    """Record that ``job`` started for a monitor in process ``pid`` of ``host``; return the
    run id."""
    run = RunRow(
        monitor_id=monitor_id,
        job=job,
        interval_start=interval_start,
        interval_end=interval_end,
        status=RunStatus.RUNNING,
        host=host,
        pid=pid,
        heartbeat_at=utcnow(),
    )
    session.add(run)
    session.flush()
    return run.id


def beat(session: Session, run_id: int) -> None:
    """Record that a running run is still alive."""
    session.execute(
        update(RunRow)
        .where(RunRow.id == run_id, RunRow.status == RunStatus.RUNNING)
        .values(heartbeat_at=utcnow())
    )


def finish_run(
    session: Session,
    run_id: int,
    status: RunStatus,
    *,
    rows: int | None = None,
    anomalies: int | None = None,
    model_id: int | None = None,
    message: str | None = None,
) -> RunRow:
    """Record how a run ended (``success``, ``failed`` or ``refused``) and what it did."""
    run = session.get_one(RunRow, run_id)
    run.status, run.finished_at, run.message = status, utcnow(), message
    run.rows, run.anomalies, run.model_id = rows, anomalies, model_id
    session.flush()
    return run


def abandon_stale_runs(
    session: Session, stale_after: timedelta, is_gone: Callable[[str | None, int | None], bool]
) -> list[RunRow]:
    """Mark ``abandoned`` every running run whose process ``is_gone`` (host, pid) or whose
    last heartbeat (or start) is older than ``stale_after``; return them."""
    now = utcnow()
    abandoned = []
    for run in session.scalars(select(RunRow).where(RunRow.status == RunStatus.RUNNING)).all():
        last = run.heartbeat_at or run.started_at
        if is_gone(run.host, run.pid):
            reason = f"process {run.pid} on {run.host} ended without finishing the run"
        elif now - last > stale_after:
            reason = f"no heartbeat since {last:%Y-%m-%d %H:%M:%S} UTC"
        else:
            continue
        run.status, run.finished_at, run.message = RunStatus.ABANDONED, now, f"abandoned: {reason}"
        abandoned.append(run)
    session.flush()
    return abandoned


def abandoned_count(session: Session, monitor_id: int, job: str) -> int:
    """How many runs of ``job`` for a monitor were ever marked abandoned."""
    query = select(func.count(RunRow.id)).where(
        RunRow.monitor_id == monitor_id, RunRow.job == job, RunRow.status == RunStatus.ABANDONED
    )
    return int(session.scalar(query))
