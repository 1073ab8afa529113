"""The pipeline's jobs as plain functions: the CLI and the Airflow tasks both call these.

Each job records a run in the store (``running``, then ``success`` in the same transaction
as its results, or ``failed`` with the reason) and exports its metrics once its results are
committed. Nothing here imports Airflow.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from atalaia import metrics
from atalaia.artifacts import load_model, model_folder, save_model
from atalaia.config import Monitor, as_utc
from atalaia.errors import AtalaiaError, EmptyBatchError, NotFoundError
from atalaia.events import refresh_events
from atalaia.ingest import ingest_interval
from atalaia.landing import read_batch
from atalaia.scoring import score_frame
from atalaia.settings import Settings
from atalaia.store import require_current
from atalaia.training import assemble_baseline, fit_model
from storage.batches import find_batch
from storage.engine import transaction
from storage.monitors import ensure_monitor
from storage.registry import add_model, champion, next_version, promote
from storage.runs import finish_run, start_run
from storage.scores import upsert_scores


@dataclass
class IngestResult:
    """What an ingest run landed and quarantined."""

    monitor: str
    start: datetime
    end: datetime
    batch_id: int
    rows: int
    quarantined: int
    landing_path: Path


@dataclass
class TrainResult:
    """The model version a train run produced."""

    monitor: str
    version: int
    status: str
    detector: str
    baseline_start: datetime
    baseline_end: datetime
    train_rows: int
    calibration_rows: int
    threshold: float
    seconds: float
    artifact_path: Path


@dataclass
class ScoreResult:
    """What a score run found in one batch."""

    monitor: str
    start: datetime
    end: datetime
    model_version: int
    rows: int
    anomalies: int
    max_z: float
    events: list[dict[str, Any]]


@dataclass
class _Run:
    store: Engine
    monitor_id: int
    run_id: int
    figures: dict[str, float] = field(default_factory=dict)


def ingest(
    monitor: Monitor, start: datetime, end: datetime, *, settings: Settings | None = None
) -> IngestResult:
    """Read ``[start, end)`` from the monitor's source, land accepted rows, quarantine the rest."""
    settings = settings or Settings.from_env()
    start, end = _interval(start, end)
    with _recorded(settings, monitor, "ingest", start, end) as run:
        with transaction(run.store) as session:
            landed = ingest_interval(session, settings, monitor, run.monitor_id, start, end)
            finish_run(session, run.run_id, "success", rows=landed.rows)
        run.figures = {
            "atalaia_batch_rows": landed.rows,
            "atalaia_batch_quarantined_rows": landed.quarantined,
        }
    return IngestResult(
        monitor.name, start, end, landed.batch_id, landed.rows, landed.quarantined, landed.path
    )


def train(
    monitor: Monitor,
    baseline: tuple[datetime, datetime] | None = None,
    *,
    settings: Settings | None = None,
) -> TrainResult:
    """Train and calibrate a new model version on ``baseline`` (default: the monitor's policy).

    The first version of a monitor becomes its champion; later ones stay candidates.
    """
    settings = settings or Settings.from_env()
    start, end = _interval(*baseline) if baseline else (None, None)
    with _recorded(settings, monitor, "train", start, end) as run:
        with transaction(run.store) as session:
            rows = assemble_baseline(session, monitor, run.monitor_id, start, end)
            fitted = fit_model(monitor, rows)
            number = next_version(session, run.monitor_id)
            folder = model_folder(settings.models_dir, monitor.name, number)
            sha256 = save_model(folder, fitted.detector, fitted.calibrator)
            try:
                model = add_model(
                    session,
                    monitor_id=run.monitor_id,
                    version=number,
                    detector=monitor.detector.kind,
                    params=fitted.detector.get_params(),
                    features=list(monitor.features),
                    artifact_path=str(folder),
                    artifact_sha256=sha256,
                    baseline_start=rows.start,
                    baseline_end=rows.end,
                    baseline_rows=len(rows.frame),
                    baseline_sha256=rows.sha256,
                    alpha=fitted.calibrator.alpha,
                    calibration_rows=fitted.calibration_rows,
                    threshold=fitted.calibrator.threshold_,
                    code_version=_code_version(),
                    training_seconds=fitted.seconds,
                )
                if champion(session, run.monitor_id) is None:
                    promote(session, model, "first model of the monitor")
                finish_run(session, run.run_id, "success", rows=len(rows.frame), model_id=model.id)
                session.flush()
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        run.figures = {
            "atalaia_model_version": number,
            "atalaia_training_rows": fitted.train_rows,
            "atalaia_training_duration_seconds": fitted.seconds,
            "atalaia_training_loss": fitted.calibration_loss,
        }
    return TrainResult(
        monitor=monitor.name,
        version=number,
        status=model.status,
        detector=model.detector,
        baseline_start=rows.start,
        baseline_end=rows.end,
        train_rows=fitted.train_rows,
        calibration_rows=fitted.calibration_rows,
        threshold=model.threshold,
        seconds=fitted.seconds,
        artifact_path=folder,
    )


def score(
    monitor: Monitor, start: datetime, end: datetime, *, settings: Settings | None = None
) -> ScoreResult:
    """Score the landed batch ``[start, end)`` with the champion; write scores and events.

    Scoring a batch again replaces its scores, so retries and backfills leave one row per
    (monitor, entity, timestamp, model version).
    """
    settings = settings or Settings.from_env()
    start, end = _interval(start, end)
    with _recorded(settings, monitor, "score", start, end) as run:
        with transaction(run.store) as session:
            batch = find_batch(session, run.monitor_id, start, end)
            if batch is None:
                raise NotFoundError(
                    f"monitor {monitor.name}: no batch for [{start}, {end}); run ingest first"
                )
            if batch.row_count == 0:
                raise EmptyBatchError(
                    f"monitor {monitor.name}: batch [{start}, {end}) has no accepted rows "
                    f"({batch.quarantined_count} quarantined)"
                )
            model = champion(session, run.monitor_id)
            if model is None:
                raise NotFoundError(f"monitor {monitor.name}: no champion model; run train first")
            if list(model.features) != list(monitor.features):
                raise AtalaiaError(
                    f"monitor {monitor.name}: champion version {model.version} was trained on "
                    f"{model.features}, the monitor now lists {monitor.features}; retrain"
                )
            detector, calibrator = load_model(model.artifact_path, model.artifact_sha256)
            frame = read_batch(batch.landing_path, batch.content_sha256)
            scores = score_frame(frame, monitor, detector, calibrator)
            upsert_scores(session, run.monitor_id, model.id, batch.id, scores)
            reach = monitor.step * (monitor.events.max_gap + 1)
            events = refresh_events(session, run.monitor_id, model.id, start, end, reach)
            anomalies = int(scores["is_anomaly"].sum())
            finish_run(
                session,
                run.run_id,
                "success",
                rows=len(scores),
                anomalies=anomalies,
                model_id=model.id,
            )
        max_z = float(scores["z"].max())
        run.figures = {
            "atalaia_batch_rows": len(scores),
            "atalaia_batch_anomalies": anomalies,
            "atalaia_batch_anomaly_ratio": anomalies / len(scores),
            "atalaia_batch_max_z": max_z,
            "atalaia_open_events": sum(event["is_open"] for event in events),
            "atalaia_model_version": model.version,
            "atalaia_champion_version": model.version,
            "atalaia_alpha": model.alpha,
        }
    return ScoreResult(
        monitor.name, start, end, model.version, len(scores), anomalies, max_z, events
    )


@contextmanager
def _recorded(
    settings: Settings,
    monitor: Monitor,
    job: str,
    start: datetime | None,
    end: datetime | None,
) -> Iterator[_Run]:
    """Record a run around a job's body: failures are stored and exported, then re-raised."""
    store = require_current(settings.store_url)
    with transaction(store) as session:
        monitor_id = ensure_monitor(session, monitor.name, monitor.model_dump(mode="json"))
        run = _Run(store, monitor_id, start_run(session, monitor_id, job, start, end))
    began = time.perf_counter()
    try:
        yield run
    except Exception as exc:
        with transaction(store) as session:
            finish_run(session, run.run_id, "failed", message=f"{type(exc).__name__}: {exc}")
        metrics.export_failure(settings, monitor.name, job)
        raise
    metrics.export_success(settings, monitor.name, job, run.figures, time.perf_counter() - began)


def _interval(start: datetime | str, end: datetime | str) -> tuple[datetime, datetime]:
    start, end = as_utc(start), as_utc(end)
    if start >= end:
        raise AtalaiaError(f"interval start {start} is not before its end {end}")
    return start, end


def _code_version() -> str:
    try:
        return version("atalaia")
    except PackageNotFoundError:
        return "unknown"
