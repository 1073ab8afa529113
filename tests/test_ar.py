"""The linear autoregressive detector on a seasonal multichannel series with anomalies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import detectors
from detectors.windows import make_windows, per_feature
from tests.series import one_series_windows, seasonal_series


def windows_of(data: pd.DataFrame, window: int = 5) -> pd.DataFrame:
    return make_windows(
        data, timestamp="ts", features=["a", "b"], frequency=timedelta(minutes=15), window=window
    ).frame()


@pytest.fixture
def fitted():
    data = seasonal_series()
    data.loc[3000, "a"] += 1.5  # a spike in a
    data.loc[3500, "b"] -= 1.0  # b leaves its relation to a
    windows = windows_of(data)
    return detectors.create("ar").fit(windows.iloc[:2500]), windows


WINDOW = 5


def clean(indices: list[int], n: int) -> np.ndarray:
    """Windows with full context whose steps hold none of the anomalies at ``indices``."""
    mask = np.arange(n) >= WINDOW - 1
    for index in indices:
        mask[index : index + WINDOW] = False
    return mask


def test_injected_anomalies_score_above_every_clean_window(fitted) -> None:
    model, windows = fitted
    scores = model.decision_function(windows)
    assert min(scores[3000], scores[3500]) > scores[clean([3000, 3500], len(scores))].max()


def test_a_multivariate_anomaly_is_attributed_to_its_channel(fitted) -> None:
    model, windows = fitted
    attribution = per_feature(model.attribute(windows.iloc[[3000, 3500]]), 2)
    assert attribution[0].argmax() == 0, "the spike is in a"
    assert attribution[1].argmax() == 1, "the broken relation is in b"


def test_channels_come_from_window_names_or_a_parameter(fitted) -> None:
    model, windows = fitted
    assert model.n_channels_ == 2
    by_parameter = detectors.create("ar", channels=2).fit(windows.iloc[:2500].to_numpy())
    np.testing.assert_allclose(
        by_parameter.decision_function(windows.to_numpy()), model.decision_function(windows)
    )


def test_save_and_load_give_identical_scores(fitted, tmp_path: Path) -> None:
    model, windows = fitted
    model.save(tmp_path / "ar")
    again = detectors.load(tmp_path / "ar")
    np.testing.assert_array_equal(
        again.decision_function(windows), model.decision_function(windows)
    )


def test_a_missing_last_step_channel_is_marginalised(fitted) -> None:
    _, windows = fitted
    model = detectors.create("ar", max_components=1).fit(windows.iloc[:2500])  # Gaussian
    only_a = windows.iloc[[100]].copy()
    only_a["b@t-0"] = np.nan
    # by hand: a's last step regressed on every lag (ridge towards persistence), marginal in b
    z = (windows.iloc[100].to_numpy().reshape(-1, 2) - model.center_) / model.scale_
    lags, a_now = z[:-1].ravel(), z[-1, 0]
    mean, cov = model.mean_, model.covariance_
    n = len(lags)
    prior = np.zeros(n)
    prior[n - 2] = model.persistence  # a@t-1
    coef = np.linalg.solve(cov[:n, :n] + model.ridge * np.eye(n), cov[:n, n] + model.ridge * prior)
    predicted = mean[n] + (lags - mean[:n]) @ coef
    variance = cov[n, n] - 2 * cov[n, :n] @ coef + coef @ cov[:n, :n] @ coef + model.reg_covar
    expected = -0.5 * (np.log(2 * np.pi * variance) + (a_now - predicted) ** 2 / variance)
    assert model.score_samples(only_a)[0] == pytest.approx(expected - np.log(model.scale_[0]))
    assert model.imputed_rows(only_a).tolist() == [False], "marginalised, not imputed"


def test_a_window_without_observed_lags_gets_the_steps_marginal(fitted) -> None:
    _, windows = fitted
    model = detectors.create("ar", max_components=1).fit(windows.iloc[:2500])  # Gaussian
    first = windows.iloc[[200]].copy()
    first[[c for c in windows.columns if not c.endswith("@t-0")]] = np.nan  # a series' start
    z = (windows.iloc[200][["a@t-0", "b@t-0"]].to_numpy() - model.center_) / model.scale_
    n = len(model.mean_) - 2
    covariance = model.covariance_[n:, n:] + model.reg_covar * np.eye(2)
    residual = z - model.mean_[n:]
    expected = -0.5 * (
        2 * np.log(2 * np.pi)
        + np.linalg.slogdet(covariance)[1]
        + residual @ np.linalg.solve(covariance, residual)
    )
    assert model.score_samples(first)[0] == pytest.approx(expected - np.log(model.scale_).sum())


def test_lag_order_matters_on_an_autoregressive_series() -> None:
    data = seasonal_series(seed=1)
    data.loc[3240, "a"] += 1.0  # at a trough: lifted to the middle of a's seasonal range
    no_lags = detectors.create("ar").fit(data[["a"]].iloc[:2500])
    with_lags = detectors.create("ar").fit(windows_of(data).iloc[:2500])
    # the spike is 10 sigma of a's one-step noise but within a's seasonal range
    without_scores = no_lags.decision_function(data[["a"]])
    with_scores = with_lags.decision_function(windows_of(data))
    assert with_scores[3240] > with_scores[clean([3240], len(with_scores))].max()
    assert (without_scores > without_scores[3240]).mean() > 0.1


def test_a_channel_constant_in_training_is_predicted_to_stay_where_it_is() -> None:
    steps = np.r_[np.full(600, -1.0), np.full(20, -1.0), np.full(20, 1.0)]
    windows = make_windows(
        pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=640, freq="1min"), "x": steps}),
        timestamp="ts",
        features=["x"],
        frequency=timedelta(minutes=1),
        window=8,
    ).frame()
    model = detectors.create("ar").fit(windows.iloc[:600])
    scores = model.decision_function(windows.iloc[600:])
    jump = 20
    assert scores[jump] > scores[:jump].max() + 100, "the jump is an anomaly"
    # the new level is not: persistence, not a return to the training mean
    np.testing.assert_allclose(scores[jump + 1 :], scores[0])


def ar_windows(coefficients: list[float], n: int, window: int = 16, seed: int = 0) -> pd.DataFrame:
    """Windows of a univariate autoregressive process with unit Gaussian noise."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n + 200)
    for t in range(len(coefficients), len(x)):
        x[t] = sum(c * x[t - 1 - k] for k, c in enumerate(coefficients)) + rng.normal()
    windows = one_series_windows(x[200:], timedelta(minutes=1), window)
    return windows.iloc[window - 1 :]  # full windows only


def test_bic_chooses_the_order_of_the_process() -> None:
    first_order = detectors.create("ar").fit(ar_windows([0.8], 3000))
    second_order = detectors.create("ar").fit(ar_windows([0.5, 0.4], 3000))
    assert first_order.order_ == 1
    assert second_order.order_ == 2
    assert detectors.create("ar", order=7).fit(ar_windows([0.8], 500)).order_ == 7
    assert detectors.create("ar", order=99).fit(ar_windows([0.8], 500)).order_ == 15, "capped"


def test_a_short_training_set_gets_a_short_model_not_an_overfitted_one() -> None:
    windows = ar_windows([0.8], 600, window=32)
    train, held_out = windows.iloc[:40], windows.iloc[40:]
    every_lag = detectors.create("ar", order=31).fit(train)
    chosen = detectors.create("ar").fit(train)
    # 31 coefficients from 40 windows fit the noise: many normal new steps look extreme
    assert np.percentile(every_lag.decision_function(held_out), 95) > 8
    assert np.percentile(chosen.decision_function(held_out), 95) < 4
    assert chosen.order_ == 1


def test_the_order_survives_save_and_load(tmp_path: Path) -> None:
    model = detectors.create("ar").fit(ar_windows([0.5, 0.4], 3000))
    loaded = detectors.load(model.save(tmp_path / "ar"))
    assert loaded.order_ == model.order_ == 2


@pytest.mark.parametrize(
    "added_since",
    [
        ["order", "lags", "innovation_weights", "innovation_means", "innovation_covariances"],
        ["innovation_weights", "innovation_means", "innovation_covariances"],
    ],
    ids=["before orders", "before innovation mixtures"],
)
def test_a_model_saved_by_an_older_version_asks_to_be_retrained(
    tmp_path: Path, added_since: list[str]
) -> None:
    folder = detectors.create("ar").fit(ar_windows([0.8], 500)).save(tmp_path / "ar")
    weights = dict(np.load(folder / "weights.npz"))
    for name in added_since:
        del weights[name]
    np.savez(folder / "weights.npz", **weights)
    with pytest.raises(detectors.ArtifactError, match="retrain it"):
        detectors.load(folder)


def spiky_windows(n: int, dip_at: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Windows of white noise that jumps up by 10 for one step at 2% of its steps, and dips
    by 5 (a size it never shows otherwise) at ``dip_at``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) + 10.0 * (rng.random(n) < 0.02)
    if dip_at is not None:
        x[dip_at] -= 5.0
    windows = one_series_windows(x, timedelta(minutes=1), 4)
    return windows.iloc[3:]  # full windows only


def test_innovations_as_a_mixture_learn_recurring_jumps_and_still_find_a_new_dip() -> None:
    """A single Gaussian widens for the jumps, so a dip half their size ranks below them;
    the mixture keeps a narrow component for the usual steps and finds it."""
    train, scored = spiky_windows(5000), spiky_windows(2000, dip_at=1000, seed=1)
    dip = scored.iloc[[1000 - 3]]  # the window ending at the dip
    mixture = detectors.create("ar").fit(train)
    gaussian = detectors.create("ar", max_components=1).fit(train)
    assert len(mixture.innovation_weights_) > 1
    assert mixture.decision_function(dip)[0] > mixture.decision_function(train).max()
    above_dip = gaussian.decision_function(train) > gaussian.decision_function(dip)[0]
    assert above_dip.mean() > 0.01, "the Gaussian ranks the jumps (2% of steps) above the dip"


def test_an_order_that_is_not_a_count_or_bic_is_refused() -> None:
    with pytest.raises(ValueError, match="order"):
        detectors.create("ar", order="aic").fit(ar_windows([0.8], 300))


def test_seasonal_lags_find_a_level_that_is_normal_but_not_at_this_time_of_day() -> None:
    period, n, anomaly = 24, 24 * 60, 24 * 55 + 5
    rng = np.random.default_rng(2)
    profile = rng.normal(size=period)  # a daily shape no few recent steps can predict
    x = profile[np.arange(n) % period] + 0.05 * rng.normal(size=n)
    x[anomaly] = profile[(anomaly + period // 2) % period]  # another hour's usual level

    def scores(seasons: list[int]) -> np.ndarray:
        windows = one_series_windows(x, timedelta(hours=1), window=4, seasons=seasons)
        model = detectors.create("ar").fit(windows.iloc[period + 1 : 24 * 40])
        assert model.order_ >= 1 and bool(seasons) == (model.lags_.max() == period + 1)
        return model.decision_function(windows.iloc[24 * 40 :])

    touched = anomaly - 24 * 40 + np.r_[0:4, period : period + 2]  # windows holding it
    clean = np.setdiff1d(np.arange(24 * 20), touched)
    with_season, without = scores([period]), scores([])
    assert with_season[anomaly - 24 * 40] > with_season[clean].max()
    assert without[anomaly - 24 * 40] < without[clean].max(), "recent steps alone miss it"


def test_predictive_moments_of_a_known_autoregression() -> None:
    """x_t = 10 + 0.8 (x_{t-1} - 10) + 2 e_t: the band is 10 + 0.8 (x_{t-1} - 10) +- 2 sd."""
    rng = np.random.default_rng(0)
    series = np.empty(6000)
    series[0] = 10.0
    for t in range(1, len(series)):
        series[t] = 10.0 + 0.8 * (series[t - 1] - 10.0) + 2.0 * rng.normal()
    windows = pd.DataFrame({"x@t-1": series[:-1], "x@t-0": series[1:]})
    model = detectors.create("ar", max_components=1, order=1).fit(windows.iloc[:5000])
    mean, sd = model.predictive_moments(windows.iloc[5000:])
    previous = windows["x@t-1"].to_numpy()[5000:]
    np.testing.assert_allclose(mean[:, 1], 10.0 + 0.8 * (previous - 10.0), atol=0.15)
    np.testing.assert_allclose(sd[:, 1], 2.0, rtol=0.05)
    assert np.isnan(mean[:, 0]).all()


def test_an_online_update_gives_the_refit_likelihoods(tmp_path: Path) -> None:
    """Without forgetting, learning windows online gives the predictive likelihoods that a
    refit on all the windows gives (same order, Gaussian innovations), also after a save."""
    windows = windows_of(seasonal_series())
    windows.iloc[40, 3] = np.nan  # a window that counts towards the scaling only
    first, second = windows.iloc[:1500], windows.iloc[1500:3000]
    settings = {"order": 3, "max_components": 1}
    online = detectors.create("ar", **settings).fit(first)
    online.save(tmp_path / "model")
    updated = detectors.load(tmp_path / "model").partial_fit(second)
    refit = detectors.create("ar", **settings).fit(windows.iloc[:3000])
    np.testing.assert_allclose(
        updated.score_samples(windows), refit.score_samples(windows), rtol=1e-9, atol=1e-9
    )
    assert not np.allclose(online.score_samples(windows), refit.score_samples(windows))


def test_forgetting_weighs_the_newest_windows_more() -> None:
    """With forgetting, the learned level moves towards the newest windows' level."""
    windows = windows_of(seasonal_series())
    shifted = windows.iloc[1500:3000] + 5.0
    kept = detectors.create("ar").fit(windows.iloc[:1500]).partial_fit(shifted)
    forgot = detectors.create("ar").fit(windows.iloc[:1500]).partial_fit(shifted, forget=0.01)
    assert forgot.center_[0] > kept.center_[0] + 2.0
    with pytest.raises(ValueError, match="forget"):
        kept.partial_fit(shifted, forget=0.0)


def test_a_series_with_gaps_everywhere_trains_on_its_pairs_and_finds_a_spike() -> None:
    """With a third of the steps missing at random, no window of 12 steps is complete: the
    moments come from the pairs of steps observed together, online updates included."""
    data = seasonal_series()
    data.loc[3000, "a"] += 1.5
    windows = windows_of(data, window=12)
    gaps = np.random.default_rng(3).random(windows.shape) < 1 / 3
    with_gaps = windows.mask(gaps)
    assert not with_gaps.notna().all(axis=1).any()
    model = detectors.create("ar").fit(with_gaps.iloc[:1500])
    model.partial_fit(with_gaps.iloc[1500:2500])
    scores = model.decision_function(windows)  # every step observed when scored
    assert np.isfinite(scores).all()
    assert scores[3000] > np.quantile(np.delete(scores, range(3000, 3012)), 0.999)
