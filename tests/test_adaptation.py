"""Learning the new normal (issue 19): a lasting, unlabelled change joins the baseline after
``baseline.adapt.after``; a labelled one never does; ar learns each batch online."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from atalaia import jobs, store
from atalaia.artifacts import load_model
from atalaia.cli import app
from atalaia.config import Monitor, load_monitor
from atalaia.settings import Settings
from atalaia.walk import walk_forward
from storage.engine import transaction
from storage.labels import add_label
from storage.models import EventRow, ModelUpdateRow
from storage.monitors import monitor_id
from storage.scores import read_scores
from tests.conftest import write_monitor

SHIFT = datetime(2026, 3, 6, tzinfo=UTC)  # the level moves from 10 to 16 here, and stays


def day(number: int) -> datetime:
    return datetime(2026, 3, number, tzinfo=UTC)


def level_shift_monitor(
    settings: Settings, detector: str, adapt: str, retrain: str = '"@daily"', pool: str = "held_out"
) -> Monitor:
    """One series of five-minute steps, N(10, 1) until ``SHIFT`` and N(16, 1) after, as a
    files monitor retrained (by default daily) on its last three batches."""
    stamps = pd.date_range(day(1), day(12), freq="5min", inclusive="left")
    values = np.random.default_rng(7).normal(10.0, 1.0, len(stamps))
    values[stamps >= SHIFT] += 6.0
    folder = settings.home / "sources" / "shift"
    folder.mkdir(parents=True)
    pd.DataFrame({"timestamp": stamps, "value": values}).to_csv(folder / "values.csv", index=False)
    body = f"""\
source:
  kind: files
  path: {folder}/*.csv
timestamp: timestamp
features: [value]
frequency: 5min
detector:
  {detector}
baseline:
  last_intervals: 3
  adapt:
    {adapt}
calibration:
  tail_floor: 1.0  # a baseline left with a day outside the label still calibrates
  pool: {pool}
schedule:
  score: "@daily"
  retrain: {retrain}
"""
    return load_monitor(write_monitor(settings.monitors_dir, "shift", body))


def walk(monitor: Monitor, settings: Settings, label: bool = False) -> pd.DataFrame:
    """Train on 1-3 March, label the shift if asked, walk 4-11 March; each day's share of
    flagged steps."""
    for first in range(1, 4):
        jobs.ingest(monitor, day(first), day(first + 1), settings=settings)
    jobs.train(monitor, settings=settings)
    if label:
        with transaction(store.engine(settings.store_url)) as session:
            add_label(session, monitor_id(session, "shift"), SHIFT, day(12))
    walk_forward(monitor, day(4), day(12), settings=settings)
    with transaction(store.engine(settings.store_url)) as session:
        scores = read_scores(session, monitor_id(session, "shift"), day(4), day(12))
    as_scored = scores.sort_values("model_id").drop_duplicates("ts", keep="last")
    return as_scored.groupby(as_scored["ts"].dt.day)["is_anomaly"].mean()


def events(settings: Settings) -> list[EventRow]:
    with transaction(store.engine(settings.store_url)) as session:
        return list(session.scalars(select(EventRow).order_by(EventRow.start_ts)))


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_unlabelled_shift_is_an_incident_first_then_the_new_normal(
    settings: Settings,
) -> None:
    monitor = level_shift_monitor(settings, "kind: gmm", 'after: "1D"')
    flagged = walk(monitor, settings)
    assert flagged[4] < 0.05 and flagged[5] < 0.05
    assert flagged[6] > 0.9  # the first day of the shift is an incident
    assert flagged[9] < 0.05 and flagged[10] < 0.05 and flagged[11] < 0.05
    shift_events = [e for e in events(settings) if e.start_ts >= SHIFT - timedelta(minutes=5)]
    assert shift_events[0].start_ts == SHIFT and shift_events[0].absorbed_at is not None
    listed = CliRunner().invoke(
        app,
        ["events", "shift", "--since", "2026-03-06", "--until", "2026-03-07"],
        env={"COLUMNS": "400"},
    )
    assert listed.exit_code == 0, listed.output
    assert "new normal since 2026-03-06 00:00" in listed.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_labelled_shift_stays_anomalous(settings: Settings) -> None:
    monitor = level_shift_monitor(settings, "kind: gmm", 'after: "1D"')
    flagged = walk(monitor, settings, label=True)
    assert flagged[6] > 0.9 and flagged[9] > 0.9 and flagged[11] > 0.9
    assert all(e.absorbed_at is None for e in events(settings) if e.start_ts >= SHIFT)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_monitor_that_never_adapts_keeps_flagging_the_shift(settings: Settings) -> None:
    monitor = level_shift_monitor(settings, "kind: gmm", "after: null")
    flagged = walk(monitor, settings)
    assert flagged[6] > 0.9 and flagged[11] > 0.9
    assert all(e.absorbed_at is None for e in events(settings))


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_ar_learns_each_batch_once_and_a_rescore_gives_the_same_scores(
    settings: Settings,
) -> None:
    adapt = 'after: "1D"\n    online: true'
    monitor = level_shift_monitor(settings, "kind: ar\n  window: 4", adapt, "null", "unflagged")
    flagged = walk(monitor, settings)
    with transaction(store.engine(settings.store_url)) as session:
        updates = list(session.scalars(select(ModelUpdateRow).order_by(ModelUpdateRow.number)))
        first = read_scores(session, monitor_id(session, "shift"), day(8), day(9))
    assert [u.number for u in updates] == list(range(1, 9))
    assert [u.learned_start for u in updates] == [day(n) for n in range(4, 12)]
    # flagged steps join a day late: those of 6 March with the update that learned 7 March
    assert [u.flagged_through for u in updates] == [day(n) for n in range(4, 12)]
    assert updates[3].flagged_rows > 0
    # online, the shift is an incident for its first day and the next (it joins a day late,
    # on 8 March), then the new normal
    assert flagged[6] > 0.9 and flagged[7] > 0.9 and flagged.loc[8:].max() < 0.05
    # an update's calibrator: the held-out steps and the unflagged pool, scored again by it
    first_pool, later_pool = (
        load_model(u.artifact_path, u.artifact_sha256)[1].scores_ for u in (updates[0], updates[3])
    )
    assert len(later_pool) - len(first_pool) > 0.9 * 288  # 5 March joined; 6-7 were flagged
    jobs.score(monitor, day(8), day(9), settings=settings)  # a retry: scored by update 4 again
    with transaction(store.engine(settings.store_url)) as session:
        again = read_scores(session, monitor_id(session, "shift"), day(8), day(9))
        assert session.scalar(select(ModelUpdateRow.id).where(ModelUpdateRow.number == 9)) is None
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_adaptation_policy_round_trips_and_models_show_lists_it(
    settings: Settings, tmp_path: Path
) -> None:
    monitor = level_shift_monitor(settings, "kind: gmm", 'after: "2D"\n    half_life: "7D"')
    assert monitor.baseline.adapt.delay == timedelta(days=2)
    assert monitor.baseline.adapt.forget(timedelta(days=7)) == pytest.approx(0.5)
    again = Monitor.model_validate(monitor.model_dump(mode="json"))
    assert again.baseline == monitor.baseline
    for first in range(1, 4):
        jobs.ingest(monitor, day(first), day(first + 1), settings=settings)
    jobs.train(monitor, settings=settings)
    shown = CliRunner().invoke(app, ["models", "show", "shift", "1"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    assert "baseline.adapt.after 2D" in shown.output
    assert "baseline.adapt.half_life 7D" in shown.output
