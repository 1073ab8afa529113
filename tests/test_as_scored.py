"""Events, scores and reports as scored: a promotion hides no history (issue 20, item 20).

The demo's servers: version 1 scores day 8 (host-3's spike), then version 2 is promoted and
scores day 10 (host-5's memory step). Everything that lists findings shows both days, each
with the version that scored it; scoring a day again with the new champion replaces the old
version's findings for that day, and an event keeps its id when its batch is scored again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from atalaia import jobs, store
from atalaia.cli import app
from atalaia.config import Monitor
from atalaia.queries import events_as_scored, scores_as_scored, scoring_versions
from atalaia.report import load_report_data, render_html
from atalaia.settings import Settings
from storage.engine import transaction

T0 = datetime(2026, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)
runner = CliRunner()


def day(n: int) -> tuple[datetime, datetime]:
    return T0 + n * DAY, T0 + (n + 1) * DAY


def found(settings: Settings) -> list[tuple[str, int, int]]:
    """``(entity, day, version)`` of every event as scored, days 8 to 11."""
    with transaction(store.engine(settings.store_url)) as session:
        rows = events_as_scored(session, 1, T0 + 8 * DAY, T0 + 11 * DAY)
    return [(e.entity, (e.end_ts - T0).days, version) for e, version in rows]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_promotion_keeps_the_old_versions_findings_and_a_rescore_replaces_them(
    servers: Monitor, settings: Settings
) -> None:
    for n in (0, 1, 2, 8, 10):
        jobs.ingest(servers, *day(n), settings=settings)
    jobs.train(servers, settings=settings)
    jobs.score(servers, *day(8), settings=settings)
    with transaction(store.engine(settings.store_url)) as session:
        (spike,) = [e for e, _ in events_as_scored(session, 1, *day(8)) if e.entity == "host-3"]
        spike_id = spike.id
    jobs.train(servers, settings=settings)
    jobs.promote_version(servers, 2, "a test promotion", settings=settings)
    jobs.score(servers, *day(10), settings=settings)

    before = found(settings)
    assert ("host-3", 8, 1) in before and ("host-5", 10, 2) in before
    assert {version for *_, version in before if _[1] == 8} == {1}
    assert {version for *_, version in before if _[1] == 10} == {2}

    # The command line lists both days (the default champion, version 2, scored only day 10).
    listed = runner.invoke(app, ["events", "servers", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert {(row["entity"], row["version"]) for row in rows} >= {("host-3", 1), ("host-5", 2)}
    only_2 = json.loads(
        runner.invoke(app, ["events", "servers", "--json", "--version", "2"]).output
    )
    assert {row["version"] for row in only_2} == {2}
    assert only_2 and all(row["end"].startswith("2026-01-15") for row in only_2)  # day 10

    # The report over both days works and names the versions that scored the rows.
    data = load_report_data(settings, servers, T0 + 8 * DAY, T0 + 11 * DAY)
    assert sorted(model.version for model in data.models.values()) == [1, 2]
    assert set(data.scores["version"]) == {1, 2}
    assert len(data.scores) == 2 * 1728
    page = render_html(data, max_entities=1)
    assert "model version 1" in page and "model version 2" in page

    # Day 8 scored again by the champion: its findings are version 2's, none left of version 1.
    jobs.score(servers, *day(8), settings=settings)
    after = found(settings)
    assert {version for *_, version in after} == {2}
    assert ("host-3", 8, 2) in after
    with transaction(store.engine(settings.store_url)) as session:
        assert set(scores_as_scored(session, 1, *day(8))["version"]) == {2}
        assert [m.version for m in scoring_versions(session, 1, *day(8))] == [2]
        # Version 1's own events are still there to ask for.
        old = events_as_scored(session, 1, *day(8), version=1)
        assert spike_id in {e.id for e, _ in old}

    # Scoring day 8 again keeps every event's id.
    with transaction(store.engine(settings.store_url)) as session:
        ids = {(e.entity, e.start_ts): e.id for e, _ in events_as_scored(session, 1, *day(8))}
    jobs.score(servers, *day(8), settings=settings)
    with transaction(store.engine(settings.store_url)) as session:
        again = {(e.entity, e.start_ts): e.id for e, _ in events_as_scored(session, 1, *day(8))}
    assert again == ids and ids
