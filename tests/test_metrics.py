"""Metrics: names and labels, textfiles, and pushes that never fail a job."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from atalaia import metrics
from atalaia.settings import Settings
from storage.engine import redact


def settings_in(tmp_path: Path, pushgateway: str | None = None) -> Settings:
    env = {"ATALAIA_HOME": str(tmp_path)}
    if pushgateway:
        env["ATALAIA_PUSHGATEWAY_URL"] = pushgateway
    return Settings.from_env(env)


def samples(path: Path) -> dict[str, tuple[dict[str, str], float]]:
    return {
        sample.name: (sample.labels, sample.value)
        for family in text_string_to_metric_families(path.read_text())
        for sample in family.samples
    }


def test_every_metric_follows_the_naming_rules() -> None:
    for name in metrics.METRICS:
        assert name.startswith("atalaia_")
        assert not name.endswith("_total"), "batch figures are gauges, not counters"
    assert "atalaia_last_success_timestamp_seconds" in metrics.METRICS


def test_success_writes_figures_with_monitor_and_job_labels_only(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    metrics.export_success(settings, "web", "score", {"atalaia_batch_anomalies": 3}, 1.5)
    found = samples(metrics.textfile_path(settings, "web", "score"))
    assert found["atalaia_batch_anomalies"] == ({"monitor": "web", "job": "score"}, 3.0)
    assert found["atalaia_run_duration_seconds"][1] == 1.5
    assert found["atalaia_last_success_timestamp_seconds"][1] > 1.7e9


def test_failure_leaves_the_last_success_untouched(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    metrics.export_success(settings, "web", "score", {}, 1.0)
    success = metrics.textfile_path(settings, "web", "score")
    before = success.read_text()
    metrics.export_failure(settings, "web", "score")
    assert success.read_text() == before
    failure = samples(metrics.textfile_path(settings, "web", "score", failure=True))
    assert list(failure) == ["atalaia_last_failure_timestamp_seconds"]


def test_an_unreachable_pushgateway_is_logged_without_its_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_in(tmp_path, pushgateway="http://ops:hunter2@127.0.0.1:1")
    with caplog.at_level(logging.WARNING, logger="atalaia.metrics"):
        metrics.export_success(settings, "web", "score", {}, 1.0)
    assert "could not push metrics" in caplog.text
    assert "hunter2" not in caplog.text
    assert metrics.textfile_path(settings, "web", "score").exists()


def test_an_unwritable_metrics_folder_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "metrics"
    blocker.write_text("a file where the folder should be")
    settings = settings_in(tmp_path)
    with caplog.at_level(logging.WARNING, logger="atalaia.metrics"):
        metrics.export_success(settings, "web", "score", {}, 1.0)
    assert "could not write metrics" in caplog.text


def test_redact_url() -> None:
    assert redact("http://a:b@h:9091/x") == "http://a:***@h:9091/x"
    assert redact("http://h:9091") == "http://h:9091"
