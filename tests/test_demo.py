"""The demo end to end on SQLite, through the command line, as `make demo` runs it."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from atalaia import demo_data, store
from atalaia.cli import app
from storage.engine import transaction
from storage.events import events_overlapping
from storage.scores import read_scores
from tests.conftest import REPO


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{home / 'atalaia.db'}"
    env = {
        "ATALAIA_HOME": str(home),
        "ATALAIA_STORE_URL": url,
        "ATALAIA_MONITORS_DIR": str(REPO / "monitors"),
        "COLUMNS": "160",
    }
    result = CliRunner().invoke(app, ["demo"], env=env)
    assert result.exit_code == 0, result.output
    with transaction(store.engine(url)) as session:
        events = events_overlapping(
            session, 1, demo_data.START, demo_data.START + timedelta(days=30)
        )
        scores = read_scores(session, 1, demo_data.START, demo_data.START + timedelta(days=30))
    yield result.output, events, scores, home
    store.engine(url).dispose()
    store.engine.cache_clear()


def test_every_injected_incident_is_overlapped_by_an_event(demo_run) -> None:
    output, events, _, _ = demo_run
    for incident in demo_data.INCIDENTS:
        overlapping = [
            e
            for e in events
            if e.entity == incident.host
            and e.start_ts <= incident.end
            and e.end_ts >= incident.start
        ]
        assert overlapping, f"{incident.kind} on {incident.host} was missed"
        assert f"{incident.kind} ({incident.description}): found" in output


def test_each_incident_is_attributed_to_a_feature_it_changed(demo_run) -> None:
    _, events, _, _ = demo_run
    changed = {
        "spike": {"cpu", "latency_ms", "error_rate"},
        "level shift": {"memory"},
        "broken correlation": {"cpu", "latency_ms"},
    }
    for incident in demo_data.INCIDENTS:
        event = next(
            e
            for e in events
            if e.entity == incident.host
            and e.start_ts <= incident.end
            and e.end_ts >= incident.start
        )
        assert event.top_features[0]["feature"] in changed[incident.kind]


def test_clean_hosts_raise_few_false_alarms(demo_run) -> None:
    _, _, scores, _ = demo_run
    alpha, calibration_rows = 0.001, 3024
    clean = scores[scores["entity"].isin(demo_data.CLEAN_HOSTS)]
    assert len(clean) == 3 * 7 * 288 - 1  # host-1's glitch row is quarantined
    bound = 4 * np.sqrt(alpha * (1 - alpha) * (1 / calibration_rows + 1 / len(clean)))
    assert clean["is_anomaly"].mean() < alpha + bound


def test_the_demo_reports_what_it_did(demo_run) -> None:
    output, _, _, home = demo_run
    assert "Monitor demo" in output
    assert "Ingested 14 daily batches" in output
    assert "2 quarantined" in output
    assert "feature cpu: not a number 'n/a'" in output
    assert "Trained version 1 (gmm, champion)" in output
    assert "Scored 7 batches: 12095 rows" in output
    assert (home / "metrics" / "atalaia_demo_score.prom").exists()
    assert len(list((home / "landing" / "demo").glob("*.parquet"))) == 14


def test_sample_data_is_deterministic() -> None:
    first, second = demo_data.generate(seed=7), demo_data.generate(seed=7)
    assert first.equals(second)
    assert not first.equals(demo_data.generate(seed=8))
