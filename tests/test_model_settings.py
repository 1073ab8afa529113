"""A model version is bound to the monitor settings it was trained with; the calibration pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import yaml

from atalaia import jobs, store
from atalaia.artifacts import load_model
from atalaia.config import Monitor, load_monitor
from atalaia.errors import ConfigError
from atalaia.scoring import score_frame
from atalaia.settings import Settings
from atalaia.training import Baseline, fit_model
from storage.engine import transaction
from storage.registry import champion
from storage.scores import read_scores
from tests.conftest import SERVERS_MONITOR, write_monitor

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def day(n: int) -> tuple[datetime, datetime]:
    return T0 + n * DAY, T0 + (n + 1) * DAY


def rewritten(settings: Settings, body: str) -> Monitor:
    return load_monitor(write_monitor(settings.monitors_dir, "servers", body))


def trained(monitor: Monitor, settings: Settings) -> None:
    for n in range(3):
        jobs.ingest(monitor, *day(n), settings=settings)
    jobs.train(monitor, settings=settings)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        ({"calibration:\n  alpha: 0.01": "calibration:\n  alpha: 0.02"}, "calibration.alpha"),
        ({"frequency: 5min": "frequency: 5min\ndetector:\n  smoothing: 3"}, "detector.smoothing"),
        ({"alpha: 0.01": "alpha: 0.01\n  pool: unflagged"}, "calibration.pool"),
    ],
)
def test_scoring_refuses_a_monitor_that_differs_from_the_model_and_names_the_field(
    servers: Monitor, settings: Settings, edit: dict[str, str], field: str
) -> None:
    trained(servers, settings)
    jobs.ingest(servers, *day(3), settings=settings)
    body = SERVERS_MONITOR
    for old, new in edit.items():
        assert old in body
        body = body.replace(old, new)
    changed = rewritten(settings, body)

    with pytest.raises(ConfigError, match=rf"version 1: {field} is .* trained with .*retrain"):
        jobs.score(changed, *day(3), settings=settings)
    with transaction(store.engine(settings.store_url)) as session:
        assert read_scores(session, 1, *day(3)).empty, "nothing is scored with a stale model"

    jobs.train(changed, settings=settings)
    jobs.promote_version(changed, 2, "the new settings", settings=settings)
    assert jobs.score(changed, *day(3), settings=settings).model_version == 2


def test_retraining_after_a_settings_change_promotes_without_a_comparison(
    servers: Monitor, settings: Settings
) -> None:
    trained(servers, settings)
    for n in range(3, 5):
        jobs.ingest(servers, *day(n), settings=settings)
    changed = rewritten(settings, SERVERS_MONITOR.replace("alpha: 0.01", "alpha: 0.005"))
    result = jobs.retrain(changed, settings=settings)
    assert result.promoted and result.evaluation is None
    assert "calibration.alpha" in result.reason


def test_an_unflagged_pool_judges_a_batch_against_the_earlier_unflagged_scores(
    settings: Settings, servers: Monitor
) -> None:
    pooled = rewritten(
        settings, SERVERS_MONITOR.replace("alpha: 0.01", "alpha: 0.01\n  pool: unflagged")
    )
    trained(pooled, settings)
    for n in (3, 4):
        jobs.ingest(pooled, *day(n), settings=settings)
        jobs.score(pooled, *day(n), settings=settings)

    with transaction(store.engine(settings.store_url)) as session:
        model = champion(session, 1)
        first, second = (read_scores(session, 1, *day(n)) for n in (3, 4))
    _, calibrator = load_model(model.artifact_path, model.artifact_sha256)
    # Each step is judged against the calibration scores and the judged, unflagged scores
    # at least one step (window 1, smoothing 1) older: of any host before the day, of its
    # own host within it.
    delay = pd.Timedelta(minutes=5)
    earlier = first[~first["is_anomaly"] & first["judged"]]
    for host, rows in second.groupby("entity"):
        today: list[tuple[pd.Timestamp, float]] = []
        for ts, score, p_value in rows.sort_values("ts")[["ts", "raw_score", "p_value"]].values:
            due = [s for t, s in today if t <= ts - delay]
            pool = np.r_[earlier.loc[earlier["ts"] <= ts - delay, "raw_score"], due]
            expected = calibrator.pooled(pool).p_values([score])[0]
            assert p_value == pytest.approx(expected, rel=1e-9), host
            if expected >= calibrator.alpha:
                today.append((ts, score))
    assert not np.allclose(second["p_value"], calibrator.p_values(second["raw_score"]))


def test_steps_with_too_little_history_are_stored_but_not_judged() -> None:
    monitor = Monitor.model_validate(
        {
            "name": "series",
            "source": {"kind": "files", "path": "/unused/*.csv"},
            "timestamp": "ts",
            "features": ["x"],
            "frequency": "1min",
            "detector": {"kind": "ar", "window": 4, "smoothing": 3},
            "baseline": {"start": "2026-01-01", "end": "2026-01-02"},
        }
    )
    rng = np.random.default_rng(5)
    stamps = pd.date_range("2026-01-01", periods=1440, freq="1min", tz="UTC")
    baseline = pd.DataFrame({"ts": stamps, "x": rng.normal(size=1440)})
    fitted = fit_model(monitor, Baseline(stamps[0], stamps[-1], baseline, "sha"))
    # a batch after a two-day gap: no context, so its first window + smoothing - 2 = 5
    # steps lack history; the same spike at step 2 and at step 50
    later = pd.date_range("2026-01-04", periods=100, freq="1min", tz="UTC")
    values = rng.normal(size=100)
    values[[2, 50]] = 25.0
    scores = score_frame(
        pd.DataFrame({"ts": later, "x": values}), monitor, fitted.detector, fitted.calibrator
    )
    assert scores["judged"].tolist() == [False] * 5 + [True] * 95
    unjudged = scores[~scores["judged"]]
    assert (unjudged["p_value"] == 1.0).all() and not unjudged["is_anomaly"].any()
    assert scores.loc[50, "is_anomaly"], "the spike is flagged where the history is full"


def test_the_calibration_settings_round_trip_through_yaml(tmp_path) -> None:
    from benchmarks.monitored import load_template

    body = SERVERS_MONITOR.replace(
        "alpha: 0.01", "alpha: 0.0001\n  tail_floor: 1.5\n  pool: unflagged\n  pool_limit: 5000"
    )
    monitor = load_monitor(write_monitor(tmp_path, "servers", body))
    calibration = monitor.calibration
    assert (calibration.alpha, calibration.tail_floor) == (0.0001, 1.5)
    assert (calibration.pool, calibration.pool_limit) == ("unflagged", 5000)
    dumped = yaml.safe_dump(monitor.model_dump(mode="json"))
    assert Monitor.model_validate(yaml.safe_load(dumped)).model_dump() == monitor.model_dump()
    for name in ("smap", "nab"):  # the benchmarks' templates are monitor settings too
        template = load_template(name)
        document = yaml.safe_load(body) | {"name": name, "detector": template["detector"]}
        document["calibration"] = template["calibration"]
        assert Monitor.model_validate(document).calibration.pool == "unflagged"
