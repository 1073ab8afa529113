"""Candidate against champion: which recent rows a retrained model learns from and is judged
on, how both models do there, and whether the candidate may replace the champion.

Retraining takes the monitor's newest batches: the newest ``retraining.holdout_intervals`` of
them are held out, and the candidate learns from the ``retraining.intervals`` batches before
(minus labelled incidents and stored events, see ``atalaia.training``). Neither model has
seen the held-out rows, so both are scored on them with their own calibration. The
candidate must first be not worse:

- false alarms: on the held-out rows outside labelled spans, it may flag no more rows than
  the larger of the champion's count and the count a calibrated model stays under (the 99th
  percentile of Binomial(rows, alpha)). A count is all the gate uses, so it compares any two
  detectors, whatever the scale of their raw scores.
- labels: when labelled incidents fall in the retraining range, the candidate's AUC telling
  their rows from the held-out rows may be at most ``retraining.max_auc_drop`` below the
  champion's.

A candidate that is not worse is promoted when drift required the retraining (the champion's
scores no longer look like its calibration), or when it is better by the margin
``retraining.min_improvement`` (m): the champion flagged more than the calibrated bound and
the candidate flags at most (1 - m) times as many, or the candidate's AUC shortfall
(1 - AUC) is at most (1 - m) times the champion's. Otherwise it stays a candidate, so
retraining again on the same data does not churn the champion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binom
from sqlalchemy.orm import Session

from atalaia.config import Monitor, Retraining
from atalaia.errors import EmptyBatchError
from atalaia.evaluation import auc_roc
from atalaia.scoring import score_frame
from atalaia.training import Span, inside_spans, landed_rows
from detectors import ConformalCalibrator, Detector
from storage.batches import batches_overlapping, latest_batches
from storage.labels import labels_overlapping

# The calibrated bound on false alarms is this quantile of Binomial(rows, alpha).
BOUND_QUANTILE = 0.99


@dataclass(frozen=True)
class RetrainingRanges:
    """What a candidate learns from (``baseline``) and is judged on (``holdout``)."""

    baseline: tuple[datetime, datetime]
    holdout: tuple[datetime, datetime]


@dataclass(frozen=True)
class Contender:
    """A model version taking part in a comparison, with the monitor as it was trained
    (its choices for ``auto`` settings in place, see ``atalaia.auto``)."""

    version: int
    detector: Detector
    calibrator: ConformalCalibrator
    monitor: Monitor


@dataclass
class Performance:
    """How one model did on the held-out rows (and on labelled incidents, if any)."""

    version: int
    rows: int
    false_alarms: int
    false_alarm_rate: float
    median_score: float
    incident_rows: int
    auc: float | None


@dataclass
class Comparison:
    """Both models' performance, the verdict and its reason, as stored with the candidate."""

    holdout_start: datetime
    holdout_end: datetime
    alpha: float
    false_alarm_bound: int
    champion: Performance
    candidate: Performance
    promote: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601) for the registry's ``evaluation`` column."""
        document = asdict(self)
        document["holdout_start"] = self.holdout_start.isoformat()
        document["holdout_end"] = self.holdout_end.isoformat()
        return document


def retraining_ranges(session: Session, monitor: Monitor, monitor_id: int) -> RetrainingRanges:
    """The baseline and held-out ranges of a retraining, from the newest batches."""
    holdout = monitor.retraining.holdout_intervals
    learn = monitor.retraining.intervals or _baseline_intervals(session, monitor, monitor_id)
    batches = latest_batches(session, monitor_id, learn + holdout)
    if len(batches) <= holdout:
        raise EmptyBatchError(
            f"monitor {monitor.name}: {len(batches)} batch(es) ingested; retraining needs more "
            f"than the {holdout} it holds out"
        )
    learned, held = batches[:-holdout], batches[-holdout:]
    return RetrainingRanges(
        baseline=(learned[0].interval_start, learned[-1].interval_end),
        holdout=(held[0].interval_start, held[-1].interval_end),
    )


def _baseline_intervals(session: Session, monitor: Monitor, monitor_id: int) -> int:
    if monitor.baseline.last_intervals is not None:
        return monitor.baseline.last_intervals
    start, end = monitor.baseline.start, monitor.baseline.end
    count = len(batches_overlapping(session, monitor_id, start, end))
    if count == 0:
        raise EmptyBatchError(
            f"monitor {monitor.name}: no batch of the baseline range is ingested, so the number "
            "of batches to retrain on is unknown; set retraining.intervals"
        )
    return count


def compare(
    session: Session,
    monitor: Monitor,
    monitor_id: int,
    ranges: RetrainingRanges,
    champion: Contender,
    candidate: Contender,
    *,
    after_drift: bool = False,
) -> Comparison:
    """Score both models on the held-out rows (and labelled incidents); decide.

    ``after_drift``: drift required this retraining, so a candidate not worse is promoted.
    """
    start, end = ranges.baseline[0], ranges.holdout[1]
    labels = labels_overlapping(session, monitor_id, start, end)
    labelled: list[Span] = [(label.entity, label.start_ts, label.end_ts) for label in labels]
    incidents: list[Span] = [
        (label.entity, label.start_ts, label.end_ts) for label in labels if label.kind == "incident"
    ]
    held_out = landed_rows(session, monitor, monitor_id, *ranges.holdout, "the held-out range")
    # Incident rows may lie anywhere in the range: read it all only when there are some.
    whole = (
        landed_rows(session, monitor, monitor_id, start, end, "the retraining range")
        if incidents
        else None
    )
    before, after = (
        _performance(contender, held_out, labelled, whole, incidents)
        for contender in (champion, candidate)
    )
    bound = int(binom.ppf(BOUND_QUANTILE, after.rows, candidate.calibrator.alpha))
    promote, reason = _verdict(before, after, bound, monitor.retraining, after_drift)
    return Comparison(
        holdout_start=ranges.holdout[0],
        holdout_end=ranges.holdout[1],
        alpha=candidate.calibrator.alpha,
        false_alarm_bound=bound,
        champion=before,
        candidate=after,
        promote=promote,
        reason=reason,
    )


def _performance(
    contender: Contender,
    held_out: pd.DataFrame,
    labelled: list[Span],
    whole: pd.DataFrame | None,
    incidents: list[Span],
) -> Performance:
    scores = score_frame(held_out, contender.monitor, contender.detector, contender.calibrator)
    normal = scores[~inside_spans(scores["entity"], scores["ts"], labelled)]
    positive = normal.iloc[:0]
    if whole is not None:
        everything = score_frame(whole, contender.monitor, contender.detector, contender.calibrator)
        positive = everything[inside_spans(everything["entity"], everything["ts"], incidents)]
    auc = None
    if len(positive) and len(normal):
        truth = np.r_[np.ones(len(positive)), np.zeros(len(normal))]
        auc = auc_roc(truth, np.r_[positive["raw_score"], normal["raw_score"]])
    flagged = int(normal["is_anomaly"].sum())
    return Performance(
        version=contender.version,
        rows=len(normal),
        false_alarms=flagged,
        false_alarm_rate=flagged / len(normal) if len(normal) else 0.0,
        median_score=float(normal["raw_score"].median()) if len(normal) else float("nan"),
        incident_rows=len(positive),
        auc=auc,
    )


def _verdict(
    champion: Performance,
    candidate: Performance,
    bound: int,
    policy: Retraining,
    after_drift: bool,
) -> tuple[bool, str]:
    if candidate.rows == 0:
        return False, (
            f"kept version {champion.version}: no held-out rows outside labelled spans to "
            "compare on"
        )
    allowed = max(bound / candidate.rows, champion.false_alarm_rate)
    alarms = (
        f"{candidate.false_alarms} false alarms on {candidate.rows} held-out rows against the "
        f"champion's {champion.false_alarms} (a calibrated model stays under {bound})"
    )
    if candidate.false_alarm_rate > allowed:
        return False, f"kept version {champion.version}: the candidate raised {alarms}"
    labels = ""
    with_labels = candidate.auc is not None and champion.auc is not None
    if with_labels:
        labels = f"; AUC on labelled incidents {candidate.auc:.3f} against {champion.auc:.3f}"
        if candidate.auc < champion.auc - policy.max_auc_drop:
            return False, (
                f"kept version {champion.version}: the candidate tells labelled incidents "
                f"apart worse{labels}"
            )
    if after_drift:
        return True, (
            f"drift required retraining and it is not worse than version {champion.version}: "
            f"{alarms}{labels}"
        )
    keep = 1 - policy.min_improvement
    better = []
    if champion.false_alarms > bound and candidate.false_alarms <= keep * champion.false_alarms:
        better.append("false alarms")
    if with_labels and champion.auc < 1 and 1 - candidate.auc <= keep * (1 - champion.auc):
        better.append("AUC shortfall")
    margin = f"{policy.min_improvement:.0%}"
    if better:
        return True, (
            f"better than version {champion.version} by at least {margin} "
            f"({' and '.join(better)}): {alarms}{labels}"
        )
    return False, (
        f"kept version {champion.version}: not worse, but not better by {margin} "
        f"(retraining.min_improvement) and no drift required it: {alarms}{labels}"
    )
