"""The on-call page's reads, verdicts and event explanations, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from atalaia import demo_data, jobs, queries, store
from atalaia.config import Monitor, load_monitor
from atalaia.explain import explain_event
from atalaia.feedback import record_verdict
from atalaia.settings import Settings
from storage.engine import transaction
from storage.models import EventRow, LabelRow, ScoreRow
from tests.conftest import SERVERS_MONITOR, write_monitor

SPIKE = demo_data.INCIDENTS[0]
SPIKED = {"cpu", "latency_ms", "error_rate"}  # what the spike changes


def scored_monitor(settings: Settings, kind: str) -> Monitor:
    """The servers monitor with ``kind`` over 3-step windows, trained on its first two
    days and scored on the day of the spike on host-3."""
    demo_data.write_files(settings.home / "sources" / "servers")
    body = SERVERS_MONITOR + f"detector:\n  kind: {kind}\n  window: 3\n"
    monitor = load_monitor(write_monitor(settings.monitors_dir, "servers", body))
    day = timedelta(days=1)
    for n in (0, 1, 8):
        start = demo_data.START + n * day
        jobs.ingest(monitor, start, start + day, settings=settings)
    jobs.train(monitor, (demo_data.START, demo_data.START + 2 * day), settings=settings)
    spike_day = demo_data.START + 8 * day
    jobs.score(monitor, spike_day, spike_day + day, settings=settings)
    return monitor


def spike_event(events: list[dict]) -> dict:
    return next(
        e
        for e in events
        if e["entity"] == SPIKE.host
        and datetime.fromisoformat(e["start"]) <= SPIKE.end
        and datetime.fromisoformat(e["end"]) >= SPIKE.start
    )


def test_the_pages_reads_agree_and_a_verdict_is_one_label(settings: Settings) -> None:
    """The page's reads agree, a verdict is one label, and an infinite z reaches the page as
    JSON (which has no infinity)."""
    scored_monitor(settings, "gmm")
    with transaction(store.engine(settings.store_url)) as session:
        assert queries.monitor_names(session) == ["servers"]
        overview = queries.monitor_overview(session, "servers")
        events = queries.monitor_events(session, "servers")
        spike = spike_event(events)
        lane = queries.swimlane(
            session, "servers", demo_data.START + timedelta(days=8), SPIKE.end + timedelta(days=1)
        )
        versions = queries.model_versions(session, "servers")
    assert overview["champion"]["version"] == 1 and overview["events"] == len(events)
    assert overview["last_scored"]["start"] == (demo_data.START + timedelta(days=8)).isoformat()
    host = next(row for row in lane["entities"] if row["entity"] == SPIKE.host)
    assert max(z for z in host["z"] if z is not None) == pytest.approx(spike["peak_z"], abs=1e-3)
    assert spike["id"] in {event["id"] for event in host["events"]}
    assert sum(item["share"] for item in spike["top_features"]) <= 1.0 + 1e-6
    assert [v["version"] for v in versions] == [1] and versions[0]["baseline"]["rows"] > 0

    with transaction(store.engine(settings.store_url)) as session:
        found, model, _ = queries.event_record(session, spike["id"])
        first = record_verdict(session, found, "incident", model.version, "ana")
        again = record_verdict(session, found, "false_alarm", model.version, "ana")
    assert first == again
    with transaction(store.engine(settings.store_url)) as session:
        labels = list(session.scalars(select(LabelRow)))
        events = queries.monitor_events(session, "servers")
    assert [(label.kind, label.entity) for label in labels] == [("false_alarm", SPIKE.host)]
    assert "by ana" in labels[0].note
    assert spike_event(events)["verdict"] == "false_alarm"

    # a step whose score could not be computed is stored with an infinite z
    with transaction(store.engine(settings.store_url)) as session:
        session.execute(
            update(ScoreRow)
            .where(ScoreRow.entity == SPIKE.host, ScoreRow.ts == SPIKE.start)
            .values(z=math.inf)
        )
        session.execute(update(EventRow).where(EventRow.id == spike["id"]).values(peak_z=math.inf))
    with transaction(store.engine(settings.store_url)) as session:
        start = demo_data.START + timedelta(days=8)
        lane = queries.swimlane(session, "servers", start, start + timedelta(days=1))
        events = queries.monitor_events(session, "servers")
    json.dumps([lane, events], allow_nan=False)
    host = next(row for row in lane["entities"] if row["entity"] == SPIKE.host)
    assert "Infinity" in host["z"] and spike_event(events)["peak_z"] == "Infinity"


def test_an_event_is_explained_by_its_models_shares_and_band(settings: Settings) -> None:
    """With ``ar``'s predictive band (``gmm``'s conditional band is drawn in
    ``tests/test_on_call_page.py``)."""
    if not settings.store_url.startswith("sqlite"):
        pytest.skip("the explanation reads the store as the reads above do; SQLite suffices")
    monitor = scored_monitor(settings, "ar")
    with transaction(store.engine(settings.store_url)) as session:
        spike = spike_event(queries.monitor_events(session, "servers"))
        found, model, _ = queries.event_record(session, spike["id"])
        explained = explain_event(session, monitor, found, model)
    assert sum(explained["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    assert max(explained["shares"], key=explained["shares"].get) in {
        "cpu",
        "latency_ms",
        "error_rate",
    }
    assert "predicted" in explained["band"]["basis"]
    steps = len(explained["steps"])
    assert steps >= 24 and all(len(v) == steps for v in explained["values"].values())
    for feature in monitor.features:
        band = explained["band"]["features"][feature]
        assert all(low < high for low, high in zip(band["low"], band["high"], strict=True) if low)
        shares = explained["step_shares"][feature]
        assert len(shares) == steps
    outside = [
        i
        for i, step in enumerate(explained["steps"])
        if not found.start_ts <= datetime.fromisoformat(step) <= found.end_ts
    ]
    for feature in monitor.features:
        band, values = explained["band"]["features"][feature], explained["values"][feature]
        # off the event, values mostly lie in their band ...
        inside = [band["low"][i] <= values[i] <= band["high"][i] for i in outside]
        assert sum(inside) >= 2 / 3 * len(outside), feature
        if feature in SPIKED:  # ... which is narrower than the spike's jump
            widths = sorted(band["high"][i] - band["low"][i] for i in outside)
            assert widths[len(widths) // 2] < max(values) - min(values), feature
