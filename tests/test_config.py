"""Monitor files and settings: what is accepted, and how a bad file is reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from atalaia.config import FileSource, SqlSource, find_monitor, load_monitor, load_monitors
from atalaia.errors import ConfigError
from atalaia.representation import lookback
from atalaia.settings import DEFAULT_STORE_URL, Settings
from tests.conftest import REPO, write_monitor

MINIMAL = """\
source: {kind: files, path: data/*.csv}
timestamp: ts
features: [value]
frequency: 1min
baseline: {last_intervals: 3}
"""


def test_minimal_monitor_gets_defaults_and_a_source_path_next_to_the_file(tmp_path: Path) -> None:
    monitor = load_monitor(write_monitor(tmp_path, "minimal", MINIMAL))
    assert monitor.name == "minimal"
    assert isinstance(monitor.source, FileSource)
    assert monitor.source.path == str(tmp_path.resolve() / "data/*.csv")
    assert monitor.detector.kind == "gmm"
    assert monitor.calibration.alpha == 0.01
    assert monitor.step == timedelta(minutes=1)
    assert monitor.entities == []


def test_the_shipped_demo_monitor_is_valid() -> None:
    monitor = find_monitor(REPO / "monitors", "demo")
    assert monitor.baseline.start == datetime(2026, 1, 5, tzinfo=UTC)
    assert monitor.step == timedelta(minutes=5)


def test_environment_variables_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALES_DB", "postgresql+psycopg://reader:secret@db/sales")
    body = MINIMAL.replace(
        "source: {kind: files, path: data/*.csv}",
        "source: {kind: sql, url: '${SALES_DB}', table: orders}",
    )
    monitor = load_monitor(write_monitor(tmp_path, "sales", body))
    assert isinstance(monitor.source, SqlSource)
    assert monitor.source.url.endswith("@db/sales")


def test_seasons_count_in_steps_and_lengthen_the_lookback(tmp_path: Path) -> None:
    body = MINIMAL.replace("frequency: 1min", "frequency: 5min") + (
        "detector: {kind: ar, window: 3, smoothing: 2, seasons: [1D, 7D]}\n"
    )
    monitor = load_monitor(write_monitor(tmp_path, "seasonal", body))
    assert monitor.season_steps == [288, 2016]
    # the oldest lag (a week and a step) plus the smoothing's step before
    assert lookback(monitor) == timedelta(minutes=5) * (2017 + 1)


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (("frequency: 1min", "frequency: often"), "frequency"),
        (("features: [value]", "features: []"), "features"),
        (("baseline: {last_intervals: 3}", "baseline: {start: 2026-01-02}"), "baseline"),
        (("timestamp: ts", "timestamp: ts\ncolour: blue"), "colour"),
        (("features: [value]", "features: [ts]"), "columns used twice: ts"),
        (("source: {kind: files, path: data/*.csv}", "source: {kind: sql, url: x}"), "source.sql"),
        (("frequency: 1min", "frequency: 1min\ncalibration: {alpha: 2}"), "calibration.alpha"),
        (("frequency: 1min", "frequency: 1min\ndetector: {seasons: [daily]}"), "seasons"),
        (("frequency: 1min", "frequency: 1min\ndetector: {seasons: [1D]}"), "needs windows"),
        (
            ("frequency: 1min", "frequency: 1min\ndetector: {window: 4, seasons: [90s]}"),
            "not a whole number of 1min steps",
        ),
    ],
)
def test_a_bad_field_is_named_with_the_file(
    tmp_path: Path, change: tuple[str, str], names: str
) -> None:
    path = write_monitor(tmp_path, "broken", MINIMAL.replace(*change))
    with pytest.raises(ConfigError) as error:
        load_monitor(path)
    assert str(path) in str(error.value)
    assert names in str(error.value)


def test_unset_variable_invalid_yaml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    unset = write_monitor(tmp_path, "unset", MINIMAL.replace("data/*.csv", "'${NOT_SET_ANYWHERE}'"))
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE is not set"):
        load_monitor(unset)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as error:
        load_monitor(bad_yaml)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_monitor(tmp_path / "absent.yaml")


def test_a_folder_of_monitors_and_an_unknown_name(tmp_path: Path) -> None:
    write_monitor(tmp_path, "one", MINIMAL)
    write_monitor(tmp_path, "two", MINIMAL)
    assert list(load_monitors(tmp_path)) == ["one", "two"]
    with pytest.raises(ConfigError, match="no monitor named 'three'"):
        find_monitor(tmp_path, "three")


def test_settings_default_to_embedded_servers_free_storage() -> None:
    settings = Settings.from_env({})
    assert settings.store_url == DEFAULT_STORE_URL == "sqlite:///atalaia.db"
    assert settings.pushgateway_url is None
    assert settings.landing_dir == Path.cwd() / "atalaia-data/landing"
    assert settings.metrics_dir == Path.cwd() / "atalaia-data/metrics"


def test_settings_follow_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ATALAIA_HOME": "/srv/atalaia",
            "ATALAIA_STORE_URL": "postgresql+psycopg://atalaia@db/atalaia",
            "ATALAIA_PUSHGATEWAY_URL": "http://pushgateway:9091",
        }
    )
    assert settings.models_dir == Path("/srv/atalaia/models")
    assert settings.store_url.startswith("postgresql+psycopg://")
    assert settings.pushgateway_url == "http://pushgateway:9091"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            "{start: 2026-02-01, end: 2026-01-01}",
            "schedule: 'end' must be after 'start'",
        ),
        ("{max_data_delay: 0h}", "schedule.max_data_delay: '0h' is not a positive number"),
        ("{max_data_delay: soon}", "schedule.max_data_delay: 'soon' is not a positive number"),
    ],
)
def test_a_schedule_end_before_its_start_or_a_bad_data_delay_is_refused(
    tmp_path: Path, schedule: str, message: str
) -> None:
    path = write_monitor(tmp_path, "scheduled", f"{MINIMAL}schedule: {schedule}\n")
    with pytest.raises(ConfigError) as raised:
        load_monitor(path)
    assert str(raised.value).startswith(f"{path}: {message}")


def test_a_schedule_end_and_a_data_delay_are_read_as_utc_and_a_duration(tmp_path: Path) -> None:
    body = f"{MINIMAL}schedule: {{end: '2026-03-01T01:00:00+01:00', max_data_delay: 2D}}\n"
    monitor = load_monitor(write_monitor(tmp_path, "scheduled", body))
    assert monitor.schedule.end == datetime(2026, 3, 1, tzinfo=UTC)
    assert monitor.schedule.max_data_delay == "2D"
    assert load_monitor(write_monitor(tmp_path, "default", MINIMAL)).schedule.max_data_delay == "6h"
