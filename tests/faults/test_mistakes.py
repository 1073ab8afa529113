"""Probes: mistakes a person makes (dates, durations, monitor keys, detector parameters,
usage), each one line, recording no failed job; and paths that hold from anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from atalaia.settings import Settings
from tests.faults.probe import PROBE_MONITOR, cli, counts, ok, one_error_line, series

COMMANDS = {
    "ingest": ["ingest", "probe", "--start", "{}", "--end", "2026-01-02"],
    "score": ["score", "probe", "--start", "2026-01-01", "--end", "{}"],
    "train": ["train", "probe", "--start", "{}", "--end", "2026-01-08"],
    "report": ["report", "probe", "--from", "{}", "--to", "2026-01-08"],
    "events": ["events", "probe", "--since", "{}"],
    "labels add": ["labels", "add", "probe", "--start", "{}", "--end", "2026-01-02"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("typed", "said"), [("2026-13-45", "not a valid date"), ("someday", "expected a date")]
)
def test_a_date_that_is_not_one_is_one_line(
    home: Settings, command: str, typed: str, said: str
) -> None:
    args = [arg.format(typed) for arg in COMMANDS[command]]
    one_error_line(cli(*args), repr(typed), said)
    assert counts(home)["failed"] == 0


def test_common_unambiguous_dates_are_accepted_and_an_ambiguous_one_is_not(
    home: Settings,
) -> None:
    ok(cli("ingest", "probe", "--start", "2026-1-1", "--end", "2026/01/08"))
    ok(cli("ingest", "probe", "--start", "2026-01-08T00:00Z", "--end", "13/01/2026"))
    ok(cli("train", "probe"))
    ok(cli("labels", "add", "probe", "--start", "2026-1-9 5:00", "--end", "2026-1-9 6:00"))
    one_error_line(
        cli("score", "probe", "--start", "08/01/2026", "--end", "13/01/2026"), "ambiguous"
    )
    assert counts(home)["landed"] == len(series())  # every row, once


@pytest.mark.parametrize("every", ["0D", "0h", "-1D", "1d", "D0"])
def test_a_zero_or_malformed_every_is_refused(home: Settings, every: str) -> None:
    result = cli(
        "ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-02", "--every", every
    )
    one_error_line(result, "--every", "positive number")
    assert counts(home)["landed"] == 0


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (("frequency:", "frequncy:"), "frequncy: unknown setting; did you mean 'frequency'?"),
        (("calibration: {", "calibration: {alhpa: 0.1, "), "did you mean 'alpha'?"),
        (("timestamp: ts", "timestamp: ts\ndetector: {params: {max_components: abc}}"), "abc"),
        (("timestamp: ts", "timestamp: ts\ndetector: {params: {max_components: -1}}"), ">= 1"),
        (("timestamp: ts", "timestamp: ts\ndetector: {window: 5000}"), "baseline holds only 168"),
        (("timestamp: ts", "timestamp: ts\ndetector: {smoothing: 200}"), "baseline holds only"),
    ],
)
def test_a_monitor_mistake_is_one_line_before_any_work(
    home: Settings, edit: tuple[str, str], said: str
) -> None:
    (home.monitors_dir / "probe.yaml").write_text(PROBE_MONITOR.replace(*edit))
    one_error_line(cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-02"), said)
    assert counts(home)["landed"] == 0


def test_a_window_longer_than_the_last_intervals_baseline_is_refused_before_fitting(
    home: Settings,
) -> None:
    text = PROBE_MONITOR.replace(
        "baseline: {start: 2026-01-01T00:00:00Z, end: 2026-01-08T00:00:00Z}",
        "baseline: {last_intervals: 1}\ndetector: {window: 30}",
    )
    (home.monitors_dir / "probe.yaml").write_text(text)
    ok(cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-02"))
    one_error_line(cli("train", "probe"), "window 30", "baseline holds only 24")
    assert counts(home)["versions"] == 0


def test_a_usage_mistake_is_a_refused_run_not_a_job_failure(home: Settings) -> None:
    ok(cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-08"))
    ok(cli("train", "probe"))
    one_error_line(cli("models", "promote", "probe", "7"), "no model version 7")
    one_error_line(cli("models", "promote", "probe", "1"), "version 1 is the champion")
    one_error_line(cli("models", "rollback", "probe"), "replaced no earlier champion")
    assert counts(home)["failed"] == 0
    assert not list(home.metrics_dir.glob("*_failure.prom"))


def test_a_relative_home_stores_paths_that_hold_from_another_folder(
    home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    monkeypatch.setenv("ATALAIA_HOME", "../home")
    ok(cli("ingest", "probe", "--start", "2026-01-01", "--end", "2026-01-08"))
    ok(cli("ingest", "probe", "--start", "2026-01-08", "--end", "2026-01-09"))
    ok(cli("train", "probe"))
    monkeypatch.chdir(tmp_path / "two")
    monkeypatch.setenv("ATALAIA_HOME", str(tmp_path / "home"))
    ok(cli("score", "probe", "--start", "2026-01-08", "--end", "2026-01-09"))
    assert counts(home)["scores"] == 48


def test_db_upgrade_makes_relative_paths_of_older_versions_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from atalaia import store
    from storage import migrate

    monkeypatch.chdir(tmp_path)
    (tmp_path / "atalaia-data" / "landing").mkdir(parents=True)
    (tmp_path / "atalaia-data" / "landing" / "day.parquet").write_bytes(b"landed")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = store.engine(url)
    migrate.upgrade(engine, "0002")  # a store as an older version left it
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO monitors (id, name, config, config_sha256, created_at, updated_at) "
                "VALUES (1, 'old', '{}', '', '2026-01-01', '2026-01-01')"
            )
        )
        for identifier, path in ((1, "atalaia-data/landing/day.parquet"), (2, "gone.parquet")):
            connection.execute(
                text(
                    "INSERT INTO batches (id, monitor_id, interval_start, interval_end, "
                    "row_count, quarantined_count, landing_path, content_sha256, ingested_at) "
                    "VALUES (:id, 1, :id, :id, 1, 0, :path, '', '2026-01-01')"
                ),
                {"id": identifier, "path": path},
            )
    migrate.upgrade(engine)  # what `atalaia db upgrade` runs
    with engine.connect() as connection:
        paths = connection.execute(text("SELECT landing_path FROM batches ORDER BY id")).scalars()
        assert list(paths) == [str(tmp_path / "atalaia-data/landing/day.parquet"), "gone.parquet"]
    engine.dispose()
    store.engine.cache_clear()
