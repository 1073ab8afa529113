"""Settings chosen from the baseline alone: the rules on series of known period and order,
and a monitor asking ``auto`` through train, score and ``models show``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from atalaia import jobs, store
from atalaia.artifacts import SETTINGS_FILE, load_model
from atalaia.auto import applied
from atalaia.cli import app
from atalaia.config import Monitor, load_monitor
from atalaia.errors import ConfigError
from atalaia.representation import lookback
from atalaia.scoring import score_frame
from atalaia.settings import Settings
from detectors import auto
from detectors.windows import window_columns
from storage.engine import transaction
from storage.registry import find_model
from storage.scores import read_scores
from tests.conftest import write_monitor
from tests.series import seasonal_series


def sine(period: int, n: int, seed: int) -> np.ndarray:
    """A sine of ``period`` steps plus Gaussian noise of half its amplitude."""
    noise = np.random.default_rng(seed).normal(0, 0.5, n)
    return (np.sin(2 * np.pi * np.arange(n) / period) + noise)[:, None]


def autoregression(coefficients: list[float], n: int, seed: int) -> np.ndarray:
    """An AR(p) process with unit Gaussian innovations, its first 200 steps dropped."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n + 200)
    for t in range(len(coefficients), len(x)):
        x[t] = x[t - len(coefficients) : t][::-1] @ coefficients + rng.normal()
    return x[200:, None]


def season(grids: list[np.ndarray]) -> int | None:
    """The season chosen for the window chosen, as a monitor asking both gets them."""
    return auto.season(grids, auto.window(grids))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sine_of_24_steps_has_a_season_of_24(seed: int) -> None:
    assert abs(season([sine(24, 2000, seed)]) - 24) <= 1


def test_the_season_is_found_across_entities_with_gaps() -> None:
    grids = [sine(24, 600, seed) for seed in range(3)]
    grids[0][100:130] = np.nan  # a gap of more than a period
    grids[1][::7] = np.nan
    assert abs(season(grids) - 24) <= 1


def test_a_season_needs_two_periods_of_baseline() -> None:
    assert auto.season([sine(24, 47, 0)], 4) is None


@pytest.mark.parametrize(
    "series",
    [
        pytest.param(lambda seed: np.random.default_rng(seed).normal(size=(2000, 2)), id="noise"),
        pytest.param(lambda seed: autoregression([0.95], 2000, seed), id="persistent"),
        pytest.param(
            lambda seed: np.cumsum(np.random.default_rng(seed).normal(size=(2000, 1)), axis=0),
            id="random walk",
        ),
        pytest.param(lambda seed: np.ones((500, 1)), id="constant"),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_series_without_a_cycle_have_no_season(series, seed: int) -> None:
    assert season([series(seed)]) is None


@pytest.mark.parametrize("seed", [0, 1])
def test_an_ar3_process_gets_a_short_window_holding_its_three_lags(seed: int) -> None:
    assert 4 <= auto.window([autoregression([0.5, 0.2, 0.2], 2000, seed)]) <= 6


def test_white_noise_gets_the_shortest_window_and_a_short_baseline_none() -> None:
    assert auto.window([np.random.default_rng(0).normal(size=(2000, 1))]) <= 2
    assert auto.window([np.random.default_rng(0).normal(size=(15, 1))]) == 1


AUTO_MONITOR = """\
source:
  kind: files
  path: ${ATALAIA_HOME}/sources/seasonal/*.csv
timestamp: ts
features: [a, b]
frequency: 15min
detector:
  kind: ar
  params: {max_components: 1}
  window: auto
  seasons: auto
baseline:
  start: 2026-01-01T00:00:00Z
  end: 2026-01-09T00:00:00Z
"""
DAY = timedelta(days=1)
SCORED = (datetime(2026, 1, 9, tzinfo=UTC), datetime(2026, 1, 10, tzinfo=UTC))


@pytest.fixture
def seasonal(settings: Settings) -> Monitor:
    """A monitor asking for its window and seasons over two channels with a daily season."""
    folder = settings.home / "sources" / "seasonal"
    folder.mkdir(parents=True)
    data = seasonal_series(n=96 * 10)
    for day, rows in data.groupby(data["ts"].dt.date):
        rows.to_csv(folder / f"{day}.csv", index=False)
    return load_monitor(write_monitor(settings.monitors_dir, "seasonal", AUTO_MONITOR))


def test_auto_survives_a_yaml_round_trip(tmp_path: Path) -> None:
    path = write_monitor(tmp_path, "seasonal", AUTO_MONITOR)
    monitor = load_monitor(path)
    assert (monitor.detector.window, monitor.detector.seasons) == ("auto", "auto")
    assert monitor.stored_config()["detector"]["window"] == "auto"
    again = yaml.safe_load(yaml.safe_dump(monitor.model_dump(mode="json")))
    assert Monitor.model_validate(again).model_dump() == monitor.model_dump()


@pytest.mark.parametrize(
    ("detector", "message"),
    [
        ("window: often", "detector.window: .*'often' is neither a whole number"),
        ("window: 0", "detector.window: .*0 is not from 1 to 10000"),
        ("seasons: daily", "detector.seasons: .*'daily' is neither a list"),
        ("window: 1\n  seasons: auto", "needs windows"),
    ],
)
def test_explicit_values_are_still_checked(tmp_path: Path, detector: str, message: str) -> None:
    body = AUTO_MONITOR.replace("window: auto\n  seasons: auto", detector)
    with pytest.raises(ConfigError, match=message):
        load_monitor(write_monitor(tmp_path, "seasonal", body))


def test_a_monitor_asking_auto_trains_records_its_choice_and_scores_with_it(
    seasonal: Monitor, settings: Settings
) -> None:
    jobs.ingest(seasonal, seasonal.baseline.start, seasonal.baseline.end, settings=settings)
    trained = jobs.train(seasonal, settings=settings)
    recorded = json.loads((trained.artifact_path / SETTINGS_FILE).read_text())
    assert (recorded["detector.window"], recorded["detector.seasons"]) == ("auto", "auto")
    chosen = recorded["chosen"]
    assert chosen["detector.seasons"] in (["1425min"], ["1D"], ["1455min"])  # 96 ± 1 steps
    assert 2 <= chosen["detector.window"] <= 64
    as_trained = applied(seasonal, chosen)
    detector, calibrator = load_model(str(trained.artifact_path), _sha(settings, trained))
    assert list(detector.feature_names_in_) == window_columns(
        ["a", "b"], chosen["detector.window"], as_trained.season_steps
    )

    jobs.ingest(seasonal, *SCORED, settings=settings)
    result = jobs.score(seasonal, *SCORED, settings=settings)
    assert result.rows == 96
    # the stored scores are those of the version's choices, with their look-back as context
    data = seasonal_series(n=96 * 10)
    context = data[(data["ts"] >= SCORED[0] - lookback(as_trained)) & (data["ts"] < SCORED[0])]
    batch = data[(data["ts"] >= SCORED[0]) & (data["ts"] < SCORED[1])]
    expected = score_frame(
        batch, as_trained, detector, calibrator, context=context, start=SCORED[0]
    )
    with transaction(store.engine(settings.store_url)) as session:
        scores = read_scores(session, 1, *SCORED)
    np.testing.assert_allclose(scores["raw_score"], expected["raw_score"], rtol=1e-9)

    shown = CliRunner().invoke(app, ["models", "show", "seasonal", "1"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    window = chosen["detector.window"]
    seasons = chosen["detector.seasons"]
    assert f"detector.seasons = {seasons!r}; detector.window = {window}" in shown.output

    # a retrain compares the candidate and the champion, each with its own choices
    retrained = jobs.retrain(seasonal, settings=settings)
    assert retrained.evaluation is not None, retrained.reason
    assert retrained.evaluation["candidate"]["rows"] == 96

    explicit = load_monitor(
        write_monitor(
            settings.monitors_dir, "seasonal", AUTO_MONITOR.replace("window: auto", "window: 8")
        )
    )
    with pytest.raises(ConfigError, match="detector.window is 8, but .* trained with 'auto'"):
        jobs.score(explicit, *SCORED, settings=settings)


def _sha(settings: Settings, trained: jobs.TrainResult) -> str:
    with transaction(store.engine(settings.store_url)) as session:
        return find_model(session, 1, trained.version).artifact_sha256


def test_unresolved_inputs_are_refused(tmp_path: Path) -> None:
    monitor = load_monitor(write_monitor(tmp_path, "seasonal", AUTO_MONITOR))
    with pytest.raises(ConfigError, match="detector.window, detector.seasons is auto"):
        lookback(monitor)
    frame = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=3, freq="15min")})
    with pytest.raises(ConfigError, match="is auto"):
        score_frame(frame.assign(a=1.0, b=1.0), monitor, None, None)
