"""The ensemble detector: members' scores standardised and averaged, members given in config."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

import detectors
from detectors.ensemble import MIN_SCALE
from detectors.windows import make_windows
from tests.series import one_series_windows, seasonal_series

WINDOW = 8


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    """Windows of the seasonal series' first 2,500 steps, past the first window's warm-up."""
    windows = make_windows(
        seasonal_series(),
        timestamp="ts",
        features=["a", "b"],
        frequency=timedelta(minutes=15),
        window=WINDOW,
    ).frame()
    return windows.iloc[WINDOW:2500]


def test_each_members_scores_are_put_on_the_same_scale(train: pd.DataFrame) -> None:
    ensemble = detectors.create("ensemble", members=["ar", "gmm"]).fit(train)
    members = [detectors.create(kind).fit(train) for kind in ("ar", "gmm")]
    z = [
        (member.decision_function(train) - center) / scale
        for member, center, scale in zip(members, ensemble.centers_, ensemble.scales_, strict=True)
    ]
    for member_z, scale in zip(z, ensemble.scales_, strict=True):
        # robust z-scores of the training rows: median 0, MAD 1/1.4826 unless the unit floor
        assert abs(np.median(member_z)) < 1e-9
        spread = 1.4826 * np.median(np.abs(member_z)) * scale
        assert scale == pytest.approx(max(spread, MIN_SCALE))
    np.testing.assert_allclose(ensemble.decision_function(train), np.mean(z, axis=0))


def test_a_member_that_scored_every_training_row_alike_does_not_blow_up_rounding() -> None:
    """A channel constant in training: ``ar`` scores every window alike, to float rounding
    (their standard deviation is 4e-16, not 0). A change of a billionth is no evidence; a
    real step still tops every training row."""
    train = one_series_windows(np.full(600, 0.123456), timedelta(minutes=1), WINDOW)
    train = train.iloc[WINDOW:]
    gaussian = {"kind": "ar", "params": {"max_components": 1}}
    ensemble = detectors.create("ensemble", members=["ar", gaussian]).fit(train)
    assert list(ensemble.scales_) == [MIN_SCALE, MIN_SCALE]
    typical = float(np.median(ensemble.decision_function(train)))
    nudged, stepped = train.iloc[:1].copy(), train.iloc[:1].copy()
    nudged.iloc[0, -1] += 1e-9
    stepped.iloc[0, -1] += 0.5
    assert abs(ensemble.decision_function(nudged)[0] - typical) < 1e-3
    assert ensemble.decision_function(stepped)[0] > ensemble.decision_function(train).max() + 1


def test_an_anomaly_one_member_finds_typical_still_tops_the_ensemble() -> None:
    """Between two clusters: the single Gaussian of ``ar`` (no lags) sees a typical row,
    the mixture of ``gmm`` an impossible one; the ensemble ranks it above every training row."""
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.normal(-3, 0.5, (500, 2)), rng.normal(3, 0.5, (500, 2))])
    middle = np.zeros((1, 2))
    single = {"kind": "ar", "params": {"max_components": 1}}
    ensemble = detectors.create("ensemble", members=[single, "gmm"]).fit(train)
    gaussian, mixture = ensemble.members_
    assert gaussian.decision_function(middle)[0] < np.median(gaussian.decision_function(train))
    assert mixture.decision_function(middle)[0] > mixture.decision_function(train).max()
    assert ensemble.decision_function(middle)[0] > ensemble.decision_function(train).max()


def test_members_are_given_by_kind_or_with_parameters_and_share_the_seed() -> None:
    rows = np.random.default_rng(0).normal(size=(200, 3))
    members = ["gmm", {"kind": "gmm", "params": {"max_components": 2, "random_state": 3}}]
    ensemble = detectors.create("ensemble", members=members, random_state=7).fit(rows)
    first, second = ensemble.members_
    assert (first.random_state, second.random_state) == (7, 3)
    assert second.max_components == 2


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (["ar"], "at least two members"),
        (None, "must be a list"),
        ("ar", "must be a list"),
        (["ar", "ensemble"], "cannot have an ensemble"),
        (["ar", {"kind": "gmm", "parms": {}}], "unknown key"),
        (["ar", 3], "expected a kind"),
        (["ar", "nope"], "unknown detector kind 'nope'"),
    ],
)
def test_bad_members_are_refused_with_a_reason(members, message: str) -> None:
    rows = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match=message):
        detectors.create("ensemble", members=members).fit(rows)


def test_the_attribution_puts_a_perturbed_feature_on_top() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 2000))
    train = np.column_stack([a, a + rng.normal(0, 0.1, 2000), b])
    row = train[:1].copy()
    row[0, 1] += 1.5  # the second feature leaves its relation to the first
    attribution = detectors.create("ensemble").fit(train).attribute(row)[0]
    assert np.argmax(attribution) == 1
