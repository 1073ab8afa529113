"""Forming events from anomalous scores: merging within reach, the peak, the lead, openness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from atalaia.events import detect_events

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


def anomalies(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    """Anomalous scores: (entity, step, z), unordered as a store may return them."""
    return pd.DataFrame(
        {
            "entity": [entity for entity, _, _ in rows],
            "ts": pd.to_datetime([T0 + step * STEP for _, step, _ in rows], utc=True),
            "z": [z for _, _, z in rows],
            "is_anomaly": True,
            "top_features": [
                [{"feature": "cpu", "contribution": z, "share": 1.0}] for *_, z in rows
            ],
        }
    )


def test_anomalies_within_reach_merge_per_entity_and_events_start_lead_early() -> None:
    rows = [("b", 3, 2.0), ("a", 1, 3.0), ("a", 3, 5.0), ("a", 4, 5.0), ("a", 9, 4.0)]
    newest = {"a": T0 + 10 * STEP, "b": T0 + 20 * STEP}
    events = detect_events(anomalies(rows), newest, reach=2 * STEP, lead=STEP)
    summary = [
        (e["entity"], e["start_ts"], e["end_ts"], e["peak_ts"], e["peak_z"], e["anomalies"])
        for e in events
    ]
    assert summary == [
        ("a", T0, T0 + 4 * STEP, T0 + 3 * STEP, 5.0, 3),  # the first of two equal peaks
        ("a", T0 + 8 * STEP, T0 + 9 * STEP, T0 + 9 * STEP, 4.0, 1),
        ("b", T0 + 2 * STEP, T0 + 3 * STEP, T0 + 3 * STEP, 2.0, 1),
    ]
    # open while the entity's newest score is within reach of the event's end
    assert [e["is_open"] for e in events] == [False, True, False]
    assert events[0]["top_features"] == [{"feature": "cpu", "contribution": 13.0, "share": 1.0}]


def test_no_anomalies_no_events() -> None:
    assert detect_events(anomalies([]), {}, reach=STEP, lead=STEP) == []
