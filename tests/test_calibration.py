"""Conformal calibration: the p-value formula, its threshold, its false-alarm bound, its tail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

import detectors
from detectors import ArtifactError, ConformalCalibrator


def test_p_values_follow_the_conformal_formula() -> None:
    calibrator = ConformalCalibrator(alpha=0.3).fit(np.array([4.0, 1.0, 3.0, 2.0]))
    # p = (1 + #{cal >= s}) / (n + 1), n = 4
    p_values = calibrator.p_values(np.array([0.5, 1.0, 2.5, 4.0]))
    assert p_values == pytest.approx([1.0, 1.0, 0.6, 0.4], rel=1e-12)
    assert calibrator.flags(calibrator.p_values(np.array([0.5, 4.0, 4.5]))).tolist() == [
        False,
        False,
        True,
    ]


def test_the_threshold_is_the_smallest_flagged_score() -> None:
    rng = np.random.default_rng(0)
    calibrator = ConformalCalibrator(alpha=0.01).fit(rng.normal(size=999))
    threshold = calibrator.threshold_
    below = np.nextafter(threshold, -np.inf)
    flags = calibrator.flags(calibrator.p_values(np.array([below, threshold])))
    assert flags.tolist() == [False, True]
    # 999 calibration scores, alpha 0.01: flagged when at most 8 of them are >= s
    assert np.sum(calibrator.scores_ >= threshold) == 8


@pytest.mark.parametrize("seed", range(5))
def test_false_alarm_rate_on_fresh_normal_data_stays_within_a_binomial_bound_of_alpha(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(4, 4))

    def normal_rows(n: int) -> np.ndarray:
        centres = np.array([[0, 0, 0, 0], [4, 4, 0, 0]])[rng.integers(0, 2, n)]
        return (rng.normal(size=(n, 4)) + centres) @ mixing

    alpha, n_cal, n_test = 0.01, 3000, 20_000
    model = detectors.create("gmm", n_components=2, random_state=seed).fit(normal_rows(5000))
    calibrator = ConformalCalibrator(alpha).fit(model.decision_function(normal_rows(n_cal)))
    flagged = calibrator.flags(calibrator.p_values(model.decision_function(normal_rows(n_test))))
    # Given the calibration set, the false-alarm rate varies like a Beta with variance about
    # alpha (1 - alpha) / n_cal; the test rows add binomial noise. Four standard deviations:
    bound = 4 * np.sqrt(alpha * (1 - alpha) * (1 / n_cal + 1 / n_test))
    assert abs(flagged.mean() - alpha) < bound


def test_beyond_the_largest_calibration_score_p_keeps_falling_and_z_keeps_rising() -> None:
    rng = np.random.default_rng(1)
    calibrator = ConformalCalibrator(alpha=0.01).fit(rng.exponential(size=2000))
    largest = calibrator.scores_[-1]
    scores = largest + np.array([-1e-9, 1e-9, 1.0, 5.0, 50.0, 1e4])
    p_values = calibrator.p_values(scores)
    assert p_values[0] == pytest.approx(2 / 2001) and p_values[1] == pytest.approx(1 / 2001)
    assert np.all(np.diff(p_values[:-1]) < 0)
    z = calibrator.z_scores(scores)
    assert np.all(np.diff(z) > 0), "z keeps ranking even where p underflows to 0"
    assert np.isfinite(z).all()
    assert z[0] == pytest.approx(norm.isf(2 / 2001))


def test_too_few_calibration_rows_for_alpha_are_refused() -> None:
    with pytest.raises(ValueError, match="need more than 99"):
        ConformalCalibrator(alpha=0.01).fit(np.arange(99.0))
    with pytest.raises(ValueError, match="NaN"):
        ConformalCalibrator(alpha=0.1).fit(np.array([1.0, np.nan] * 20))


def test_save_and_load_give_the_same_p_values(tmp_path: Path) -> None:
    calibrator = ConformalCalibrator(alpha=0.05).fit(np.random.default_rng(2).normal(size=500))
    calibrator.save(tmp_path)
    again = ConformalCalibrator.load(tmp_path)
    scores = np.linspace(-4, 8, 50)
    assert again.alpha == 0.05
    np.testing.assert_array_equal(again.p_values(scores), calibrator.p_values(scores))
    (tmp_path / "calibration.json").write_text('{"alpha": 0.05, "rows": 3}')
    with pytest.raises(ArtifactError, match="do not match"):
        ConformalCalibrator.load(tmp_path)


def test_a_tail_floor_keeps_a_constant_calibration_from_flagging_rounding() -> None:
    constant = np.full(1000, 3.0)
    floored = ConformalCalibrator(alpha=1e-4, tail_floor=1.0).fit(constant)
    assert floored.tail_scale_ == 1.0, "all excesses are 0: the floor is the scale"
    flags = floored.flags(floored.p_values(np.array([3.0 + 1e-9, 3.0 + 10.0])))
    assert flags.tolist() == [False, True], "a hair above is rounding; 10 nats above is not"


def test_with_a_tail_floor_alpha_below_one_over_n_flags_from_the_tail() -> None:
    scores = np.random.default_rng(3).exponential(size=999)
    with pytest.raises(ValueError, match="tail_floor"):
        ConformalCalibrator(alpha=1e-4).fit(scores)
    calibrator = ConformalCalibrator(alpha=1e-4, tail_floor=1.0).fit(scores)
    threshold = calibrator.threshold_
    assert threshold > calibrator.scores_[-1], "only the tail reaches p < 1e-4 with 999 rows"
    # p falls along the tail: log p = -(s - max) / scale - log(n + 1)
    expected = calibrator.scores_[-1] + calibrator.tail_scale_ * (np.log(1e4) - np.log(1000))
    assert threshold == pytest.approx(expected)
    assert calibrator.flags(calibrator.p_values([threshold]))[0]
    assert not calibrator.flags(calibrator.p_values([np.nextafter(expected, -np.inf) - 1e-6]))[0]


def test_the_tail_floor_survives_save_and_load(tmp_path: Path) -> None:
    calibrator = ConformalCalibrator(alpha=1e-3, tail_floor=2.5).fit(np.zeros(200))
    calibrator.save(tmp_path)
    again = ConformalCalibrator.load(tmp_path)
    assert (again.alpha, again.tail_floor, again.tail_scale_) == (1e-3, 2.5, 2.5)


def test_a_pooled_calibrator_is_fitted_on_both_sets_of_scores() -> None:
    calibrator = ConformalCalibrator(alpha=0.01, tail_floor=0.5).fit(np.arange(200.0))
    pooled = calibrator.pooled(np.arange(200.0, 400.0))
    direct = ConformalCalibrator(alpha=0.01, tail_floor=0.5).fit(np.arange(400.0))
    scores = np.linspace(-10, 500, 60)
    np.testing.assert_array_equal(pooled.p_values(scores), direct.p_values(scores))
    assert len(calibrator.scores_) == 200, "the original calibrator is unchanged"


def test_a_sequential_pool_grows_step_by_step_whatever_the_batches() -> None:
    rng = np.random.default_rng(4)
    calibrator = ConformalCalibrator(alpha=0.01, tail_floor=0.5).fit(rng.normal(size=300))
    scores = np.r_[rng.normal(size=200), 6.0, rng.normal(size=99)]
    times = np.datetime64("2026-01-01T00:00") + np.arange(300) * np.timedelta64(1, "m")
    judged = np.ones(300, dtype=bool)
    judged[:3] = False
    delay = np.timedelta64(5, "m")
    once = calibrator.sequential_log_p_values(scores, np.zeros(300), times, judged, delay=delay)
    # by hand: each judged step against the calibration plus the unflagged steps at least
    # 5 minutes older
    pooled = np.zeros(300, dtype=bool)
    for row in range(300):
        if not judged[row]:
            assert once[row] == 0.0
            continue
        older = pooled & (times <= times[row] - delay)
        expected = calibrator.pooled(scores[older]).log_p_values([scores[row]])[0]
        assert once[row] == pytest.approx(expected, rel=1e-12)
        pooled[row] = once[row] >= np.log(0.01)
    assert once[200] < np.log(0.01) and not pooled[200], "the flagged step stays out"
    # in two batches: the second gets the first's unflagged scores, the newest as recent
    first = calibrator.sequential_log_p_values(
        scores[:150], np.zeros(150), times[:150], judged[:150], delay=delay
    )
    unflagged = judged[:150] & (first >= np.log(0.01))
    due = times[:150] < times[150] - delay
    second = calibrator.pooled(scores[:150][unflagged & due]).sequential_log_p_values(
        scores[150:],
        np.zeros(150),
        times[150:],
        judged[150:],
        delay=delay,
        recent=(scores[:150][unflagged & ~due], times[:150][unflagged & ~due]),
    )
    np.testing.assert_allclose(np.r_[first, second], once, rtol=1e-12)
