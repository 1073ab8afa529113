"""Scoring a series as the product runs a monitor: windows, walking forward, calibration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.common import parse_spec
from benchmarks.streaming import (
    StreamPolicy,
    TailCalibrator,
    alert_scores,
    detector_policy,
    season_rows,
    series_windows,
    stream,
)


def noisy_sine(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sin(np.arange(n) * 2 * np.pi / 50) + rng.normal(0, 0.1, n)


def test_the_tail_scale_has_a_floor_and_alpha_may_lie_below_one_over_n() -> None:
    constant = np.full(200, 3.0)  # a channel that was constant in training scores alike
    calibrator = TailCalibrator(alpha=1e-4, min_tail_scale=1.0).fit(constant)
    log_p = calibrator.log_p_values(np.array([3.0, 3.0 + 1e-9, 5.0, 20.0]))
    assert log_p[0] == 0.0, "a score equal to every calibration score is typical"
    assert log_p[1] == pytest.approx(-math.log(201)), "a hair above is not extreme"
    assert log_p[2] == pytest.approx(-2.0 - math.log(201))
    assert (log_p < math.log(1e-4)).tolist() == [False, False, False, True]
    spread = TailCalibrator(min_tail_scale=1.0).fit(np.arange(1000.0))
    assert spread.tail_scale_ > 1.0, "the floor only bites when the tail is narrower"


def test_windows_never_cross_segments_and_name_their_steps() -> None:
    values = np.arange(10.0).reshape(5, 2)
    windows = series_windows(values, window=2, segment=np.array([0, 0, 0, 1, 1]))
    assert list(windows.columns) == ["x0@t-1", "x1@t-1", "x0@t-0", "x1@t-0"]
    assert np.isnan(windows.iloc[3, :2]).all(), "the second segment starts without a past"
    np.testing.assert_array_equal(windows.iloc[4], [6, 7, 8, 9])


def test_a_spike_is_flagged_and_the_warm_up_rows_are_not_scored() -> None:
    values = noisy_sine(3000)
    values[2500] += 2.0
    segment = np.repeat([0, 1], [1500, 1500])  # a test part that does not follow the training
    run = stream(
        parse_spec("ar"), values[:, None], 1500, StreamPolicy(window=8, alpha=1e-4), 0, segment
    )
    assert np.isnan(run.scores[1500:1507]).all() and not run.flags[1500:1507].any()
    assert np.isfinite(run.scores[1507:]).all()
    assert run.flags[2500] and run.flags[1507:].sum() <= 10
    assert run.fits == 1 and np.isnan(run.scores[:1500]).all()


def test_a_detector_refusing_missing_values_sees_full_windows_only() -> None:
    values = noisy_sine(1200)
    values[1000] += 3.0
    segment = np.repeat([0, 1], [600, 600])  # each segment starts with partial windows
    run = stream(
        parse_spec("pyod.IForest"), values[:, None], 600, StreamPolicy(window=8), 0, segment
    )
    assert np.isnan(run.scores[600:607]).all() and np.isfinite(run.scores[607:]).all()
    assert run.scores[1000] > np.nanpercentile(run.scores[600:], 99)


def test_smoothing_spreads_a_score_over_the_following_steps() -> None:
    values = noisy_sine(2000)
    values[1500] += 2.0
    sharp = stream(parse_spec("ar"), values[:, None], 1000, StreamPolicy(window=8), 0)
    smooth = stream(parse_spec("ar(smoothing=5)"), values[:, None], 1000, StreamPolicy(window=8), 0)
    assert smooth.policy == StreamPolicy(window=8, smoothing=5), "the spec sets the smoothing"
    np.testing.assert_allclose(
        smooth.scores[1100:1900],
        [sharp.scores[i - 4 : i + 1].mean() for i in range(1100, 1900)],
    )


def test_retraining_learns_a_new_normal_from_the_unflagged_past() -> None:
    values = noisy_sine(4000)
    values[2000:] *= 3.0  # the amplitude (and the noise) grows for good
    values[3500] += 30.0
    series = values[:, None]
    once = stream(parse_spec("ar"), series, 1000, StreamPolicy(window=8, alpha=1e-4), 0)
    policy = StreamPolicy(window=8, alpha=1e-4, retrain_every=500)
    retrained = stream(parse_spec("ar"), series, 1000, policy, 0)
    assert (once.fits, retrained.fits) == (1, 6)
    # refitted on the grown variance, the model finds the new normal far less surprising
    assert retrained.scores[2600:3400].mean() < once.scores[2600:3400].mean() - 0.5
    assert retrained.flags[3500] and retrained.flags[2600:3400].sum() <= once.flags[2600:3400].sum()
    repeat = stream(parse_spec("ar"), series, 1000, policy, 0)
    np.testing.assert_array_equal(repeat.scores, retrained.scores)


def test_policy_settings_in_a_spec_override_the_runs() -> None:
    spec, policy = detector_policy(parse_spec("gmm(n_components=2, window=4)"), StreamPolicy())
    assert spec.params == {"n_components": 2} and spec.label == "gmm(n_components=2, window=4)"
    assert policy == StreamPolicy(window=4)
    assert detector_policy(parse_spec("gmm"), StreamPolicy()) == (parse_spec("gmm"), StreamPolicy())


def test_an_incident_alerts_once_unless_it_escalates() -> None:
    strengths = np.array([1.0, 5.0, 4.0, 5.0, 1.0, 6.0, 1.0, 1.0, 1.0, 2.0])
    np.testing.assert_array_equal(
        alert_scores(strengths, hold=3), [1.0, 5.0, 0, 0, 0, 6.0, 0, 0, 0, 2.0]
    )
    np.testing.assert_array_equal(alert_scores(strengths, hold=0), strengths)


def test_seasons_become_rows_of_the_step_where_the_baseline_spans_two() -> None:
    policy = StreamPolicy(window=4, seasons=("1D", "7D"))
    assert season_rows(policy, pd.Timedelta("1h"), first=24 * 14) == [24, 168]
    assert season_rows(policy, pd.Timedelta("1h"), first=24 * 14 - 1) == [24]
    with pytest.raises(ValueError, match="time between rows"):
        season_rows(policy, None, first=1000)
