"""The HTML report, rendered from a store the real jobs built, and its command."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib.image
import pytest
from typer.testing import CliRunner

from atalaia import demo_data, jobs, store
from atalaia.attribution import shares_text
from atalaia.cli import app
from atalaia.config import Monitor, load_monitor
from atalaia.errors import NotFoundError
from atalaia.report import load_report_data, ranked_entities, render_html
from atalaia.settings import Settings
from tests.conftest import SERVERS_MONITOR, write_monitor

T0 = datetime(2026, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)
IMAGE = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Monitor]]:
    """A SQLite store the real jobs filled: the demo's servers trained on days 0-2, then
    day 8 (host-3's spike) ingested and scored. Built once, with the ATALAIA_ settings
    pointing at it for the module's tests, which only read it.
    """
    home = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATALAIA_HOME", str(home))
        patch.setenv("ATALAIA_STORE_URL", f"sqlite:///{home / 'store.db'}")
        patch.setenv("ATALAIA_MONITORS_DIR", str(home / "monitors"))
        for name in ("LANDING_DIR", "MODELS_DIR", "METRICS_DIR", "PUSHGATEWAY_URL"):
            patch.delenv(f"ATALAIA_{name}", raising=False)
        settings = Settings.from_env()
        store.upgrade(settings.store_url)
        demo_data.write_files(home / "sources" / "servers")
        monitor = load_monitor(write_monitor(settings.monitors_dir, "servers", SERVERS_MONITOR))
        for n in range(3):
            jobs.ingest(monitor, T0 + n * DAY, T0 + (n + 1) * DAY, settings=settings)
        jobs.train(monitor, settings=settings)
        jobs.ingest(monitor, T0 + 8 * DAY, T0 + 9 * DAY, settings=settings)
        jobs.score(monitor, T0 + 8 * DAY, T0 + 9 * DAY, settings=settings)
        yield settings, monitor
    store.engine(settings.store_url).dispose()
    store.engine.cache_clear()


@pytest.fixture
def settings(built: tuple[Settings, Monitor]) -> Settings:
    return built[0]


@pytest.fixture
def scored(built: tuple[Settings, Monitor]) -> Monitor:
    return built[1]


def images(page: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for alt, data in IMAGE.findall(page)}


def test_the_report_shows_every_entity_its_events_and_their_top_features(
    scored: Monitor, settings: Settings
) -> None:
    data = load_report_data(settings, scored, T0 + 8 * DAY, T0 + 9 * DAY)
    page = render_html(data)

    assert "<h1>Monitor servers</h1>" in page
    assert "2026-01-13 00:00 to 2026-01-14 00:00" in page
    (model,) = data.models.values()
    assert f"model version {model.version}" in page and f"{model.threshold:.4g}" in page
    assert f"{len(data.scores)} over 6 entities" in page

    # One embedded PNG per host, each a real image of the figure's size.
    drawn = images(page)
    assert sorted(alt.split(":")[0] for alt in drawn) == [f"host-{i}" for i in range(1, 7)]
    for png in drawn.values():
        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 300 and pixels.shape[1] > 600
    # The score panel plus one panel per feature: taller than a score panel alone.
    assert data.values is not None
    assert set(data.values["entity"]) == {f"host-{i}" for i in range(1, 7)}

    # Every event is listed with its times, peak z and top features.
    assert data.events
    for event in data.events:
        row = (
            f"<td>{event.entity}</td><td>{event.start_ts:%Y-%m-%d %H:%M}</td>"
            f"<td>{event.end_ts:%Y-%m-%d %H:%M}</td>"
        )
        assert row in page
        assert f"<td>{event.peak_z:.2f}</td>" in page
        shares = [item["share"] for item in event.top_features]
        assert all(0 <= share <= 1 for share in shares) and sum(shares) <= 1 + 1e-3
        assert shares == sorted(shares, reverse=True)
        assert shares_text(event.top_features) in page
    # The injected spike (host-3, 14:00) is there, and its entity is drawn first.
    spike = [e for e in data.events if e.entity == "host-3" and e.start_ts.hour == 14]
    assert spike
    assert ranked_entities(data.scores)[0] == "host-3"
    assert next(iter(drawn)).startswith("host-3")


def test_max_entities_draws_the_most_anomalous_and_says_so(
    scored: Monitor, settings: Settings
) -> None:
    data = load_report_data(settings, scored, T0 + 8 * DAY, T0 + 9 * DAY)
    page = render_html(data, max_entities=2)
    drawn = [alt.split(":")[0] for alt in images(page)]
    assert drawn == ranked_entities(data.scores)[:2]
    assert "figures for 2 of 6 entities" in page


def test_a_missing_landed_batch_leaves_the_scores_and_notes_why(
    scored: Monitor, settings: Settings
) -> None:
    landed = next((settings.landing_dir / "servers").glob("20260113*.parquet"))
    aside = landed.rename(landed.with_suffix(".aside"))
    try:
        data = load_report_data(settings, scored, T0 + 8 * DAY, T0 + 9 * DAY)
    finally:
        aside.rename(landed)
    assert data.values is None
    page = render_html(data)
    assert len(images(page)) == 6
    assert "feature values left out" in page and landed.name in page


def test_names_from_the_data_are_escaped(scored: Monitor, settings: Settings) -> None:
    data = load_report_data(settings, scored, T0 + 8 * DAY, T0 + 9 * DAY)
    data.monitor = data.monitor.model_copy(update={"description": "<script>x</script>"})
    assert "<script>" not in render_html(data, max_entities=1)


def test_periods_without_scores_and_unknown_versions_are_clear_errors(
    scored: Monitor, settings: Settings
) -> None:
    with pytest.raises(NotFoundError, match="nothing was scored in"):
        load_report_data(settings, scored, T0, T0 + DAY)
    with pytest.raises(NotFoundError, match="version 1 scored nothing in"):
        load_report_data(settings, scored, T0, T0 + DAY, version=1)
    with pytest.raises(NotFoundError, match="no model version 7"):
        load_report_data(settings, scored, T0 + 8 * DAY, T0 + 9 * DAY, version=7)


def test_the_report_command_writes_the_file(scored: Monitor, tmp_path: Path) -> None:
    out = tmp_path / "out" / "servers.html"
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["report", "servers", "--from", "2026-01-13", "--to", "2026-01-14", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "report written to" in result.output
    assert len(images(out.read_text())) == 6

    backwards = runner.invoke(
        app, ["report", "servers", "--from", "2026-01-14", "--to", "2026-01-13"]
    )
    assert backwards.exit_code == 1
    assert "is not before" in backwards.output
