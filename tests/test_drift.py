"""The drift check: the distance between recent and calibration scores, and the drift job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from atalaia import jobs
from atalaia.config import Monitor
from atalaia.drift import check_drift
from atalaia.metrics import textfile_path
from atalaia.settings import Settings

DAY = timedelta(days=1)
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def test_the_same_distribution_is_no_drift_and_a_shift_of_the_bulk_is() -> None:
    rng = np.random.default_rng(0)
    calibration = rng.normal(0, 1, 3000)
    same = check_drift(
        rng.normal(0, 1, 2000), np.zeros(2000), calibration, max_distance=0.2, min_rows=100
    )
    assert not same.detected and same.distance < 0.05
    shifted = check_drift(
        rng.normal(1, 1, 2000), np.zeros(2000), calibration, max_distance=0.2, min_rows=100
    )
    assert shifted.detected and 0.3 < shifted.distance < 0.45
    assert shifted.reason == f"distance {shifted.distance:.3f} above the limit 0.2"


def test_a_short_incident_moves_little_of_the_distance() -> None:
    rng = np.random.default_rng(1)
    calibration = rng.normal(0, 1, 3000)
    recent = rng.normal(0, 1, 2000)
    recent[:20] += 50  # 1 % of the rows far out: flagged, but the bulk is where it was
    flags = recent > 3
    result = check_drift(recent, flags, calibration, max_distance=0.2, min_rows=100)
    assert not result.detected
    assert result.anomaly_ratio >= 0.01


def test_too_few_rows_give_no_verdict() -> None:
    result = check_drift(
        np.full(50, 99.0), np.ones(50), np.zeros(500), max_distance=0.2, min_rows=100
    )
    assert (result.detected, result.distance, result.anomalies) == (False, 0.0, 50)
    assert result.reason == "50 recent rows, fewer than 100"


def shift_memory(settings: Settings, first_day: int, points: float) -> None:
    """Raise every host's memory by ``points`` from day ``first_day`` of the demo data on."""
    for path in sorted((settings.home / "sources" / "servers").glob("*.csv")):
        frame = pd.read_csv(path, dtype=str)
        if pd.Timestamp(frame["timestamp"].iloc[0]) >= pd.Timestamp(T0 + first_day * DAY):
            frame["memory"] = frame["memory"].astype(float) + points
            frame.to_csv(path, index=False)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_drift_job_finds_a_lasting_shift_and_exports_it(
    servers: Monitor, settings: Settings
) -> None:
    shift_memory(settings, 10, 5.0)
    for n in range(3):
        jobs.ingest(servers, T0 + n * DAY, T0 + (n + 1) * DAY, settings=settings)
    jobs.train(servers, settings=settings)
    for n in range(7, 12):
        jobs.ingest(servers, T0 + n * DAY, T0 + (n + 1) * DAY, settings=settings)
        jobs.score(servers, T0 + n * DAY, T0 + (n + 1) * DAY, settings=settings)

    # Days 7-9: the demo's incidents, but no drift.
    calm = jobs.check_drift(servers, T0 + 10 * DAY, settings=settings)
    assert (calm.start, calm.end) == (T0 + 7 * DAY, T0 + 10 * DAY)
    assert calm.check.rows == 3 * 6 * 288 - 1  # day 9's sensor glitch is quarantined
    assert not calm.check.detected
    text = textfile_path(settings, "servers", "drift").read_text()
    assert 'atalaia_drift_detected{job="drift",monitor="servers"} 0.0' in text
    assert f'atalaia_drift_statistic{{job="drift",monitor="servers"}} {calm.check.distance}' in text

    # Days 9-11: two of the three days with memory 5 points up on every host.
    drifted = jobs.check_drift(servers, T0 + 12 * DAY, settings=settings)
    assert drifted.check.detected
    assert drifted.check.distance > calm.check.distance + 0.1
    text = textfile_path(settings, "servers", "drift").read_text()
    assert 'atalaia_drift_detected{job="drift",monitor="servers"} 1.0' in text
    assert 'atalaia_champion_version{job="drift",monitor="servers"} 1.0' in text
    ratio = drifted.check.anomaly_ratio
    assert f'atalaia_recent_anomaly_ratio{{job="drift",monitor="servers"}} {ratio}' in text
