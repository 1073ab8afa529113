"""Training: assemble a baseline from landed batches, fit a detector, calibrate it.

The baseline is the monitor's accepted rows in a time range (or its last N batches), minus
rows inside labelled incidents and inside stored events (what a model already found
anomalous, so a retrained model does not learn it as normal). Its last
``calibration.fraction`` in time is held out: the detector is fitted on the earlier rows and
the conformal calibrator on the held-out ones, so calibration sees scores of rows the
detector never trained on.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

import detectors
from atalaia.auto import applied, choose
from atalaia.config import Monitor
from atalaia.errors import ConfigError, EmptyBatchError
from atalaia.landing import read_batch
from atalaia.representation import detector_input, judged, raw_scores
from atalaia.validation import entity_keys
from detectors import ConformalCalibrator, Detector
from storage.batches import batches_overlapping, latest_batches
from storage.events import events_overlapping
from storage.labels import labels_overlapping


@dataclass
class Baseline:
    """The normal rows a model is trained on, and their lineage."""

    start: datetime
    end: datetime
    frame: pd.DataFrame
    sha256: str


@dataclass
class FittedModel:
    """A fitted detector with its calibrator and how it was made: ``chosen`` holds the values
    chosen for the monitor's ``auto`` settings (by dotted name), ``monitor`` the monitor
    with them in place, as the model scores."""

    detector: Detector
    calibrator: ConformalCalibrator
    monitor: Monitor
    chosen: dict[str, Any]
    train_rows: int
    calibration_rows: int
    calibration_loss: float
    seconds: float


def assemble_baseline(
    session: Session,
    monitor: Monitor,
    monitor_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Baseline:
    """The baseline rows: ``[start, end)`` if given, else the monitor's baseline policy."""
    if start is None or end is None:
        if monitor.baseline.last_intervals is not None:
            batches = latest_batches(session, monitor_id, monitor.baseline.last_intervals)
            if not batches:
                raise EmptyBatchError(f"monitor {monitor.name}: no batch ingested to train on")
            start, end = batches[0].interval_start, batches[-1].interval_end
        else:
            start, end = monitor.baseline.start, monitor.baseline.end
    frame = landed_rows(session, monitor, monitor_id, start, end, "the baseline")
    frame = _without_known_anomalies(session, frame, monitor, monitor_id, start, end)
    frame = frame.reset_index(drop=True)
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values).hexdigest()
    return Baseline(start=start, end=end, frame=frame, sha256=digest)


def landed_rows(
    session: Session,
    monitor: Monitor,
    monitor_id: int,
    start: datetime,
    end: datetime,
    what: str,
) -> pd.DataFrame:
    """The accepted rows of ``[start, end)``, by time then entity; ``what`` names the range."""
    batches = batches_overlapping(session, monitor_id, start, end)
    frames = [read_batch(b.landing_path, b.content_sha256) for b in batches if b.row_count]
    if not frames:
        raise EmptyBatchError(
            f"monitor {monitor.name}: no ingested rows in {what} [{start}, {end}); "
            "ingest those intervals first"
        )
    frame = pd.concat(frames, ignore_index=True)
    stamps = frame[monitor.timestamp]
    frame = frame[(stamps >= start) & (stamps < end)]
    return frame.sort_values([monitor.timestamp, *monitor.entities], kind="stable")


def _without_known_anomalies(
    session: Session,
    frame: pd.DataFrame,
    monitor: Monitor,
    monitor_id: int,
    start: datetime,
    end: datetime,
) -> pd.DataFrame:
    """``frame`` without rows inside labels or inside events (of any model version)."""
    spans = [
        (label.entity, label.start_ts, label.end_ts)
        for label in labels_overlapping(session, monitor_id, start, end)
    ]
    spans += [
        (event.entity, event.start_ts, event.end_ts)
        for event in events_overlapping(session, monitor_id, start, end)
    ]
    inside = inside_spans(entity_keys(frame, monitor), frame[monitor.timestamp], spans)
    return frame[~inside]


Span = tuple[str | None, datetime, datetime]


def inside_spans(entities: pd.Series, stamps: pd.Series, spans: list[Span]) -> pd.Series:
    """Whether each row lies in a span: (entity, or None for all; start; end, inclusive)."""
    inside = pd.Series(False, index=stamps.index)
    for entity, first, last in spans:
        hit = (stamps >= first) & (stamps <= last)
        if entity is not None:
            hit &= entities == entity
        inside |= hit
    return inside


def _check_spread(monitor: Monitor, frame: pd.DataFrame) -> None:
    """Refuse a baseline whose features' spread overflows (a huge finite value): no detector
    can standardise it, and every score of such a model would be meaningless."""
    values = frame[monitor.features].to_numpy(dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        spread = np.nanstd(values, axis=0)
    for feature, column, width in zip(monitor.features, values.T, spread, strict=True):
        if not np.isfinite(width):
            raise EmptyBatchError(
                f"monitor {monitor.name}: baseline feature {feature} holds values too large to "
                f"standardise (largest {np.nanmax(np.abs(column)):.3g}); label the incident "
                "that holds them (atalaia labels add) or fix them at the source"
            )


def fit_model(monitor: Monitor, baseline: Baseline) -> FittedModel:
    """Fit the monitor's detector on the baseline and calibrate it on its held-out tail.

    The held-out steps are scored the way scoring scores a batch (windows, smoothing), with
    the training rows before them as context. Settings asked as ``auto`` are chosen first,
    from the rows before the held-out steps (``atalaia.auto``).
    """
    began = time.perf_counter()
    stamps = baseline.frame[monitor.timestamp]
    _check_spread(monitor, baseline.frame)
    learned = stamps < held_out_start(stamps.min(), stamps.max(), monitor)
    chosen = choose(monitor, baseline.frame[learned])
    monitor = applied(monitor, chosen)
    steps = (stamps.max() - stamps.min()) // monitor.step + 1
    needed = monitor.detector.window + monitor.detector.smoothing - 1
    if needed >= steps:
        raise EmptyBatchError(
            f"monitor {monitor.name}: detector.window {monitor.detector.window} and smoothing "
            f"{monitor.detector.smoothing} span {needed} steps, but the baseline holds only "
            f"{steps}: nothing would be left to train on"
        )
    inputs = detector_input(baseline.frame, monitor)
    first, last = inputs.ts.min(), inputs.ts.max()
    longest = max(monitor.season_steps, default=0) * monitor.step
    if longest and last - first < 2 * longest - monitor.step:
        raise EmptyBatchError(
            f"monitor {monitor.name}: baseline spans {last - first}, less than two seasons of "
            f"{longest}: a window's seasonal lags need a season of history before it"
        )
    held_out = (inputs.ts >= held_out_start(first, last, monitor)).to_numpy()
    if (~held_out).sum() < 2 or held_out.sum() < 1:
        raise EmptyBatchError(
            f"monitor {monitor.name}: baseline of {len(baseline.frame)} rows is too small to "
            "train and calibrate"
        )
    try:
        detector = detectors.create(monitor.detector.kind, **monitor.detector.params)
    except ValueError as exc:
        raise ConfigError(f"monitor {monitor.name}: detector: {exc}") from exc
    detector.fit(inputs.X[~held_out])
    held_out_scores = raw_scores(detector, inputs, monitor)[held_out & judged(inputs, monitor)]
    try:
        calibrator = ConformalCalibrator(
            monitor.calibration.alpha, monitor.calibration.tail_floor
        ).fit(held_out_scores)
    except ValueError as exc:
        raise EmptyBatchError(f"monitor {monitor.name}: calibration: {exc}") from exc
    return FittedModel(
        detector=detector,
        calibrator=calibrator,
        monitor=monitor,
        chosen=chosen,
        train_rows=int((~held_out).sum()),
        calibration_rows=int(held_out.sum()),
        calibration_loss=float(held_out_scores.mean()),
        seconds=time.perf_counter() - began,
    )


def held_out_start(first: datetime, last: datetime, monitor: Monitor) -> datetime:
    """Where the held-out calibration steps of a baseline from ``first`` to ``last`` begin:
    its last ``calibration.fraction`` in time."""
    return first + (last - first) * (1 - monitor.calibration.fraction)
