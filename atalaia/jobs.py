"""The pipeline's jobs as plain functions: the CLI and the Airflow tasks both call these.

Each job records a run in the store (``running``, then ``success`` in the same transaction
as its results, or ``failed`` with the reason) and exports its metrics once its results are
committed; ``plan_scoring`` only reads, and records nothing. Nothing here imports Airflow.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from atalaia import adaptation, alerting, metrics
from atalaia.artifacts import (
    bound_settings_of,
    clear_leftovers,
    load_model,
    model_folder,
    save_model,
)
from atalaia.config import Monitor, as_utc
from atalaia.errors import AtalaiaError, EmptyBatchError, NotFoundError, UsageError
from atalaia.events import reach_steps, refresh_events
from atalaia.ingest import arrived_rows as ingest_arrived_rows
from atalaia.ingest import ingest_interval
from atalaia.landing import read_batch, read_batch_pieces
from atalaia.processes import Heartbeat, abandon_stale, this_host
from atalaia.queries import resolve_model
from atalaia.representation import (
    as_trained,
    bound_settings,
    changed_setting,
    history_steps,
    lookback,
)
from atalaia.scoring import score_frame, uncomputable_rows
from atalaia.settings import Settings
from atalaia.store import require_current
from atalaia.threads import blas_threads
from atalaia.training import Baseline, FittedModel, assemble_baseline, fit_model, landed_rows
from atalaia.validation import entity_keys, with_entity_keys
from detectors import ConformalCalibrator, Detector
from storage.batches import find_batch
from storage.engine import transaction
from storage.events import Event
from storage.models import BatchRow, ModelRow
from storage.monitors import ensure_monitor
from storage.monitors import monitor_id as stored_monitor_id
from storage.registry import add_model, champion, find_model, next_version, promote
from storage.registry import rollback as registry_rollback
from storage.runs import finish_run, start_run
from storage.scores import (
    ScoreTally,
    read_scores,
    scores_stored,
    tally_scores,
    unflagged_scores,
    upsert_scores,
)
from storage.types import ModelStatus, RunStatus

if TYPE_CHECKING:
    from atalaia.drift import DriftCheck
    from atalaia.promotion import Contender

log = logging.getLogger(__name__)


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
    status: ModelStatus
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
    events: list[Event]


@dataclass(frozen=True)
class Partition:
    """One share of a batch's entities, scored by one task with a pinned model version.

    The batch's entities, sorted, are dealt out in turn: entity ``i`` falls in partition
    ``i % count``.
    """

    index: int
    count: int
    model_version: int

    def __str__(self) -> str:
        return f"partition {self.index + 1} of {self.count} (version {self.model_version})"


@dataclass
class RetrainResult:
    """The candidate a retrain run trained, and whether it replaced the champion."""

    monitor: str
    version: int
    promoted: bool
    champion_version: int
    reason: str
    baseline_start: datetime
    baseline_end: datetime
    baseline_rows: int
    evaluation: dict[str, Any] | None


@dataclass
class DriftResult:
    """What a drift check found in the champion's recent scores."""

    monitor: str
    start: datetime
    end: datetime
    model_version: int
    check: DriftCheck


@dataclass
class RegistryChange:
    """A change of champion made by hand: promotion or rollback."""

    monitor: str
    champion_version: int
    replaced_version: int | None
    reason: str


@dataclass
class _Run:
    store: Engine
    monitor_id: int
    run_id: int
    figures: dict[str, float] = field(default_factory=dict)


def ingest(monitor: Monitor, start: datetime, end: datetime, *, settings: Settings) -> IngestResult:
    """Read ``[start, end)`` from the monitor's source, land accepted rows, quarantine the rest."""
    start, end = _interval(start, end)
    with _recorded(settings, monitor, "ingest", start, end) as run:
        with transaction(run.store) as session:
            landed = ingest_interval(session, settings, monitor, run.monitor_id, start, end)
            finish_run(session, run.run_id, RunStatus.SUCCESS, rows=landed.rows)
        run.figures = {
            "atalaia_batch_interval_seconds": (end - start).total_seconds(),
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
    settings: Settings,
) -> TrainResult:
    """Train and calibrate a new model version on ``baseline`` (default: the monitor's policy).

    The first version of a monitor becomes its champion; later ones stay candidates.
    """
    start, end = _interval(*baseline) if baseline else (None, None)
    with _recorded(settings, monitor, "train", start, end) as run:
        with transaction(run.store) as session:
            rows = assemble_baseline(session, monitor, run.monitor_id, start, end)
            fitted = fit_model(monitor, rows, settings.chunk_rows)
            with _new_version(session, settings, monitor, run.monitor_id, rows, fitted) as model:
                if champion(session, run.monitor_id) is None:
                    promote(session, model, "first model of the monitor")
                finish_run(
                    session, run.run_id, RunStatus.SUCCESS, rows=len(rows.frame), model_id=model.id
                )
        run.figures = _training_figures(model, fitted)
    return TrainResult(
        monitor=monitor.name,
        version=model.version,
        status=model.status,
        detector=model.detector,
        baseline_start=rows.start,
        baseline_end=rows.end,
        train_rows=fitted.train_rows,
        calibration_rows=fitted.calibration_rows,
        threshold=model.threshold,
        seconds=fitted.seconds,
        artifact_path=Path(model.artifact_path),
    )


def score(
    monitor: Monitor,
    start: datetime,
    end: datetime,
    *,
    settings: Settings,
    partition: Partition | None = None,
) -> ScoreResult:
    """Score the landed batch ``[start, end)`` with the champion; write scores and events.

    Scoring a batch again replaces its scores, so retries and backfills leave one row per
    (monitor, entity, timestamp, model version).

    With a ``partition`` (one mapped task of the score DAG) only its entities are scored, by
    the model version it names, as a ``score_partition`` run that exports no metrics; events
    and the batch's ``score`` run are left to ``finish_scoring``, once every partition is in.
    """
    start, end = _interval(start, end)
    job = "score" if partition is None else "score_partition"
    with _recorded(settings, monitor, job, start, end, export=partition is None) as run:
        with transaction(run.store) as session:
            batch = _landed_batch(session, monitor, run.monitor_id, start, end)
            pinned = None if partition is None else partition.model_version
            model = _scoring_model(session, monitor, run.monitor_id, pinned)
            detector, calibrator, trained = _load(model, monitor)
            state = adaptation.in_effect(session, model, trained, start, detector, calibrator)
            detector, calibrator, pooled = state
            recent = None
            if monitor.calibration.pool == "unflagged":
                # older scores join the pool outright; those within a score's history of
                # the batch join step by step (atalaia.scoring)
                horizon = start - monitor.step * history_steps(trained)
                limit = monitor.calibration.pool_limit
                older = unflagged_scores(
                    session, run.monitor_id, model.id, horizon, limit, since=pooled
                )
                calibrator = calibrator.pooled(older["raw_score"].to_numpy())
                recent = unflagged_scores(
                    session, run.monitor_id, model.id, start, limit, since=horizon
                )
            context = _context_rows(session, trained, run.monitor_id, start)
            if not context.empty:
                context = with_entity_keys(context, trained)
            members = None
            if partition is not None:
                members = _partition_entities(batch, monitor, partition)
            new = not scores_stored(session, run.monitor_id, model.id, start, end, members)
            tally, uncomputable = ScoreTally(0, 0, 0.0), 0
            for frame in _batch_pieces(batch, trained, settings, members):
                keys = entity_keys(frame, monitor)
                lookback_rows = context
                if not context.empty:
                    lookback_rows = context[entity_keys(context, monitor).isin(keys.unique())]
                scores = score_frame(
                    frame,
                    trained,
                    detector,
                    calibrator,
                    context=lookback_rows,
                    start=start,
                    recent=recent,
                )
                upsert_scores(session, run.monitor_id, model.id, batch.id, scores, new=new)
                tally += ScoreTally.of(scores)
                uncomputable += uncomputable_rows(scores)
            notes = [str(partition)] if partition is not None else []
            if uncomputable:
                notes.append(
                    f"{uncomputable} rows' scores could not be computed (values beyond the "
                    "detector's numeric range): flagged anomalous with an infinite score"
                )
                log.warning("monitor %s [%s, %s): %s", monitor.name, start, end, notes[-1])
            events = _finish_score_run(
                session, run, monitor, model, (start, end), tally, partition is None, notes
            )
            if partition is None:
                _adapt(session, run.monitor_id, model, trained, detector, (start, end))
        run.figures = _score_figures(tally, events, model, end - start)
    return _delivered(settings, run, monitor, model, (start, end), tally, events)


def arrived_rows(monitor: Monitor, start: datetime, end: datetime, *, settings: Settings) -> int:
    """How many source rows ``[start, end)`` holds so far (0: its data has not arrived yet).

    Reads the source only: lands, records and exports nothing, so it can be asked often.
    """
    start, end = _interval(start, end)
    return ingest_arrived_rows(monitor, start, end, settings)


def plan_scoring(
    monitor: Monitor, start: datetime, end: datetime, *, settings: Settings
) -> list[Partition]:
    """Split the landed batch ``[start, end)`` into entity partitions for the champion.

    Each partition holds at most ``scoring.partition_entities`` entities and names the
    champion's version, so every partition of a batch is scored by the same model even if
    a promotion happens meanwhile. A monitor without entities is one partition.
    """
    start, end = _interval(start, end)
    with transaction(require_current(settings.store_url, settings.connect_timeout)) as session:
        identifier = stored_monitor_id(session, monitor.name)
        if identifier is None:
            raise NotFoundError(f"monitor {monitor.name}: nothing ingested yet; run ingest first")
        batch = _landed_batch(session, monitor, identifier, start, end)
        model = _scoring_model(session, monitor, identifier)
    entities = 1
    if monitor.entities:
        frame = read_batch(batch.landing_path, batch.content_sha256, columns=monitor.entities)
        entities = entity_keys(frame, monitor).nunique()
    count = math.ceil(entities / monitor.scoring.partition_entities)
    return [Partition(index, count, model.version) for index in range(count)]


def finish_scoring(
    monitor: Monitor,
    start: datetime,
    end: datetime,
    model_version: int,
    *,
    settings: Settings,
) -> ScoreResult:
    """Rebuild the events of a batch scored in partitions; record and export its score run."""
    start, end = _interval(start, end)
    with _recorded(settings, monitor, "score", start, end) as run:
        with transaction(run.store) as session:
            _landed_batch(session, monitor, run.monitor_id, start, end)
            model = _scoring_model(session, monitor, run.monitor_id, model_version)
            tally = tally_scores(session, run.monitor_id, start, end, model_id=model.id)
            if not tally.rows:
                raise NotFoundError(
                    f"monitor {monitor.name}: version {model_version} scored nothing in "
                    f"[{start}, {end}); score the partitions first"
                )
            events = _finish_score_run(session, run, monitor, model, (start, end), tally, True)
            detector, calibrator, trained = _load(model, monitor)
            detector, *_ = adaptation.in_effect(
                session, model, trained, start, detector, calibrator
            )
            _adapt(session, run.monitor_id, model, trained, detector, (start, end))
        run.figures = _score_figures(tally, events, model, end - start)
    return _delivered(settings, run, monitor, model, (start, end), tally, events)


def _landed_batch(
    session: Session, monitor: Monitor, monitor_id: int, start: datetime, end: datetime
) -> BatchRow:
    batch = find_batch(session, monitor_id, start, end)
    if batch is None:
        raise NotFoundError(
            f"monitor {monitor.name}: no batch for [{start}, {end}); run ingest first"
        )
    if batch.row_count == 0:
        raise EmptyBatchError(
            f"monitor {monitor.name}: batch [{start}, {end}) has no accepted rows "
            f"({batch.quarantined_count} quarantined)"
        )
    return batch


def _scoring_model(
    session: Session, monitor: Monitor, monitor_id: int, version: int | None = None
) -> ModelRow:
    """The champion, or version ``version`` when a partitioned batch pinned one."""
    model = resolve_model(session, monitor.name, monitor_id, version)
    if list(model.features) != list(monitor.features):
        raise AtalaiaError(
            f"monitor {monitor.name}: version {model.version} was trained on "
            f"{model.features}, the monitor now lists {monitor.features}; retrain"
        )
    return model


def _partition_entities(batch: BatchRow, monitor: Monitor, partition: Partition) -> set[str]:
    """The batch's entities that fall in ``partition``: sorted entities dealt out in turn."""
    frame = read_batch(batch.landing_path, batch.content_sha256, columns=monitor.entities)
    entities = sorted(entity_keys(frame, monitor).unique())
    return set(entities[partition.index :: partition.count])


def _batch_pieces(
    batch: BatchRow, monitor: Monitor, settings: Settings, members: set[str] | None
) -> Iterator[pd.DataFrame]:
    """The landed batch in pieces of about ``settings.chunk_rows`` rows (only ``members``'
    rows, if given). A monitor whose scores look back (windows, seasons, smoothing) or whose
    calibration pool grows within each entity's steps (``calibration.pool: unflagged``, see
    ``atalaia.scoring``) gets whole entities per piece, so each entity's steps are scored
    together as in one piece."""
    whole_entities = lookback(monitor) or monitor.calibration.pool == "unflagged"
    keys = monitor.entities if whole_entities else []
    pieces = read_batch_pieces(batch.landing_path, batch.content_sha256, settings.chunk_rows, keys)
    for frame in pieces:
        frame = with_entity_keys(frame, monitor)  # built once for the piece's every use
        if members is not None:
            frame = frame[entity_keys(frame, monitor).isin(members)]
        if not frame.empty:
            yield frame


def _context_rows(
    session: Session, monitor: Monitor, monitor_id: int, start: datetime
) -> pd.DataFrame:
    """The accepted rows in the ``lookback`` before ``start`` (none landed: an empty frame)."""
    span = lookback(monitor)
    if not span:
        return pd.DataFrame()
    try:
        return landed_rows(session, monitor, monitor_id, start - span, start, "the look-back")
    except EmptyBatchError:
        return pd.DataFrame()


def _finish_score_run(
    session: Session,
    run: _Run,
    monitor: Monitor,
    model: ModelRow,
    interval: tuple[datetime, datetime],
    tally: ScoreTally,
    with_events: bool,
    notes: list[str] | None = None,
) -> list[Event]:
    """Record a score run's success, for both paths: ``score`` and, for a batch scored in
    partitions, ``finish_scoring``. With ``with_events``, first rebuild the batch's events;
    return them."""
    events: list[Event] = []
    if with_events:
        lead = monitor.event_lead_steps
        reach = monitor.step * reach_steps(monitor.events.max_gap, lead)
        events = refresh_events(
            session, run.monitor_id, model.id, *interval, reach, monitor.step * lead
        )
    finish_run(
        session,
        run.run_id,
        RunStatus.SUCCESS,
        rows=tally.rows,
        anomalies=tally.anomalies,
        model_id=model.id,
        message="; ".join(notes or []) or None,
    )
    return events


def _adapt(
    session: Session,
    monitor_id: int,
    model: ModelRow,
    trained: Monitor,
    detector: Detector,
    interval: tuple[datetime, datetime],
) -> None:
    """Once a batch is scored and its events formed: learn it online where the model can,
    and mark the events whose change is now the new normal (``atalaia.adaptation``)."""
    adaptation.learn_batch(session, trained, monitor_id, model, detector, *interval)
    adaptation.mark_absorbed(session, trained, monitor_id, interval[1])


def _delivered(
    settings: Settings,
    run: _Run,
    monitor: Monitor,
    model: ModelRow,
    interval: tuple[datetime, datetime],
    tally: ScoreTally,
    events: list[Event],
) -> ScoreResult:
    """A committed score run's result, once its events went to Alertmanager."""
    start, end = interval
    alerting.deliver(settings, monitor.name, run.monitor_id, model, events, end - start)
    return ScoreResult(
        monitor.name, start, end, model.version, tally.rows, tally.anomalies, tally.max_z, events
    )


def _score_figures(
    tally: ScoreTally, events: list[Event], model: ModelRow, interval: timedelta
) -> dict[str, float]:
    return {
        "atalaia_batch_interval_seconds": interval.total_seconds(),
        "atalaia_batch_rows": tally.rows,
        "atalaia_batch_anomalies": tally.anomalies,
        "atalaia_batch_anomaly_ratio": tally.anomalies / tally.rows if tally.rows else 0.0,
        "atalaia_batch_max_z": tally.max_z,
        "atalaia_open_events": sum(event["is_open"] for event in events),
        "atalaia_model_version": model.version,
        "atalaia_champion_version": model.version,
        "atalaia_alpha": model.alpha,
    }


def retrain(monitor: Monitor, *, settings: Settings, after_drift: bool = False) -> RetrainResult:
    """Train a candidate on recent batches; promote it when it is better than the champion by
    ``retraining.min_improvement``, or, with ``after_drift`` (drift required the retraining),
    when it is not worse.

    The ranges and the gate are described in ``atalaia.promotion``. The comparison and the
    reason for the verdict are stored with the candidate (``evaluation``, ``status_reason``);
    a candidate that is not promoted stays a candidate, and can still be promoted by hand.
    Without a champion, or when the champion was trained on other features than the monitor
    now lists, the candidate is promoted without a comparison.
    """
    from atalaia.promotion import Contender, compare, retraining_ranges

    with _recorded(settings, monitor, "retrain", None, None) as run:
        with transaction(run.store) as session:
            ranges = retraining_ranges(session, monitor, run.monitor_id)
            rows = assemble_baseline(
                session, monitor, run.monitor_id, *ranges.baseline, newest=ranges.holdout[1]
            )
            fitted = fit_model(monitor, rows, settings.chunk_rows)
            current = champion(session, run.monitor_id)
            with _new_version(session, settings, monitor, run.monitor_id, rows, fitted) as model:
                comparison = None
                if current is None:
                    promote(session, model, "first model of the monitor")
                elif (change := _changed_setting(monitor, current)) is not None:
                    promote(session, model, f"version {current.version}: {change}")
                else:
                    comparison = compare(
                        session,
                        monitor,
                        run.monitor_id,
                        ranges,
                        _as_contender(session, current, monitor, ranges.holdout[0]),
                        Contender(
                            model.version, fitted.detector, fitted.calibrator, fitted.monitor
                        ),
                        after_drift=after_drift,
                    )
                    model.evaluation = comparison.as_dict()
                    if comparison.promote:
                        promote(session, model, comparison.reason)
                    else:
                        model.status_reason = comparison.reason
                finish_run(
                    session,
                    run.run_id,
                    RunStatus.SUCCESS,
                    rows=len(rows.frame),
                    model_id=model.id,
                    message=model.status_reason,
                )
            scorer = champion(session, run.monitor_id)
        run.figures = {
            **_training_figures(model, fitted),
            "atalaia_champion_version": scorer.version,
        }
    return RetrainResult(
        monitor=monitor.name,
        version=model.version,
        promoted=model.status == ModelStatus.CHAMPION,
        champion_version=scorer.version,
        reason=model.status_reason,
        baseline_start=rows.start,
        baseline_end=rows.end,
        baseline_rows=len(rows.frame),
        evaluation=model.evaluation,
    )


def check_drift(monitor: Monitor, until: datetime, *, settings: Settings) -> DriftResult:
    """Compare the champion's scores of the ``drift.window`` before ``until`` with its
    calibration scores (see ``atalaia.drift``); export the verdict as metrics.
    """
    from atalaia import drift  # scipy.stats: loaded only by the jobs that need it

    until = as_utc(until)
    start = until - monitor.drift.window_length
    with _recorded(settings, monitor, "drift", start, until) as run:
        with transaction(run.store) as session:
            model = _scoring_model(session, monitor, run.monitor_id)
            detector, calibrator, trained = _load(model, monitor)
            _, calibrator, _ = adaptation.in_effect(
                session, model, trained, until, detector, calibrator
            )
            scores = read_scores(session, run.monitor_id, start, until, model_id=model.id)
            scores = scores[scores["judged"]]  # what calibration's scores can be compared with
            check = drift.check_drift(
                scores["raw_score"].to_numpy(),
                scores["is_anomaly"].to_numpy(),
                calibrator.scores_,
                max_distance=monitor.drift.max_distance,
                min_rows=monitor.drift.min_rows,
            )
            finish_run(
                session,
                run.run_id,
                RunStatus.SUCCESS,
                rows=check.rows,
                anomalies=check.anomalies,
                model_id=model.id,
                message=check.reason,
            )
        run.figures = {
            "atalaia_recent_anomaly_ratio": check.anomaly_ratio,
            "atalaia_drift_statistic": check.distance,
            "atalaia_drift_detected": float(check.detected),
            "atalaia_champion_version": model.version,
        }
    return DriftResult(monitor.name, start, until, model.version, check)


def promote_version(
    monitor: Monitor, version: int, reason: str, *, settings: Settings
) -> RegistryChange:
    """Make version ``version`` the champion by hand, whatever its evaluation said."""
    with _recorded(settings, monitor, "promote", None, None) as run:
        with transaction(run.store) as session:
            if find_model(session, run.monitor_id, version) is None:
                raise UsageError(f"monitor {monitor.name}: no model version {version}")
            model = _scoring_model(session, monitor, run.monitor_id, version)
            if model.status == ModelStatus.CHAMPION:
                raise UsageError(f"monitor {monitor.name}: version {version} is the champion")
            _load(model, monitor)  # its files must be intact before it scores anything
            promote(session, model, reason)
            finish_run(session, run.run_id, RunStatus.SUCCESS, model_id=model.id, message=reason)
        run.figures = {"atalaia_champion_version": model.version}
    return RegistryChange(monitor.name, model.version, model.previous_champion, reason)


def rollback(monitor: Monitor, reason: str, *, settings: Settings) -> RegistryChange:
    """Retire the champion and restore the version it replaced."""
    with _recorded(settings, monitor, "rollback", None, None) as run:
        with transaction(run.store) as session:
            replaced = champion(session, run.monitor_id)
            try:
                restored = registry_rollback(session, run.monitor_id, reason)
            except LookupError as exc:
                raise UsageError(f"monitor {monitor.name}: {exc}") from exc
            _load(restored, monitor)
            finish_run(session, run.run_id, RunStatus.SUCCESS, model_id=restored.id, message=reason)
        run.figures = {"atalaia_champion_version": restored.version}
    return RegistryChange(monitor.name, restored.version, replaced.version, reason)


def _changed_setting(monitor: Monitor, model: ModelRow) -> str | None:
    """How ``monitor`` differs from the settings ``model`` was trained with, if it does."""
    if list(model.features) != list(monitor.features):
        return f"features are {monitor.features}, but the version was trained on {model.features}"
    recorded = bound_settings_of(model.artifact_path)
    return None if recorded is None else changed_setting(monitor, recorded)


def _load(model: ModelRow, monitor: Monitor) -> tuple[Detector, ConformalCalibrator, Monitor]:
    """A version's detector and calibrator, and ``monitor`` as the version was trained (its
    choices for ``auto`` settings in place); refused when ``monitor`` now differs from the
    settings the version was trained with (``atalaia.representation.as_trained``)."""
    detector, calibrator = load_model(model.artifact_path, model.artifact_sha256)
    recorded = bound_settings_of(model.artifact_path)
    return detector, calibrator, as_trained(monitor, recorded, model.version)


def _as_contender(
    session: Session, model: ModelRow, monitor: Monitor, holdout_start: datetime
) -> Contender:
    """The champion as it scored the held-out batches: its update in effect at their start,
    which has not learned them."""
    from atalaia.promotion import Contender

    detector, calibrator, trained = _load(model, monitor)
    detector, calibrator, _ = adaptation.in_effect(
        session, model, trained, holdout_start, detector, calibrator
    )
    return Contender(model.version, detector, calibrator, trained)


@contextmanager
def _new_version(
    session: Session,
    settings: Settings,
    monitor: Monitor,
    monitor_id: int,
    rows: Baseline,
    fitted: FittedModel,
) -> Iterator[ModelRow]:
    """Save a fitted model's files and add its version (a candidate) with its lineage.

    The files are removed again when the block fails, so no folder outlives its version; a
    folder that a killed run left for this version number is removed first.
    """
    number = next_version(session, monitor_id)
    folder = model_folder(settings.models_dir, monitor.name, number)
    for leftover in clear_leftovers(folder):
        log.warning("removed %s, left by an interrupted train of version %d", leftover, number)
    bound = bound_settings(monitor, fitted.chosen)
    sha256 = save_model(folder, fitted.detector, fitted.calibrator, bound)
    try:
        yield add_model(
            session,
            monitor_id=monitor_id,
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
        session.flush()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _training_figures(model: ModelRow, fitted: FittedModel) -> dict[str, float]:
    return {
        "atalaia_model_version": model.version,
        "atalaia_training_rows": fitted.train_rows,
        "atalaia_training_duration_seconds": fitted.seconds,
        "atalaia_training_loss": fitted.calibration_loss,
    }


@contextmanager
def _recorded(
    settings: Settings,
    monitor: Monitor,
    job: str,
    start: datetime | None,
    end: datetime | None,
    *,
    export: bool = True,
) -> Iterator[_Run]:
    """Record a run around a job's body: failures are stored and exported, then re-raised.

    Stale runs of earlier, killed processes are marked abandoned first (``atalaia.processes``);
    the run beats a heartbeat while its body works. A UsageError is recorded as ``refused``
    and exports nothing: a mistake in the command is not a failure of the job.
    ``export=False`` leaves a success's metrics to a later job (a failure is still exported).
    """
    store = require_current(settings.store_url, settings.connect_timeout)
    abandon_stale(settings, store)
    with transaction(store) as session:
        monitor_id = ensure_monitor(session, monitor.name, monitor.stored_config())
        run_id = start_run(session, monitor_id, job, start, end, host=this_host(), pid=os.getpid())
        run = _Run(store, monitor_id, run_id)
    began = time.perf_counter()
    try:
        with Heartbeat(store, run.run_id), blas_threads(settings.blas_threads):
            yield run
    except UsageError as exc:
        with transaction(store) as session:
            finish_run(session, run.run_id, RunStatus.REFUSED, message=str(exc))
        raise
    except Exception as exc:
        with transaction(store) as session:
            finish_run(
                session, run.run_id, RunStatus.FAILED, message=f"{type(exc).__name__}: {exc}"
            )
        metrics.export_failure(settings, monitor.name, job)
        raise
    if export:
        duration = time.perf_counter() - began
        metrics.export_success(settings, monitor.name, job, run.figures, duration)


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
