"""Walking a monitor forward: the intervals of its schedules, and the jobs in order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from atalaia.cli import app
from atalaia.config import Monitor
from atalaia.settings import Settings
from atalaia.walk import scheduled_intervals, ticks_within


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


def test_scheduled_intervals_cut_a_range_at_each_tick() -> None:
    assert scheduled_intervals("@daily", at(5, 6), at(7, 12)) == [
        (at(5, 6), at(6)),
        (at(6), at(7)),
        (at(7), at(7, 12)),
    ]
    assert scheduled_intervals("0 */12 * * *", at(5), at(6)) == [
        (at(5), at(5, 12)),
        (at(5, 12), at(6)),
    ]
    # 2026-01-11 is a Sunday, when @weekly ticks
    assert ticks_within("@weekly", at(10), at(11)) and not ticks_within("@weekly", at(11), at(12))


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_walk_ingests_and_scores_each_day_and_shows_the_settings_a_version_has(
    servers: Monitor, settings: Settings
) -> None:
    runner = CliRunner()
    for command in (
        ["ingest", "servers", "--start", "2026-01-05", "--end", "2026-01-08", "--every", "1D"],
        ["train", "servers"],
        ["walk", "servers", "--start", "2026-01-08", "--end", "2026-01-10T12:00"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
    assert "3 intervals scored (0 empty)" in result.output and "0 retrains" in result.output
    shown = runner.invoke(app, ["models", "show", "servers", "1"], env={"COLUMNS": "300"})
    assert shown.exit_code == 0, shown.output
    assert "calibration.alpha 0.01" in shown.output and "detector.window 1" in shown.output
