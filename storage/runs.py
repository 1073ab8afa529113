"""Job runs: one row per execution, started before the work and finished after it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storage.models import RunRow, utcnow


def start_run(
    session: Session,
    monitor_id: int,
    job: str,
    interval_start: datetime | None = None,
    interval_end: datetime | None = None,
) -> int:
    """Record that ``job`` started for a monitor; return the run id."""
    run = RunRow(
        monitor_id=monitor_id,
        job=job,
        interval_start=interval_start,
        interval_end=interval_end,
        status="running",
    )
    session.add(run)
    session.flush()
    return run.id


def finish_run(
    session: Session,
    run_id: int,
    status: str,
    *,
    rows: int | None = None,
    anomalies: int | None = None,
    model_id: int | None = None,
    message: str | None = None,
) -> RunRow:
    """Record how a run ended (``success`` or ``failed``) and what it did."""
    run = session.get_one(RunRow, run_id)
    run.status, run.finished_at, run.message = status, utcnow(), message
    run.rows, run.anomalies, run.model_id = rows, anomalies, model_id
    session.flush()
    return run
