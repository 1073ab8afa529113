"""The jobs end to end on a real store: ingest, train, score, events, runs and metrics."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, func, select

from atalaia import jobs, store
from atalaia.artifacts import load_model
from atalaia.config import Monitor, load_monitor
from atalaia.errors import AtalaiaError, EmptyBatchError, NotFoundError, SourceError
from atalaia.landing import read_batch
from atalaia.metrics import textfile_path
from atalaia.scoring import score_frame
from atalaia.settings import Settings
from storage.batches import batches_overlapping
from storage.engine import transaction
from storage.events import events_overlapping
from storage.labels import add_label
from storage.models import ModelRow, QuarantineRow, RunRow, ScoreRow
from storage.scores import read_scores
from tests.conftest import write_monitor

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def day(n: int) -> tuple[datetime, datetime]:
    return T0 + n * DAY, T0 + (n + 1) * DAY


def trained(servers: Monitor, settings: Settings) -> None:
    for n in range(3):
        jobs.ingest(servers, *day(n), settings=settings)
    jobs.train(servers, settings=settings)


def runs(settings: Settings) -> list[RunRow]:
    with transaction(store.engine(settings.store_url)) as session:
        return list(session.scalars(select(RunRow).order_by(RunRow.id)))


def test_ingest_train_score_writes_scores_events_runs_and_metrics(
    servers: Monitor, settings: Settings
) -> None:
    trained(servers, settings)
    ingested = jobs.ingest(servers, *day(8), settings=settings)
    result = jobs.score(servers, *day(8), settings=settings)

    assert result.rows == ingested.rows == 6 * 288
    assert result.model_version == 1
    assert 0 < result.anomalies < result.rows * 0.1
    with transaction(store.engine(settings.store_url)) as session:
        stored = read_scores(session, 1, *day(8))
    assert len(stored) == result.rows
    assert stored["is_anomaly"].sum() == result.anomalies
    assert (stored["p_value"].between(0, 1)).all()
    # The day's injected spike (host-3, 14:00-14:30: cpu, latency and errors) is an event
    # whose top feature is one of those it hit, not memory.
    spike = [e for e in result.events if e["entity"] == "host-3" and e["start_ts"].hour == 14]
    assert spike and spike[0]["top_features"][0]["feature"] in {"cpu", "latency_ms", "error_rate"}

    assert [(r.job, r.status) for r in runs(settings)] == [("ingest", "success")] * 3 + [
        ("train", "success"),
        ("ingest", "success"),
        ("score", "success"),
    ]
    text = textfile_path(settings, "servers", "score").read_text()
    assert f'atalaia_batch_rows{{job="score",monitor="servers"}} {float(result.rows)}' in text
    assert 'atalaia_last_success_timestamp_seconds{job="score",monitor="servers"}' in text


def test_scoring_the_same_batch_twice_leaves_the_same_rows(
    servers: Monitor, settings: Settings
) -> None:
    trained(servers, settings)
    jobs.ingest(servers, *day(10), settings=settings)
    first = jobs.score(servers, *day(10), settings=settings)
    with transaction(store.engine(settings.store_url)) as session:
        before = read_scores(session, 1, *day(10))
        events_before = [e.start_ts for e in events_overlapping(session, 1, *day(10))]
    second = jobs.score(servers, *day(10), settings=settings)
    with transaction(store.engine(settings.store_url)) as session:
        after = read_scores(session, 1, *day(10))
        events_after = [e.start_ts for e in events_overlapping(session, 1, *day(10))]
        total = session.scalar(select(func.count()).select_from(ScoreRow))
    assert total == len(before) == len(after) == first.rows == second.rows
    pd.testing.assert_frame_equal(before, after)
    assert events_before == events_after


HOURLY = """\
source: {kind: files, path: '${ATALAIA_HOME}/hourly/*.csv'}
timestamp: ts
entities: [site]
features: [a, b]
frequency: 1h
baseline: {start: 2026-01-01T00:00:00Z, end: 2026-01-21T00:00:00Z}
calibration: {alpha: 0.05, fraction: 0.3}
"""


@pytest.fixture
def hourly(settings: Settings) -> Monitor:
    """Two sites, hourly, 30 days of correlated noise; site x breaks from day 25 22:00 to 02:00."""
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2026-01-01", periods=30 * 24, freq="1h", tz="UTC")
    frames = []
    for site in ("x", "y"):
        a = rng.normal(0, 1, len(stamps))
        frame = pd.DataFrame(
            {"ts": stamps, "site": site, "a": a, "b": a + rng.normal(0, 0.1, len(a))}
        )
        if site == "x":
            broken = (frame["ts"] >= "2026-01-25T22:00Z") & (frame["ts"] <= "2026-01-26T02:00Z")
            frame.loc[broken, "b"] += 8
        frames.append(frame)
    folder = settings.home / "hourly"
    folder.mkdir(parents=True)
    pd.concat(frames).to_csv(folder / "all.csv", index=False)
    return load_monitor(write_monitor(settings.monitors_dir, "hourly", HOURLY))


def jan(d: int) -> datetime:
    return datetime(2026, 1, d, tzinfo=UTC)


def train_and_score_across_the_break(monitor: Monitor, settings: Settings, order: str) -> None:
    """Train on the first 20 days, then score the two days around site x's break."""
    jobs.ingest(monitor, jan(1), jan(21), settings=settings)
    jobs.train(monitor, settings=settings)
    days = [(jan(25), jan(26)), (jan(26), jan(27))]
    for start, end in days if order == "forward" else days[::-1]:
        jobs.ingest(monitor, start, end, settings=settings)
        jobs.score(monitor, start, end, settings=settings)


@pytest.mark.parametrize("order", ["forward", "backfill in reverse"])
def test_an_incident_across_midnight_is_one_event(
    hourly: Monitor, settings: Settings, order: str
) -> None:
    train_and_score_across_the_break(hourly, settings, order)
    with transaction(store.engine(settings.store_url)) as session:
        events = [e for e in events_overlapping(session, 1, jan(25), jan(27)) if e.entity == "x"]
    incident = [e for e in events if e.anomalies > 1]
    assert len(incident) == 1
    assert incident[0].start_ts == datetime(2026, 1, 25, 22, tzinfo=UTC)
    assert incident[0].end_ts == datetime(2026, 1, 26, 2, tzinfo=UTC)
    assert incident[0].anomalies == 5
    assert incident[0].top_features[0]["feature"] == "b"
    assert not incident[0].is_open


@pytest.mark.parametrize("order", ["forward", "backfill in reverse"])
def test_with_smoothing_an_event_starts_where_its_first_anomalys_scores_start(
    hourly: Monitor, settings: Settings, order: str
) -> None:
    """A score smoothed over 3 steps averages the raw scores of its step and the 2 before:
    the event reaches back 2 hours before its first anomaly."""
    smoothed = load_monitor(
        write_monitor(settings.monitors_dir, "smoothed", HOURLY + "detector: {smoothing: 3}\n")
    )
    train_and_score_across_the_break(smoothed, settings, order)
    with transaction(store.engine(settings.store_url)) as session:
        scores = read_scores(session, 1, jan(25), jan(27))
        events = [e for e in events_overlapping(session, 1, jan(24), jan(27)) if e.entity == "x"]
    flagged = scores[(scores["entity"] == "x") & scores["is_anomaly"]]["ts"]
    broken = datetime(2026, 1, 25, 22, tzinfo=UTC)  # the break runs from 22:00 to 02:00
    incident = [e for e in events if e.start_ts <= broken <= e.end_ts]
    assert len(incident) == 1
    first = flagged[flagged >= incident[0].start_ts].min()
    assert first == broken, "the first smoothed score over the break is already anomalous"
    assert incident[0].start_ts == broken - timedelta(hours=2)
    assert incident[0].end_ts == datetime(2026, 1, 26, 4, tzinfo=UTC), "smoothing's tail"
    # A batch's first two steps without the rows before it as context (day 25's always: day
    # 24 was never ingested; day 26's when scored before day 25 was ingested) are a mean of
    # fewer than 3 raw scores: stored but not judged (atalaia.representation.judged).
    unjudged = scores[(scores["entity"] == "x") & ~scores["judged"]]["ts"]
    first_two = [jan(25), jan(25) + timedelta(hours=1)]
    if order == "forward":
        assert list(unjudged) == first_two and incident[0].anomalies == 7
    else:
        assert list(unjudged) == [*first_two, jan(26), jan(26) + timedelta(hours=1)]
        assert incident[0].anomalies == 5


def test_labelled_incidents_are_left_out_of_the_baseline(
    hourly: Monitor, settings: Settings
) -> None:
    jobs.ingest(hourly, jan(1), jan(21), settings=settings)
    with transaction(store.engine(settings.store_url)) as session:
        add_label(session, 1, jan(2), jan(3) - timedelta(hours=1), entity="x", note="outage")
    result = jobs.train(hourly, settings=settings)
    assert result.train_rows + result.calibration_rows == 2 * 20 * 24 - 24


def test_score_before_ingest_or_train_fails_clearly_and_is_recorded(
    servers: Monitor, settings: Settings
) -> None:
    jobs.ingest(servers, *day(0), settings=settings)
    with pytest.raises(NotFoundError, match="no champion model; run train first"):
        jobs.score(servers, *day(0), settings=settings)
    with pytest.raises(NotFoundError, match="run ingest first"):
        jobs.score(servers, *day(1), settings=settings)
    failed = [r for r in runs(settings) if r.status == "failed"]
    assert [r.job for r in failed] == ["score", "score"]
    assert "run ingest first" in failed[1].message
    failure = textfile_path(settings, "servers", "score", failure=True).read_text()
    assert "atalaia_last_failure_timestamp_seconds" in failure
    assert not textfile_path(settings, "servers", "score").exists()


def test_a_tampered_model_file_is_refused(servers: Monitor, settings: Settings) -> None:
    trained(servers, settings)
    jobs.ingest(servers, *day(3), settings=settings)
    weights = settings.models_dir / "servers" / "v0001" / "weights.npz"
    weights.write_bytes(b"not an npz file")
    with pytest.raises(AtalaiaError, match="do not match the sha256 recorded"):
        jobs.score(servers, *day(3), settings=settings)
    shutil.rmtree(weights.parent)
    with pytest.raises(AtalaiaError, match="model files .* are missing"):
        jobs.score(servers, *day(3), settings=settings)


def test_a_changed_landed_batch_is_refused(servers: Monitor, settings: Settings) -> None:
    trained(servers, settings)
    landed = jobs.ingest(servers, *day(3), settings=settings)
    landed.landing_path.write_bytes(b"changed")
    with pytest.raises(AtalaiaError, match="changed since it was ingested"):
        jobs.score(servers, *day(3), settings=settings)


def test_empty_and_fully_rejected_intervals(hourly: Monitor, settings: Settings) -> None:
    with pytest.raises(EmptyBatchError, match="no rows in"):
        jobs.ingest(hourly, jan(29) + 5 * DAY, jan(29) + 6 * DAY, settings=settings)
    folder = settings.home / "hourly"
    bad = pd.DataFrame({"ts": ["2026-02-10T00:00:00Z"] * 2, "site": "x", "a": ["?", ""], "b": 1})
    bad.to_csv(folder / "bad.csv", index=False)
    result = jobs.ingest(
        hourly,
        datetime(2026, 2, 10, tzinfo=UTC),
        datetime(2026, 2, 11, tzinfo=UTC),
        settings=settings,
    )
    assert (result.rows, result.quarantined) == (0, 2)
    with transaction(store.engine(settings.store_url)) as session:
        reasons = sorted(r.reason for r in session.scalars(select(QuarantineRow)))
    assert reasons == ["feature a: missing", "feature a: not a number '?'"]
    jobs.ingest(hourly, jan(1), jan(21), settings=settings)
    jobs.train(hourly, settings=settings)
    with pytest.raises(EmptyBatchError, match="no accepted rows \\(2 quarantined\\)"):
        jobs.score(
            hourly,
            datetime(2026, 2, 10, tzinfo=UTC),
            datetime(2026, 2, 11, tzinfo=UTC),
            settings=settings,
        )


def test_a_missing_source_column_fails_the_ingest(hourly: Monitor, settings: Settings) -> None:
    broken = hourly.model_copy(update={"features": ["a", "b", "c"]})
    with pytest.raises(SourceError, match=r"column\(s\) c missing from .*all.csv"):
        jobs.ingest(broken, jan(1), jan(2), settings=settings)


def test_an_unreachable_pushgateway_is_logged_and_the_run_still_succeeds(
    servers: Monitor, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = Settings(**{**settings.__dict__, "pushgateway_url": "http://u:pw@127.0.0.1:1"})
    with caplog.at_level(logging.WARNING, logger="atalaia.metrics"):
        result = jobs.ingest(servers, *day(0), settings=unreachable)
    assert result.rows > 0
    assert "could not push metrics to Pushgateway http://u:***@127.0.0.1:1" in caplog.text
    assert "pw@" not in caplog.text
    assert [r.status for r in runs(settings)] == ["success"]


def test_sql_source_with_identifiers_that_need_quoting(settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    stamps = pd.date_range("2026-01-01", periods=48, freq="1h", tz="UTC")
    frame = pd.DataFrame({"Time Stamp": stamps.tz_convert(None), "Value; drop": np.arange(48.0)})
    frame.to_sql("Sensor Readings", create_engine(f"sqlite:///{source}"), index=False)
    monitor = load_monitor(
        write_monitor(
            tmp_path,
            "sensor",
            f"""\
source: {{kind: sql, url: 'sqlite:///{source}', table: Sensor Readings}}
timestamp: Time Stamp
features: ['Value; drop']
frequency: 1h
baseline: {{last_intervals: 1}}
""",
        )
    )
    result = jobs.ingest(monitor, jan(1), jan(2), settings=settings)
    assert (result.rows, result.quarantined) == (24, 0)


def test_a_baseline_shorter_than_two_seasons_is_refused(
    hourly: Monitor, settings: Settings
) -> None:
    body = HOURLY.replace(
        "calibration:", "detector: {kind: ar, window: 4, seasons: [14D]}\ncalibration:"
    )
    monitor = load_monitor(write_monitor(settings.monitors_dir, "fortnightly", body))
    jobs.ingest(monitor, jan(1), jan(21), settings=settings)
    with pytest.raises(EmptyBatchError, match="less than two seasons of 14 days"):
        jobs.train(monitor, settings=settings)


@pytest.mark.parametrize(
    ("spec", "oldest_lag"),
    [
        ("{kind: ar, window: 4, smoothing: 3}", 3),
        ("{kind: ar, window: 4, smoothing: 3, seasons: [1D]}", 25),  # a day and an hour back
    ],
)
def test_a_windowed_smoothed_batch_scores_as_if_scored_with_its_predecessor(
    hourly: Monitor, settings: Settings, spec: str, oldest_lag: int
) -> None:
    body = HOURLY.replace("calibration:", f"detector: {spec}\ncalibration:")
    windowed = load_monitor(write_monitor(settings.monitors_dir, "windowed", body))
    jobs.ingest(windowed, jan(1), jan(21), settings=settings)
    jobs.train(windowed, settings=settings)
    for start, end in [(jan(25), jan(26)), (jan(26), jan(27))]:
        jobs.ingest(windowed, start, end, settings=settings)
    second = jobs.score(windowed, jan(26), jan(27), settings=settings)
    with transaction(store.engine(settings.store_url)) as session:
        stored = read_scores(session, 1, jan(26), jan(27))
        model = session.scalars(select(ModelRow)).one()
        frames = [
            read_batch(b.landing_path, b.content_sha256)
            for b in batches_overlapping(session, 1, jan(25), jan(27))
        ]
    detector, calibrator = load_model(model.artifact_path, model.artifact_sha256)
    assert detector.lags_.max() == oldest_lag
    together = score_frame(pd.concat(frames), windowed, detector, calibrator, start=jan(26))
    assert second.rows == len(stored) == len(together) == 2 * 24
    np.testing.assert_allclose(
        stored.sort_values(["entity", "ts"])["raw_score"],
        together.sort_values(["entity", "ts"])["raw_score"],
    )
    # the broken relation in site x from 22:00 on the 25th still shows after midnight
    after_midnight = stored[
        (stored["entity"] == "x") & (stored["ts"] < jan(26) + timedelta(hours=3))
    ]
    assert after_midnight["is_anomaly"].any()


def stored_scores_and_events(settings: Settings, start: datetime, end: datetime) -> tuple:
    with transaction(store.engine(settings.store_url)) as session:
        scores = read_scores(session, 1, start, end)
        events = [
            (e.entity, e.start_ts, e.end_ts, e.peak_ts, e.peak_z, e.anomalies, e.is_open)
            + (e.top_features,)
            for e in events_overlapping(session, 1, start, end)
        ]
    return scores, events


@pytest.mark.parametrize(
    ("spec", "pool"),
    [
        ("{kind: gmm}", "held_out"),
        ("{kind: ar, window: 4, smoothing: 3}", "held_out"),
        ("{kind: ar, window: 4, smoothing: 3}", "unflagged"),
    ],
)
def test_a_batch_scored_in_small_pieces_gives_the_scores_and_events_of_one_piece(
    hourly: Monitor, settings: Settings, spec: str, pool: str
) -> None:
    """Pieces of 7 rows: rows alone split anywhere; windows, smoothing and a pool that grows
    within each entity keep entities whole."""
    body = HOURLY.replace("calibration:", f"detector: {spec}\ncalibration:")
    body = body.replace("fraction: 0.3}", f"fraction: 0.3, pool: {pool}}}")
    assert f"pool: {pool}" in body
    monitor = load_monitor(write_monitor(settings.monitors_dir, "pieces", body))
    jobs.ingest(monitor, jan(1), jan(21), settings=settings)
    jobs.train(monitor, settings=settings)
    jobs.ingest(monitor, jan(21), jan(28), settings=settings)

    whole = jobs.score(monitor, jan(21), jan(28), settings=settings)
    scores, events = stored_scores_and_events(settings, jan(21), jan(28))
    pieces = jobs.score(monitor, jan(21), jan(28), settings=replace(settings, chunk_rows=7))
    scores_in_pieces, events_in_pieces = stored_scores_and_events(settings, jan(21), jan(28))

    assert (pieces.rows, pieces.anomalies, pieces.max_z) == (
        whole.rows,
        whole.anomalies,
        whole.max_z,
    )
    pd.testing.assert_frame_equal(scores_in_pieces, scores)
    assert events_in_pieces == events
    assert any(event[0] == "x" for event in events)  # site x's break is found either way
