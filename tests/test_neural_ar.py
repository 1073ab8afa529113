"""The neural autoregressive detector on a seasonal two-channel series with anomalies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import detectors
from detectors.neural_ar import NeuralARDetector
from detectors.windows import make_windows, per_feature
from tests.series import one_series_windows, seasonal_series

WINDOW = 9
FAST = {"hidden_size": 16, "max_steps": 800, "device": "cpu"}
SPIKE, BROKEN = 3000, 3500


def windows_of(data: pd.DataFrame) -> pd.DataFrame:
    return make_windows(
        data, timestamp="ts", features=["a", "b"], frequency=timedelta(minutes=15), window=WINDOW
    ).frame()


def clean(n: int) -> np.ndarray:
    """Windows with full context that hold none of the injected anomalies."""
    mask = np.arange(n) >= WINDOW - 1
    for index in (SPIKE, BROKEN):
        mask[index : index + WINDOW] = False
    return mask


@pytest.fixture(scope="module")
def fitted() -> tuple[NeuralARDetector, pd.DataFrame]:
    data = seasonal_series()
    data.loc[SPIKE, "a"] += 1.5  # a spike in a
    data.loc[BROKEN, "b"] -= 1.0  # b leaves its relation to a
    windows = windows_of(data)
    return detectors.create("nar", **FAST).fit(windows.iloc[:2500]), windows


def test_injected_anomalies_score_above_every_clean_window(fitted) -> None:
    model, windows = fitted
    scores = model.decision_function(windows)
    assert min(scores[SPIKE], scores[BROKEN]) > scores[clean(len(scores))].max()
    np.testing.assert_allclose(scores, -model.score_samples(windows))


def test_the_score_is_a_predictive_density_as_sharp_as_the_linear_ar(fitted) -> None:
    model, windows = fitted
    held_out = windows.iloc[2500:2900]
    linear = detectors.create("ar").fit(windows.iloc[:2500])
    # mean NLL per step on unseen windows: the network is no worse than the VAR by much
    nar_nll = model.decision_function(held_out).mean()
    assert nar_nll < linear.decision_function(held_out).mean() + 0.2


def test_a_multivariate_anomaly_is_attributed_to_its_channel(fitted) -> None:
    model, windows = fitted
    attribution = per_feature(model.attribute(windows.iloc[[SPIKE, BROKEN]]), 2)
    assert attribution[0].argmax() == 0, "the spike is in a"
    assert attribution[1].argmax() == 1, "the broken relation is in b"
    lags = model.attribute(windows.iloc[[SPIKE]])[:, :-2]
    assert (lags == 0).all(), "attribution sits on the last step's columns"


def test_save_and_load_give_identical_scores(fitted, tmp_path: Path) -> None:
    model, windows = fitted
    model.save(tmp_path / "nar")
    again = detectors.load(tmp_path / "nar")
    assert isinstance(again, NeuralARDetector) and again.n_channels_ == 2
    np.testing.assert_array_equal(
        again.decision_function(windows.iloc[:500]), model.decision_function(windows.iloc[:500])
    )


def test_missing_values_are_scored_and_a_missing_target_is_left_out(fitted) -> None:
    model, windows = fitted
    rows = windows.iloc[[300, 300, 300]].copy()
    rows.iloc[1, :4] = np.nan  # the two oldest steps missing: a gap, or a series' start
    rows.iloc[2, -1] = np.nan  # b's last step missing
    scores = model.score_samples(rows)
    assert np.isfinite(scores).all()
    assert abs(scores[1] - scores[0]) < 1.0, "two old lags hardly change the prediction"
    channel_nll = per_feature(model.attribute(rows.iloc[[0]]), 2)[0]
    only_a = -channel_nll[0] - np.log(model.scale_[0])
    assert scores[2] == pytest.approx(only_a, abs=1e-4)
    assert model.imputed_rows(rows).tolist() == [False, True, True]


def test_a_series_start_without_any_lag_is_not_an_anomaly(fitted) -> None:
    model, windows = fitted
    start = windows.iloc[[400]].copy()
    start.iloc[0, :-2] = np.nan
    scores = model.decision_function(windows.iloc[WINDOW:2500])
    assert model.decision_function(start)[0] < np.quantile(scores, 0.999)


def test_a_window_with_seasonal_lags_is_refused() -> None:
    windows = one_series_windows(np.arange(200.0), timedelta(minutes=1), window=4, seasons=[10])
    with pytest.raises(ValueError, match="seasonal lags"):
        detectors.create("nar").fit(windows.iloc[20:])
