"""Retraining and the model registry on a real store: the champion gate, rollback, lineage.

The data: two sites every 10 minutes, ``b`` following ``a``. Each test changes some days
(a lasting shift, a passing one, an unlabelled regime) and checks what retraining decides.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from atalaia import jobs, store
from atalaia.cli import app
from atalaia.config import Adaptation, Monitor, load_monitor
from atalaia.errors import UsageError
from atalaia.metrics import textfile_path
from atalaia.settings import Settings
from storage.engine import transaction
from storage.events import events_overlapping
from storage.labels import add_label
from storage.models import ModelRow, RunRow
from storage.monitors import ensure_monitor
from storage.registry import add_model, list_models, promote
from storage.scores import read_scores
from tests.conftest import write_monitor

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
ROWS_PER_DAY = 2 * 144
MONITOR = """\
source: {kind: files, path: '${ATALAIA_HOME}/sites/*.csv'}
timestamp: ts
entities: [site]
features: [a, b]
frequency: 10min
detector: {kind: gmm, params: {max_components: 3}}
baseline: {start: 2026-03-01T00:00:00Z, end: 2026-03-09T00:00:00Z}
calibration: {alpha: 0.02, fraction: 0.3}
retraining: {intervals: 5, holdout_intervals: 1}
"""


def day(n: int) -> tuple[datetime, datetime]:
    return T0 + n * DAY, T0 + (n + 1) * DAY


def normal_rows(days: int = 16) -> pd.DataFrame:
    """Sites x and y: ``a`` standard normal, ``b = a`` plus a little noise."""
    rng = np.random.default_rng(5)
    stamps = pd.date_range(T0, periods=days * 144, freq="10min")
    frames = []
    for site in ("x", "y"):
        a = rng.normal(0, 1, len(stamps))
        b = a + rng.normal(0, 0.3, len(stamps))
        frames.append(pd.DataFrame({"ts": stamps, "site": site, "a": a, "b": b}))
    return pd.concat(frames, ignore_index=True)


def days(frame: pd.DataFrame, first: int, last: int) -> pd.Series:
    """Rows from the start of day ``first`` to the end of day ``last``."""
    return (frame["ts"] >= T0 + first * DAY) & (frame["ts"] < T0 + (last + 1) * DAY)


@pytest.fixture
def sites(settings: Settings) -> Callable[[pd.DataFrame], Monitor]:
    """Write the given rows as one CSV per day; return the monitor reading them."""

    def write(frame: pd.DataFrame) -> Monitor:
        folder = settings.home / "sites"
        folder.mkdir(parents=True, exist_ok=True)
        for date, rows in frame.groupby(frame["ts"].dt.date):
            rows.to_csv(folder / f"{date}.csv", index=False)
        return load_monitor(write_monitor(settings.monitors_dir, "sites", MONITOR))

    return write


def ingest_and_train(monitor: Monitor, settings: Settings, last_day: int = 15) -> None:
    for n in range(last_day + 1):
        jobs.ingest(monitor, *day(n), settings=settings)
    jobs.train(monitor, settings=settings)


def shifted_and_trained(
    sites: Callable[[pd.DataFrame], Monitor], settings: Settings, last_day: int
) -> Monitor:
    """The sites' monitor, ingested and trained, whose a and b shift up by 3 from day 8 to
    ``last_day``."""
    frame = normal_rows()
    frame.loc[days(frame, 8, last_day), ["a", "b"]] += 3
    monitor = sites(frame)
    ingest_and_train(monitor, settings)
    return monitor


def models(settings: Settings) -> dict[int, ModelRow]:
    with transaction(store.engine(settings.store_url)) as session:
        return {model.version: model for model in list_models(session, 1)}


def test_a_candidate_that_learned_a_lasting_shift_replaces_the_champion_and_rolls_back(
    sites: Callable[[pd.DataFrame], Monitor], settings: Settings
) -> None:
    monitor = shifted_and_trained(sites, settings, last_day=15)

    result = jobs.retrain(monitor, settings=settings)

    assert (result.version, result.promoted, result.champion_version) == (2, True, 2)
    # The newest batch (day 15) is held out; the five before it are the baseline.
    assert (result.baseline_start, result.baseline_end) == (day(10)[0], day(14)[1])
    assert result.baseline_rows == 5 * ROWS_PER_DAY
    evaluation = result.evaluation
    assert evaluation["holdout_start"] == day(15)[0].isoformat()
    assert evaluation["candidate"]["rows"] == ROWS_PER_DAY
    assert evaluation["champion"]["false_alarms"] > ROWS_PER_DAY / 2
    assert evaluation["candidate"]["false_alarms"] <= evaluation["false_alarm_bound"]
    stored = models(settings)
    assert stored[2].status == "champion" and stored[2].previous_champion == 1
    assert stored[2].status_reason.startswith("better than version 1 by at least 25% (false")
    assert stored[2].evaluation == evaluation
    assert (stored[1].status, stored[1].status_reason) == ("retired", "replaced by version 2")
    retrain_metrics = textfile_path(settings, "sites", "retrain").read_text()
    assert 'atalaia_champion_version{job="retrain",monitor="sites"} 2.0' in retrain_metrics

    restored = jobs.rollback(monitor, "alerts went quiet", settings=settings)
    assert (restored.champion_version, restored.replaced_version) == (1, 2)
    stored = models(settings)
    assert stored[1].status == "champion"
    assert stored[2].status == "retired"
    assert stored[2].status_reason == "rolled back to version 1: alerts went quiet"
    with pytest.raises(UsageError, match="version 1 replaced no earlier champion"):
        jobs.rollback(monitor, "again", settings=settings)
    scored = jobs.score(monitor, *day(15), settings=settings)
    assert scored.model_version == 1

    promoted = jobs.promote_version(monitor, 2, "the shift is here to stay", settings=settings)
    assert (promoted.champion_version, promoted.replaced_version) == (2, 1)
    assert models(settings)[2].status_reason == "the shift is here to stay"
    with transaction(store.engine(settings.store_url)) as session:
        registry_runs = session.execute(
            select(RunRow.job, RunRow.status)
            .where(RunRow.job.in_(["retrain", "rollback", "promote"]))
            .order_by(RunRow.id)
        ).all()
    assert [tuple(run) for run in registry_runs] == [
        ("retrain", "success"),
        ("rollback", "success"),
        ("rollback", "refused"),  # a usage error, not a failure of the job
        ("promote", "success"),
    ]
    assert not textfile_path(settings, "sites", "rollback", failure=True).exists()


def test_retraining_again_on_the_same_data_keeps_the_champion_unless_drift_required_it(
    sites: Callable[[pd.DataFrame], Monitor], settings: Settings
) -> None:
    monitor = shifted_and_trained(sites, settings, last_day=15)
    assert jobs.retrain(monitor, settings=settings).promoted

    again = jobs.retrain(monitor, settings=settings)

    # Version 3 learned what version 2 learned: no better by the margin, no drift.
    assert (again.version, again.promoted, again.champion_version) == (3, False, 2)
    assert again.reason.startswith(
        "kept version 2: not worse, but not better by 25% (retraining.min_improvement) and "
        "no drift required it"
    )
    assert models(settings)[3].status == "candidate"

    after_drift = jobs.retrain(monitor, settings=settings, after_drift=True)

    assert (after_drift.version, after_drift.promoted, after_drift.champion_version) == (4, True, 4)
    assert after_drift.reason.startswith(
        "drift required retraining and it is not worse than version 2"
    )


def test_a_candidate_that_learned_a_passing_change_stays_a_candidate_until_promoted_by_hand(
    sites: Callable[[pd.DataFrame], Monitor], settings: Settings
) -> None:
    monitor = shifted_and_trained(sites, settings, last_day=14)

    result = jobs.retrain(monitor, settings=settings)

    assert (result.version, result.promoted, result.champion_version) == (2, False, 1)
    stored = models(settings)
    assert stored[1].status == "champion"
    assert stored[2].status == "candidate"
    assert stored[2].status_reason.startswith("kept version 1: the candidate raised")
    evaluation = stored[2].evaluation
    assert evaluation["candidate"]["false_alarms"] > max(
        evaluation["false_alarm_bound"], evaluation["champion"]["false_alarms"]
    )

    # The registry from the command line.
    runner = CliRunner(env={"COLUMNS": "250"})

    listed = runner.invoke(app, ["models", "list", "sites"])
    assert listed.exit_code == 0, listed.output
    assert "champion" in listed.output and "candidate" in listed.output
    assert "kept version 1" in listed.output
    shown = runner.invoke(app, ["models", "show", "sites", "2"])
    assert shown.exit_code == 0, shown.output
    assert "2026-03-11 00:00:00+00:00 .. 2026-03-16 00:00:00+00:00" in shown.output
    assert '"false_alarm_bound"' in shown.output
    promoted = runner.invoke(app, ["models", "promote", "sites", "2", "--reason", "trust me"])
    assert promoted.exit_code == 0, promoted.output
    assert "version 2 is the champion (replaced version 1)" in promoted.output
    rolled = runner.invoke(app, ["models", "rollback", "sites"])
    assert rolled.exit_code == 0, rolled.output
    assert "version 1 is the champion again (version 2 retired)" in rolled.output
    again = runner.invoke(app, ["models", "promote", "sites", "1"])
    assert again.exit_code == 1
    assert again.output == "error: monitor sites: version 1 is the champion\n"
    missing = runner.invoke(app, ["models", "show", "sites", "9"])
    assert missing.exit_code == 1 and "no model version 9" in missing.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_labels_keep_a_candidate_that_learned_an_incident_as_normal(
    sites: Callable[[pd.DataFrame], Monitor], settings: Settings
) -> None:
    frame = normal_rows()
    # Site y runs inverted for days 10-14 and nobody labels it; site x's one inverted
    # morning on day 12 is labelled. A candidate trained on days 10-14 learns inversion as
    # normal: its false alarms on the normal day 15 are fine, its AUC on the label is not.
    unlabelled = days(frame, 10, 14) & (frame["site"] == "y")
    frame.loc[unlabelled, "b"] = -frame.loc[unlabelled, "a"]
    incident = (frame["site"] == "x") & frame["ts"].between(
        T0 + 12 * DAY + timedelta(hours=6), T0 + 12 * DAY + timedelta(hours=10)
    )
    frame.loc[incident, "b"] = -frame.loc[incident, "a"]
    monitor = sites(frame)
    ingest_and_train(monitor, settings)
    with transaction(store.engine(settings.store_url)) as session:
        add_label(
            session,
            1,
            T0 + 12 * DAY + timedelta(hours=6),
            T0 + 12 * DAY + timedelta(hours=10),
            entity="x",
            note="inverted b",
        )

    result = jobs.retrain(monitor, settings=settings)

    assert not result.promoted
    assert "tells labelled incidents apart worse" in result.reason
    evaluation = result.evaluation
    assert evaluation["candidate"]["incident_rows"] == int(incident.sum()) == 25
    assert evaluation["candidate"]["auc"] < evaluation["champion"]["auc"] - 0.01
    assert evaluation["candidate"]["false_alarms"] <= max(
        evaluation["false_alarm_bound"], evaluation["champion"]["false_alarms"]
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_retraining_leaves_rows_inside_events_and_labels_out_of_the_baseline(
    sites: Callable[[pd.DataFrame], Monitor], settings: Settings
) -> None:
    frame = normal_rows(10)
    spike = (frame["site"] == "x") & frame["ts"].between(
        T0 + 8 * DAY + timedelta(hours=12), T0 + 8 * DAY + timedelta(hours=13)
    )
    frame.loc[spike, ["a", "b"]] += 8
    monitor = sites(frame)
    ingest_and_train(monitor, settings, last_day=9)
    for n in (7, 8):
        jobs.score(monitor, *day(n), settings=settings)
    with transaction(store.engine(settings.store_url)) as session:
        add_label(session, 1, T0 + 6 * DAY, T0 + 6 * DAY + timedelta(hours=1), entity="y")
        events = events_overlapping(session, 1, day(4)[0], day(8)[1])
        scores = read_scores(session, 1, day(4)[0], day(8)[1])
    inside = sum(
        int(((scores["entity"] == e.entity) & scores["ts"].between(e.start_ts, e.end_ts)).sum())
        for e in events
    )
    assert inside >= int(spike.sum()) == 7

    never_adapts = monitor.model_copy(
        update={"baseline": monitor.baseline.model_copy(update={"adapt": Adaptation(after=None)})}
    )
    result = jobs.retrain(never_adapts, settings=settings)

    assert (result.baseline_start, result.baseline_end) == (day(4)[0], day(8)[1])
    assert result.baseline_rows == 5 * ROWS_PER_DAY - inside - 7
    # by default (baseline.adapt.after 1D) an unlabelled event a day older than the newest
    # scored batch (day 9, held out) has joined the baseline; the label still keeps its rows out
    adapted = jobs.retrain(monitor, settings=settings)
    assert adapted.baseline_rows == 5 * ROWS_PER_DAY - 7


def test_the_store_allows_one_champion_per_monitor(settings: Settings) -> None:
    lineage = {
        "detector": "gmm",
        "params": {},
        "features": ["a"],
        "artifact_path": "/nowhere",
        "artifact_sha256": "0" * 64,
        "baseline_start": T0,
        "baseline_end": T0 + DAY,
        "baseline_rows": 10,
        "baseline_sha256": "0" * 64,
        "alpha": 0.01,
        "calibration_rows": 100,
        "threshold": 1.0,
        "code_version": "test",
        "training_seconds": 0.1,
    }
    with transaction(store.engine(settings.store_url)) as session:
        monitor_id = ensure_monitor(session, "m", {})
        for version in (1, 2):
            add_model(session, monitor_id=monitor_id, version=version, **lineage)
    with pytest.raises(IntegrityError), transaction(store.engine(settings.store_url)) as session:
        for model in list_models(session, monitor_id):
            model.status = "champion"
        session.flush()
    with transaction(store.engine(settings.store_url)) as session:
        first, second = sorted(list_models(session, monitor_id), key=lambda model: model.version)
        promote(session, first, "first")
        promote(session, second, "second")
        assert [m.status for m in (first, second)] == ["retired", "champion"]
