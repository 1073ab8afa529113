"""Training: assemble a baseline from landed batches, fit a detector, calibrate it.

The baseline is the monitor's accepted rows in a time range (or its last N batches), minus
rows inside labelled incidents and inside stored events (what a model already found
anomalous, so a retrained model does not learn it as normal) that are less than
``baseline.adapt.after`` older than the newest scored batch: an event older than that,
with no label, was a lasting change nobody called an incident, and joins
(``atalaia.adaptation``). Its last
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
from atalaia.representation import detector_input, entity_pieces, judged, raw_scores
from atalaia.settings import DEFAULT_CHUNK_ROWS
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
    newest: datetime | None = None,
) -> Baseline:
    """The baseline rows: ``[start, end)`` if given, else the monitor's baseline policy;
    ``newest``: the end of the newest scored batch (default: the baseline's end)."""
    if start is None or end is None:
        if monitor.baseline.last_intervals is not None:
            batches = latest_batches(session, monitor_id, monitor.baseline.last_intervals)
            if not batches:
                raise EmptyBatchError(f"monitor {monitor.name}: no batch ingested to train on")
            start, end = batches[0].interval_start, batches[-1].interval_end
        else:
            start, end = monitor.baseline.start, monitor.baseline.end
    frame = landed_rows(session, monitor, monitor_id, start, end, "the baseline")
    joined_before = joined_until(monitor, newest or end)
    frame = _without_known_anomalies(session, frame, monitor, monitor_id, start, end, joined_before)
    if frame.empty:
        raise EmptyBatchError(
            f"monitor {monitor.name}: every row of the baseline [{start}, {end}) lies in a "
            "labelled incident or a recent event: nothing normal to train on"
        )
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
    joined_before: datetime | None,
) -> pd.DataFrame:
    """``frame`` without rows inside labels, or inside events (of any model version) at or
    after ``joined_before`` (None: all of every event's rows)."""
    spans = [
        (label.entity, label.start_ts, label.end_ts)
        for label in labels_overlapping(session, monitor_id, start, end)
    ]
    joined_before = start if joined_before is None else max(start, joined_before)
    spans += [
        (event.entity, max(event.start_ts, joined_before), event.end_ts)
        for event in events_overlapping(session, monitor_id, joined_before, end)
    ]
    inside = inside_spans(entity_keys(frame, monitor), frame[monitor.timestamp], spans)
    return frame[~inside]


Span = tuple[str | None, datetime, datetime]


def joined_until(monitor: Monitor, newest: datetime) -> datetime | None:
    """Flagged rows without a label before this time have joined the baseline, once the
    newest scored batch ended at ``newest`` (``baseline.adapt.after``); None: none join."""
    delay = monitor.baseline.adapt.delay
    return None if delay is None else newest - delay


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


def fit_model(
    monitor: Monitor, baseline: Baseline, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> FittedModel:
    """Fit the monitor's detector on the baseline and calibrate it on its held-out tail.

    The held-out steps are scored the way scoring scores a batch (windows, smoothing), with
    the training rows before them as context. Settings asked as ``auto`` are chosen first,
    from the rows before the held-out steps (``atalaia.auto``). The detector's inputs are
    built for about ``chunk_rows`` rows of whole entities at a time, so only the training
    rows (at most ``baseline.max_train_rows``: a seeded uniform sample) are held at once.
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
    first, last = stamps.min(), stamps.max()
    longest = max(monitor.season_steps, default=0) * monitor.step
    if longest and last - first < 2 * longest - monitor.step:
        raise EmptyBatchError(
            f"monitor {monitor.name}: baseline spans {last - first}, less than two seasons of "
            f"{longest}: a window's seasonal lags need a season of history before it"
        )
    cut = held_out_start(first, last, monitor)
    sample = TrainingSample(monitor.baseline.max_train_rows)
    calibration_rows = 0
    for piece in entity_pieces(baseline.frame, monitor, chunk_rows):
        inputs = detector_input(piece, monitor)
        held_out = (inputs.ts >= cut).to_numpy()
        sample.add(inputs.X[~held_out])
        calibration_rows += int(held_out.sum())
    if sample.seen < 2 or calibration_rows < 1:
        raise EmptyBatchError(
            f"monitor {monitor.name}: baseline of {len(baseline.frame)} rows is too small to "
            "train and calibrate"
        )
    try:
        detector = detectors.create(monitor.detector.kind, **monitor.detector.params)
    except ValueError as exc:
        raise ConfigError(f"monitor {monitor.name}: detector: {exc}") from exc
    training = sample.rows()
    detector.fit(training)
    held_out_scores = held_out_steps_scored(detector, baseline.frame, monitor, chunk_rows)
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
        train_rows=len(training),
        calibration_rows=calibration_rows,
        calibration_loss=float(held_out_scores.mean()),
        seconds=time.perf_counter() - began,
    )


def held_out_steps_scored(
    detector: Detector, frame: pd.DataFrame, monitor: Monitor, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> np.ndarray:
    """``detector``'s scores of the baseline ``frame``'s held-out steps (those judged), as
    scoring scores a batch: what calibrates it."""
    stamps = frame[monitor.timestamp]
    cut = held_out_start(stamps.min(), stamps.max(), monitor)
    return np.concatenate(
        [
            raw_scores(detector, inputs, monitor)[
                (inputs.ts >= cut).to_numpy() & judged(inputs, monitor)
            ]
            for inputs in (
                detector_input(piece, monitor)
                for piece in entity_pieces(frame, monitor, chunk_rows)
            )
        ]
    )


def held_out_start(first: datetime, last: datetime, monitor: Monitor) -> datetime:
    """Where the held-out calibration steps of a baseline from ``first`` to ``last`` begin:
    its last ``calibration.fraction`` in time."""
    return first + (last - first) * (1 - monitor.calibration.fraction)


class TrainingSample:
    """A uniform random sample of at most ``size`` of the rows added (all when None), in the
    order they were added, drawn with a fixed seed: bottom-k sampling, each row keeps a
    random key and the ``size`` smallest keys win, so at most ``size`` rows plus one
    piece are held at once."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.seen = 0
        self._pieces: list[pd.DataFrame] = []
        self._keys = np.empty(0)
        self._random = np.random.default_rng(0)

    def add(self, rows: pd.DataFrame) -> None:
        """Offer ``rows`` to the sample."""
        self.seen += len(rows)
        self._pieces.append(rows)
        if self.size is None:
            return
        self._keys = np.concatenate([self._keys, self._random.random(len(rows))])
        if len(self._keys) > self.size:
            kept = np.sort(np.argpartition(self._keys, self.size)[: self.size])
            self._pieces = [pd.concat(self._pieces).iloc[kept]]
            self._keys = self._keys[kept]

    def rows(self) -> pd.DataFrame:
        """The sampled rows."""
        return pd.concat(self._pieces).reset_index(drop=True)
