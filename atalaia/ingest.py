"""Ingest one interval: read it from the source, validate it, land it, record it.

Accepted rows land as one Parquet file per interval; every rejected row goes to the store's
``quarantine`` table with its reason and raw values, so nothing read is lost. Ingesting the
same interval again replaces its file, its batch row and its quarantine rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from atalaia.config import Monitor
from atalaia.errors import EmptyBatchError, NoSourceFilesError
from atalaia.landing import batch_path, write_batch
from atalaia.settings import Settings
from atalaia.sources import read_interval
from atalaia.validation import rows_in_interval, validate
from storage.batches import record_batch


@dataclass
class LandedBatch:
    """One interval's ingest outcome."""

    batch_id: int
    rows: int
    quarantined: int
    path: Path


def ingest_interval(
    session: Session,
    settings: Settings,
    monitor: Monitor,
    monitor_id: int,
    start: datetime,
    end: datetime,
) -> LandedBatch:
    """Land the accepted rows of ``[start, end)`` and record the batch and its quarantine.

    An interval with no source row at all raises EmptyBatchError; one whose rows were all
    rejected is recorded (with 0 accepted rows) so the quarantine keeps them.
    """
    raw = read_interval(monitor, start, end, settings.connect_timeout)
    validated = validate(raw, monitor, start, end)
    if validated.accepted.empty and not validated.quarantined:
        raise EmptyBatchError(f"monitor {monitor.name}: the source has no rows in [{start}, {end})")
    path = batch_path(settings.landing_dir, monitor.name, start, end)
    digest = write_batch(validated.accepted, path)
    batch_id = record_batch(
        session,
        monitor_id,
        start,
        end,
        row_count=len(validated.accepted),
        landing_path=str(path),
        content_sha256=digest,
        quarantined=validated.quarantined,
    )
    return LandedBatch(batch_id, len(validated.accepted), len(validated.quarantined), path)


def arrived_rows(monitor: Monitor, start: datetime, end: datetime, settings: Settings) -> int:
    """How many source rows have a timestamp in ``[start, end)`` so far; lands nothing.

    A source whose files are not there yet (no file matches) holds none.
    """
    try:
        raw = read_interval(monitor, start, end, settings.connect_timeout)
    except NoSourceFilesError:
        return 0
    return rows_in_interval(raw, monitor, start, end)
