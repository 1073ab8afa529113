"""Metrics for judging anomaly detectors against labels.

Three families, to be reported side by side:

* threshold-free: AUC-ROC and AUC-PR (average precision) of the raw scores;
* event counting as the Orion benchmark does it for SMAP and NAB ("overlap segment"):
  a labelled interval overlapped by at least one detected interval is a true positive, a
  detected interval that overlaps no labelled interval a false positive, a labelled interval
  that no detection overlaps a false negative; F1 = 2TP / (2TP + FP + FN);
* point-wise F1, with and without point adjustment.

Point adjustment (a labelled segment counts as wholly detected as soon as one of its points
is flagged) inflates results: a random score reaches published numbers with it (Kim et al.,
"Towards a Rigorous Evaluation of Time-Series Anomaly Detection", AAAI 2022). Report it only
beside the unadjusted point F1, as :class:`PointMetrics` does.

An event is an inclusive range ``(start, end)``: row indices, or any comparable values such
as timestamps.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, roc_auc_score

from atalaia.events import event_runs, reach_steps

Event = tuple[Any, Any]


def _binary(values: ArrayLike, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D bool array; raise ValueError unless it holds only 0/1."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 or True/False")
    return array.astype(bool)


def _same_length(y_true: np.ndarray, other: np.ndarray, name: str) -> None:
    if len(other) != len(y_true):
        raise ValueError(f"y_true has {len(y_true)} values but {name} has {len(other)}")


def _checked_scores(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    labels = _binary(y_true, "y_true")
    values = np.asarray(scores, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {values.shape}")
    _same_length(labels, values, "scores")
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise ValueError(f"scores contain {bad} NaN or infinite values; AUC needs finite scores")
    if labels.all() or not labels.any():
        raise ValueError(
            "y_true holds a single class (no anomaly or only anomalies); AUC is undefined"
        )
    return labels, values


def auc_roc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve of ``scores`` (higher = more anomalous) against 0/1 labels."""
    labels, values = _checked_scores(y_true, scores)
    return float(roc_auc_score(labels, values))


def auc_pr(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the precision-recall curve, as average precision (sklearn's definition)."""
    labels, values = _checked_scores(y_true, scores)
    return float(average_precision_score(labels, values))


def flags_to_events(flags: ArrayLike) -> list[tuple[int, int]]:
    """Inclusive index ranges ``(start, end)`` of the runs of consecutive True flags."""
    flagged = _binary(flags, "flags")
    edges = np.diff(np.concatenate(([0], flagged.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return [(int(start), int(end)) for start, end in zip(starts, ends, strict=True)]


def detected_events(flags: ArrayLike, max_gap: int = 0, lead: int = 0) -> list[tuple[int, int]]:
    """Events as a monitor forms them from flags, in rows (``atalaia.events`` in time).

    Each run of flags becomes an event that starts ``lead`` rows before its first flag (not
    before row 0): with scores smoothed over ``k`` steps, ``lead = k - 1`` rows, the steps
    whose raw scores the first flagged score averages. Events merge when at most ``max_gap``
    unflagged rows lie between them or when their spans then touch.
    """
    rows = np.flatnonzero(_binary(flags, "flags"))
    return [
        (max(0, int(rows[first]) - lead), int(rows[stop - 1]))
        for first, stop in event_runs(rows, reach_steps(max_gap, lead))
    ]


def labels_to_events(labels: ArrayLike) -> list[tuple[int, int]]:
    """Inclusive index ranges of the labelled segments of a 0/1 label array."""
    return flags_to_events(_binary(labels, "labels"))


def events_to_flags(events: Sequence[tuple[int, int]], length: int) -> np.ndarray:
    """Bool array of ``length`` with the inclusive index ranges of ``events`` set to True."""
    flags = np.zeros(length, dtype=bool)
    for start, end in _checked_events(events, "events"):
        if start < 0 or end >= length:
            raise ValueError(f"event ({start}, {end}) lies outside 0..{length - 1}")
        flags[start : end + 1] = True
    return flags


def events_overlap(first: Event, second: Event) -> bool:
    """Whether two inclusive ranges share at least one point."""
    return first[0] <= second[1] and second[0] <= first[1]


def _checked_events(events: Sequence[Event], name: str) -> list[Event]:
    checked = [(start, end) for start, end in events]
    for start, end in checked:
        if end < start:
            raise ValueError(f"{name} holds ({start}, {end}), whose end precedes its start")
    return checked


def _count_overlapping(targets: list[Event], others: list[Event]) -> int:
    """How many of ``targets`` overlap at least one of ``others`` (both inclusive ranges)."""
    if not others:
        return 0
    ordered = sorted(others, key=lambda event: event[0])
    starts = [start for start, _ in ordered]
    furthest_end = list(itertools.accumulate((end for _, end in ordered), max))
    count = 0
    for start, end in targets:
        # `others` starting at or before `end` are candidates; one of them overlaps
        # the target iff the furthest end among them reaches `start`.
        n_candidates = bisect.bisect_right(starts, end)
        if n_candidates and furthest_end[n_candidates - 1] >= start:
            count += 1
    return count


@dataclass(frozen=True)
class EventCounts:
    """Orion-style event counts; add them up over channels or files with ``+``.

    Where a ratio is undefined (a zero denominator: no events on either side), it is 0.0.
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: EventCounts) -> EventCounts:
        return EventCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 0.0 when nothing was detected."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 0.0 when nothing was labelled."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """2TP / (2TP + FP + FN); 0.0 when there are no events at all."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def event_counts(true_events: Sequence[Event], detected_events: Sequence[Event]) -> EventCounts:
    """Count events as Orion's overlap-segment method does.

    TP: labelled ranges overlapped by at least one detected range (one detection covering two
    labelled ranges gives two TPs); FN: the other labelled ranges; FP: detected ranges that
    overlap no labelled range. Ranges are inclusive, so sharing a single point is an overlap
    (Orion pads integer ends by one and tests a strict overlap, which is the same thing).
    """
    truth = _checked_events(true_events, "true_events")
    detected = _checked_events(detected_events, "detected_events")
    tp = _count_overlapping(truth, detected)
    fp = len(detected) - _count_overlapping(detected, truth)
    return EventCounts(tp=tp, fp=fp, fn=len(truth) - tp)


def point_adjust(y_true: ArrayLike, flags: ArrayLike) -> np.ndarray:
    """Flags with every labelled segment that holds a flagged point flagged entirely."""
    labels = _binary(y_true, "y_true")
    adjusted = _binary(flags, "flags").copy()
    _same_length(labels, adjusted, "flags")
    for start, end in flags_to_events(labels):
        if adjusted[start : end + 1].any():
            adjusted[start : end + 1] = True
    return adjusted


def _point_scores(labels: np.ndarray, flagged: np.ndarray) -> tuple[float, float, float]:
    """Point-wise (precision, recall, F1), each 0.0 where its denominator is 0."""
    tp = int((labels & flagged).sum())
    fp = int((~labels & flagged).sum())
    fn = int((labels & ~flagged).sum())
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


@dataclass(frozen=True)
class PointMetrics:
    """Point-wise precision/recall/F1, unadjusted and with point adjustment (inflated)."""

    precision: float
    recall: float
    f1: float
    precision_point_adjusted: float
    recall_point_adjusted: float
    f1_point_adjusted: float


def point_metrics(y_true: ArrayLike, flags: ArrayLike) -> PointMetrics:
    """Point-wise metrics of 0/1 ``flags`` against 0/1 labels, with and without adjustment."""
    labels = _binary(y_true, "y_true")
    flagged = _binary(flags, "flags")
    _same_length(labels, flagged, "flags")
    plain = _point_scores(labels, flagged)
    adjusted = _point_scores(labels, point_adjust(labels, flagged))
    return PointMetrics(*plain, *adjusted)


def point_f1(y_true: ArrayLike, flags: ArrayLike) -> float:
    """Point-wise F1 of ``flags`` (0.0 when there is no labelled and no flagged point)."""
    return point_metrics(y_true, flags).f1


def point_adjusted_f1(y_true: ArrayLike, flags: ArrayLike) -> float:
    """Point-adjusted F1; inflated (Kim et al., AAAI 2022), report it only beside point_f1."""
    return point_metrics(y_true, flags).f1_point_adjusted


@dataclass(frozen=True)
class EvaluationReport:
    """Threshold-free metrics of a score, plus event and point metrics of its flags."""

    auc_roc: float
    auc_pr: float
    events: EventCounts | None = None
    points: PointMetrics | None = None

    def as_row(self) -> dict[str, float | int]:
        """Flat mapping of metric name to value, one row of a result table."""
        row: dict[str, float | int] = {"auc_roc": self.auc_roc, "auc_pr": self.auc_pr}
        if self.events is not None:
            row |= {
                "event_tp": self.events.tp,
                "event_fp": self.events.fp,
                "event_fn": self.events.fn,
                "event_f1": self.events.f1,
            }
        if self.points is not None:
            row |= {"point_f1": self.points.f1, "point_f1_pa": self.points.f1_point_adjusted}
        return row


def evaluate_scores(
    y_true: ArrayLike,
    scores: ArrayLike,
    flags: ArrayLike | None = None,
    groups: ArrayLike | None = None,
    max_gap: int = 0,
    lead: int = 0,
) -> EvaluationReport:
    """AUC-ROC and AUC-PR of ``scores``; with ``flags``, also event counts and point F1s.

    ``groups`` (e.g. each row's entity) keeps events and point adjustment inside each
    group's rows, which must be in time order within the group; event counts are summed.
    Flags form events as :func:`detected_events` does with ``max_gap`` and ``lead``.
    """
    report = EvaluationReport(auc_roc=auc_roc(y_true, scores), auc_pr=auc_pr(y_true, scores))
    if flags is None:
        return report
    labels = _binary(y_true, "y_true")
    flagged = _binary(flags, "flags")
    _same_length(labels, flagged, "flags")
    keys = np.zeros(len(labels)) if groups is None else np.asarray(groups)
    _same_length(labels, keys, "groups")
    events = EventCounts()
    adjusted = np.zeros_like(flagged)
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        truth, found = labels[rows], flagged[rows]
        events += event_counts(flags_to_events(truth), detected_events(found, max_gap, lead))
        adjusted[rows] = point_adjust(truth, found)
    plain = _point_scores(labels, flagged)
    return EvaluationReport(
        auc_roc=report.auc_roc,
        auc_pr=report.auc_pr,
        events=events,
        points=PointMetrics(*plain, *_point_scores(labels, adjusted)),
    )
