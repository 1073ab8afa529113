"""A model version is bound to the monitor settings it was trained with; the calibration pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from atalaia import jobs, store
from atalaia.artifacts import load_model
from atalaia.config import Monitor, load_monitor
from atalaia.errors import ConfigError
from atalaia.settings import Settings
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
    # day 3 is judged against the held-out scores alone, day 4 also against day 3's unflagged
    np.testing.assert_allclose(first["p_value"], calibrator.p_values(first["raw_score"]))
    earlier = first.loc[~first["is_anomaly"], "raw_score"].to_numpy()
    expected = calibrator.pooled(earlier).p_values(second["raw_score"])
    np.testing.assert_allclose(second["p_value"], expected)
    assert not np.allclose(expected, calibrator.p_values(second["raw_score"]))
