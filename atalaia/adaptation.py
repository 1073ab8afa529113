"""Learning the new normal: online updates of a version after each scored batch, and the
events they absorb.

The rule (``baseline.adapt``, docs/concepts.md): an unflagged step joins what the model has
learned as soon as it is scored; a flagged step without a label joins once it is
``adapt.after`` older than the newest scored batch (a change that lasted and that nobody
labelled is the new normal); a step inside a labelled incident never joins. Retraining
follows the same rule (``atalaia.training``); a detector that can learn online (``ar``'s
``partial_fit``) also learns each batch as it is scored, when ``adapt.online`` is on.

An update is recorded as the version's next numbered update (``storage.updates``), with the
detector and a calibrator whose held-out scores were scored again by the updated detector,
so calibration follows the model. The unflagged pool (``calibration.pool: unflagged``) keeps
each score as it was given, by the update in effect then.

A window is learned only when none of its steps is still held back (flagged and not yet
joined, or labelled), so a spike does not enter the model through the lags of the steps
after it before it has itself joined.
"""

from __future__ import annotations

import copy
import logging
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from atalaia.artifacts import bound_settings_of, clear_leftovers, load_model, save_model
from atalaia.config import Monitor
from atalaia.errors import EmptyBatchError
from atalaia.representation import detector_input, history_steps, judged, raw_scores
from atalaia.training import (
    Span,
    assemble_baseline,
    held_out_steps_scored,
    inside_spans,
    joined_until,
    landed_rows,
)
from detectors import ConformalCalibrator, Detector
from storage.labels import labels_overlapping
from storage.models import EventRow, ModelRow, ModelUpdateRow
from storage.scores import read_scores, unflagged_scores
from storage.updates import newest_update, record_update, update_in_effect

log = logging.getLogger(__name__)


def event_state(event: EventRow) -> str:
    """An event's state for people: open (it may still grow), absorbed ("new normal since"
    its start), both, or neither ("")."""
    states = ["open"] if event.is_open else []
    if event.absorbed_at is not None:
        since, absorbed = (f"{t:%Y-%m-%d %H:%M}" for t in (event.start_ts, event.absorbed_at))
        states.append(f"new normal since {since} (absorbed {absorbed})")
    return "; ".join(states)


def in_effect(
    session: Session,
    model: ModelRow,
    trained: Monitor,
    start: datetime,
    detector: Detector,
    calibrator: ConformalCalibrator,
) -> tuple[Detector, ConformalCalibrator, datetime | None]:
    """The detector and calibrator that score a batch of ``model`` (``trained``: the monitor
    as the version was trained) starting at ``start``:
    those of its update in effect then (``storage.updates.update_in_effect``), or the
    version's own, ``detector`` and ``calibrator``; and the time before which unflagged
    scores are already in that calibrator (``pooled_until``; None for the version's own)."""
    found = update_in_effect(session, model.id, start)
    if found is None:
        return detector, calibrator, None
    updated, recalibrated = load_model(found.artifact_path, found.artifact_sha256)
    return updated, recalibrated, pooled_until(trained, found.learned_end)


def learns_online(monitor: Monitor, detector: Detector) -> bool:
    """Whether ``monitor``'s model learns each batch as it is scored."""
    return monitor.baseline.adapt.online and hasattr(detector, "partial_fit")


def learn_batch(
    session: Session,
    monitor: Monitor,
    monitor_id: int,
    model: ModelRow,
    detector: Detector,
    start: datetime,
    end: datetime,
) -> ModelUpdateRow | None:
    """After scoring ``[start, end)`` with ``detector`` (``model``'s state in effect for it;
    ``monitor`` as the version was trained), learn the batch's joining steps and record the
    update, its files beside the version's. Nothing is learned by a model that does not
    learn online, for a batch older than the newest update's (a backfill is scored, not
    learned), nor twice for one batch."""
    if not learns_online(monitor, detector):
        return None
    began = time.perf_counter()
    newest = newest_update(session, model.id)
    learned_until = model.baseline_end if newest is None else newest.learned_end
    if start < learned_until:
        return None
    flagged_from = learned_until if newest is None else newest.flagged_through
    joined = joined_until(monitor, end)
    flagged_through = flagged_from if joined is None else max(flagged_from, joined)
    first = min(start, flagged_from)
    learned = _joining_windows(
        session, monitor, monitor_id, model, first, start, end, (flagged_from, flagged_through)
    )
    if learned is None:
        return None
    windows, flagged = learned
    forget = monitor.baseline.adapt.forget(end - learned_until)
    updated = copy.deepcopy(detector).partial_fit(windows, forget=forget)
    calibrator = _recalibrated(session, monitor, monitor_id, model, updated, end)
    number = 1 if newest is None else newest.number + 1
    folder = f"{model.artifact_path}.u{number:04d}"
    for leftover in clear_leftovers(Path(folder)):
        log.warning("removed %s, left by an interrupted update", leftover)
    sha256 = save_model(
        Path(folder), updated, calibrator, bound_settings_of(model.artifact_path) or {}
    )
    row = record_update(
        session,
        ModelUpdateRow(
            model_id=model.id,
            number=number,
            learned_start=start,
            learned_end=end,
            flagged_through=flagged_through,
            rows=len(windows),
            flagged_rows=flagged,
            seconds=time.perf_counter() - began,
            artifact_path=folder,
            artifact_sha256=sha256,
        ),
    )
    return row


def _joining_windows(
    session: Session,
    monitor: Monitor,
    monitor_id: int,
    model: ModelRow,
    first: datetime,
    start: datetime,
    end: datetime,
    flagged_span: tuple[datetime, datetime],
) -> tuple[pd.DataFrame, int] | None:
    """The windows that join now, and how many of them were flagged: unflagged judged steps
    of ``[start, end)``, and flagged steps in ``flagged_span``, outside labels, with no
    held-back step in their window. None when no window joins."""
    reach = monitor.step * history_steps(monitor)
    try:
        rows = landed_rows(session, monitor, monitor_id, first - reach, end, "the update")
    except EmptyBatchError:
        return None
    inputs = detector_input(rows, monitor)
    scores = read_scores(session, monitor_id, first, end, model_id=model.id)
    keyed = pd.MultiIndex.from_arrays([inputs.entity, inputs.ts])
    stored = scores.set_index(["entity", "ts"]).reindex(keyed)
    flag = stored["is_anomaly"].fillna(False).to_numpy(dtype=bool)
    scored = stored["judged"].fillna(False).to_numpy(dtype=bool)
    low, high = (np.datetime64(t.replace(tzinfo=None), "ns") for t in flagged_span)
    naive = inputs.ts.dt.tz_convert(None).to_numpy()
    labelled = inside_spans(
        pd.Series(inputs.entity), inputs.ts, _label_spans(session, monitor_id, first, end)
    ).to_numpy()
    in_batch = (naive >= np.datetime64(start.replace(tzinfo=None), "ns")) & (
        naive < np.datetime64(end.replace(tzinfo=None), "ns")
    )
    flag_joins = flag & (naive >= low) & (naive < high)
    joins = ((scored & ~flag & in_batch) | flag_joins) & ~labelled
    held = (flag & ~flag_joins) | labelled
    clear = ~_held_within_window(held, inputs.entity, inputs.ts, monitor)
    chosen = joins & clear & judged(inputs, monitor)
    if not chosen.any():
        return None
    return inputs.X[chosen], int((chosen & flag).sum())


def _held_within_window(
    held: np.ndarray, entity: np.ndarray, stamps: pd.Series, monitor: Monitor
) -> np.ndarray:
    """Whether a held-back row lies in each row's window: its entity's steps from
    ``detector.window - 1`` steps before it up to it."""
    codes = pd.factorize(entity)[0].astype(np.int64)
    steps = ((stamps - stamps.min()) // monitor.step).to_numpy(dtype=np.int64)
    keys = codes * (int(steps.max()) + monitor.detector.window + 1) + steps
    held_keys = np.sort(keys[held])
    within = np.searchsorted(held_keys, keys, "right") - np.searchsorted(
        held_keys, keys - monitor.detector.window, "right"
    )
    return within > 0


def _label_spans(session: Session, monitor_id: int, start: datetime, end: datetime) -> list[Span]:
    return [
        (label.entity, label.start_ts, label.end_ts)
        for label in labels_overlapping(session, monitor_id, start, end)
    ]


def _recalibrated(
    session: Session,
    monitor: Monitor,
    monitor_id: int,
    model: ModelRow,
    detector: Detector,
    end: datetime,
) -> ConformalCalibrator:
    """A calibrator for ``detector`` from the version's held-out baseline steps scored again
    by it (the baseline assembled and split as training does); with ``calibration.pool:
    unflagged``, also the newest ``pool_limit`` unflagged judged steps the version scored
    before ``pooled_until(end)``, scored again by it."""
    frame = assemble_baseline(
        session, monitor, monitor_id, model.baseline_start, model.baseline_end
    ).frame
    scores = [held_out_steps_scored(detector, frame, monitor)]
    if monitor.calibration.pool == "unflagged":
        scores.append(_pool_scored_again(session, monitor, monitor_id, model, detector, end))
    calibrator = ConformalCalibrator(monitor.calibration.alpha, monitor.calibration.tail_floor)
    return calibrator.fit(np.concatenate(scores))


def pooled_until(monitor: Monitor, learned_end: datetime) -> datetime:
    """The unflagged steps before this time are in the calibrator of an update that learned
    a batch ending at ``learned_end``: those a score's history older than the batch after it
    (``atalaia.scoring`` pools the rest step by step)."""
    return learned_end - monitor.step * history_steps(monitor)


def _pool_scored_again(
    session: Session,
    monitor: Monitor,
    monitor_id: int,
    model: ModelRow,
    detector: Detector,
    end: datetime,
) -> np.ndarray:
    """The newest ``calibration.pool_limit`` unflagged judged steps ``model`` scored before
    ``pooled_until(end)``, scored again by ``detector``. The updated model has learned most
    of them: for a linear ``ar`` with many steps per parameter their in-sample optimism is
    small, far smaller than the drift of scores given by its earlier states."""
    until = pooled_until(monitor, end)
    newest = unflagged_scores(session, monitor_id, model.id, until, monitor.calibration.pool_limit)
    if newest.empty:
        return np.empty(0)
    first = newest["ts"].iloc[0].to_pydatetime()
    stored = read_scores(session, monitor_id, first, until, model_id=model.id)
    pooled = stored[stored["judged"] & ~stored["is_anomaly"]]
    reach = monitor.step * history_steps(monitor)
    rows = landed_rows(session, monitor, monitor_id, first - reach, until, "the pool")
    inputs = detector_input(rows, monitor)
    wanted = pd.MultiIndex.from_frame(pooled[["entity", "ts"]])
    keyed = pd.MultiIndex.from_arrays([inputs.entity, inputs.ts])
    return raw_scores(detector, inputs, monitor)[keyed.isin(wanted)]


def mark_absorbed(session: Session, monitor: Monitor, monitor_id: int, end: datetime) -> None:
    """Once a batch ending at ``end`` is scored, mark the monitor's events (of any version)
    whose rows have joined the baseline (``training.joined_until``) and that began in no
    label as absorbed at ``end``: the change they found is the new normal since their
    start."""
    joined = joined_until(monitor, end)
    if joined is None:
        return
    events = session.scalars(
        select(EventRow).where(
            EventRow.monitor_id == monitor_id,
            EventRow.start_ts < joined,
            EventRow.absorbed_at.is_(None),
        )
    ).all()
    if not events:
        return
    spans = _label_spans(session, monitor_id, min(e.start_ts for e in events), end)
    starts = pd.Series([e.start_ts for e in events])
    labelled = inside_spans(pd.Series([e.entity for e in events]), starts, spans)
    for event, inside in zip(events, labelled, strict=True):
        if not inside:
            event.absorbed_at = end
