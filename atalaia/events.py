"""Events: consecutive anomalous scores of one entity merged into one incident.

Two anomalous rows of an entity belong to the same event when at most ``max_gap`` data
steps of normal rows lie between them. An event starts where the evidence for its first
anomaly starts: with scores smoothed over ``k`` steps (``detector.smoothing``), ``k - 1``
steps before that anomaly, since its score averages those steps' raw scores; two events whose
spans then touch are one. An event is open while it could still grow: its last anomaly is
within reach of the entity's newest score.

An event's top features are those with the largest mean share over its anomalous rows (a
row's share of a feature not among its top features counts as 0), so a feature's share of an
event is its share of the typical anomalous row, and one extreme row cannot drown the others
as a sum of log-likelihoods would. Each carries ``share`` and ``contribution`` (the summed
raw attribution, in the detector's units).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from atalaia.attribution import stored_shares
from atalaia.scoring import TOP_FEATURES
from storage.events import Event, FeatureShare, events_overlapping, replace_events
from storage.scores import newest_scores, read_scores


def reach_steps(max_gap: int, lead: int) -> int:
    """How many steps apart two anomalies of one event may lie: ``max_gap`` normal steps
    between them, or less than the ``lead`` by which the later one's event would start
    (spans that touch are one event)."""
    return max(max_gap, lead) + 1


def event_runs(
    positions: np.ndarray, reach: int, groups: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """The runs of anomalies that form events, as ``(first, stop)`` indices into ``positions``.

    ``positions`` are the anomalies' places (integer times or row numbers), ascending within
    each group; a new event starts at each group's first anomaly and after each step longer
    than ``reach``. This is the one rule for events: the monitor's (in time) and the
    evaluation's (in rows, :func:`atalaia.evaluation.detected_events`).
    """
    if len(positions) == 0:
        return []
    starts = np.diff(positions) > reach
    if groups is not None:
        starts |= groups[1:] != groups[:-1]
    bounds = np.r_[0, np.flatnonzero(starts) + 1, len(positions)]
    return [(int(first), int(stop)) for first, stop in itertools.pairwise(bounds)]


def detect_events(
    anomalies: pd.DataFrame,
    newest: Mapping[str, datetime],
    reach: pd.Timedelta,
    lead: pd.Timedelta,
) -> list[Event]:
    """Events in the anomalous scores ``anomalies`` (the store's layout); anomalies at most
    ``reach`` apart merge, and each event starts ``lead`` before its first anomaly.

    ``newest`` holds each entity's newest score (anomalous or not): an event is open while
    that is within ``reach`` of its end.
    """
    if anomalies.empty:
        return []
    rows = anomalies.sort_values(["entity", "ts"], kind="stable")
    entities = rows["entity"].to_numpy()
    stamps = pd.DatetimeIndex(rows["ts"]).tz_convert("UTC")
    z = rows["z"].to_numpy(dtype=float)
    features = rows["top_features"].tolist()
    nanoseconds = stamps.as_unit("ns").asi8
    events: list[Event] = []
    for first, stop in event_runs(nanoseconds, pd.Timedelta(reach).value, entities):
        entity, end = entities[first], stamps[stop - 1]
        peak = first + int(np.argmax(np.where(np.isnan(z[first:stop]), -np.inf, z[first:stop])))
        events.append(
            Event(
                entity=entity,
                start_ts=(stamps[first] - lead).to_pydatetime(),
                end_ts=end.to_pydatetime(),
                peak_ts=stamps[peak].to_pydatetime(),
                peak_z=float(z[peak]),
                anomalies=int(stop - first),
                is_open=bool(pd.Timestamp(newest[entity]) - end < reach),
                top_features=_event_top_features(features[first:stop]),
            )
        )
    return events


def _event_top_features(per_row: list) -> list[FeatureShare]:
    shares: dict[str, float] = defaultdict(float)
    totals: dict[str, float] = defaultdict(float)
    for features in per_row:
        items = features or []
        for item, share in zip(items, stored_shares(items), strict=True):
            shares[item["feature"]] += share / len(per_row)
            totals[item["feature"]] += item["contribution"]
    ranked = sorted(shares, key=lambda name: (-shares[name], -totals[name]))[:TOP_FEATURES]
    return [
        FeatureShare(
            feature=name, contribution=round(totals[name], 4), share=round(shares[name], 4)
        )
        for name in ranked
    ]


def refresh_events(
    session: Session,
    monitor_id: int,
    model_id: int,
    start: datetime,
    end: datetime,
    reach: pd.Timedelta,
    lead: pd.Timedelta,
) -> list[Event]:
    """Recompute the stored events around newly scored ``[start, end)``; return the new ones.

    The span is widened until no stored event crosses its edges, so an event that began in
    an earlier batch (or, in a backfill, continues in a later one) is rebuilt whole. Only
    the span's anomalous scores are read back, with each of their entities' newest time.
    """
    low, high = start, end
    while True:
        crossing = events_overlapping(
            session, monitor_id, low - reach, high + reach, model_id=model_id
        )
        new_low = min([low, *(e.start_ts for e in crossing)])
        new_high = max([high, *(e.end_ts + reach for e in crossing)])
        if (new_low, new_high) == (low, high):
            break
        low, high = new_low, new_high
    span = (session, monitor_id, low - reach, high + reach)
    anomalies = read_scores(*span, model_id=model_id, anomalous_only=True)
    newest = newest_scores(*span, model_id=model_id, entities=anomalies["entity"].unique())
    events = [
        e
        for e in detect_events(anomalies, newest, reach, lead)
        if e["end_ts"] >= low and e["start_ts"] < high
    ]
    replace_events(session, monitor_id, model_id, low, high, events)
    return events
