"""Fitting a baseline in pieces of whole entities, and on a sample of its training rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from atalaia.config import Monitor
from atalaia.representation import detector_input, entity_pieces
from atalaia.training import Baseline, TrainingSample, fit_model


def monitor(detector: str, extra: str = "") -> Monitor:
    return Monitor.model_validate(
        yaml.safe_load(
            f"""
name: t
source: {{kind: files, path: x}}
timestamp: ts
entities: [site]
features: [a, b]
frequency: 1h
detector: {detector}
baseline: {{start: 2026-01-01T00:00:00Z, end: 2026-01-21T00:00:00Z{extra}}}
"""
        )
    )


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    """Three sites, hourly, 20 days, by time then site as a baseline is; a few rows missing."""
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2026-01-01", periods=20 * 24, freq="1h", tz="UTC")
    frames = []
    for site in ("x", "y", "z"):
        a = rng.normal(0, 1, len(stamps))
        b = a + rng.normal(0, 0.1, len(a))
        frames.append(pd.DataFrame({"ts": stamps, "site": site, "a": a, "b": b}))
    frame = pd.concat(frames).sort_values(["ts", "site"]).drop(index=[5, 17, 40])
    return Baseline(stamps[0], stamps[-1], frame.reset_index(drop=True), "0" * 64)


def test_pieces_hold_whole_entities_and_their_inputs_are_the_whole_frames(
    baseline: Baseline,
) -> None:
    windowed = monitor("{kind: ar, window: 4}")
    pieces = list(entity_pieces(baseline.frame, windowed, 500))
    assert [sorted(piece["site"].unique()) for piece in pieces] == [["x"], ["y"], ["z"]]
    whole = detector_input(baseline.frame, windowed).X
    joined = pd.concat([detector_input(p, windowed).X for p in pieces], ignore_index=True)
    pd.testing.assert_frame_equal(joined, whole)


@pytest.mark.parametrize("detector", ["{kind: gmm}", "{kind: ar, window: 4, smoothing: 3}"])
def test_a_baseline_fitted_in_pieces_gives_the_model_of_one_piece(
    baseline: Baseline, detector: str
) -> None:
    config = monitor(detector)
    whole, pieces = fit_model(config, baseline, 10**9), fit_model(config, baseline, 100)
    assert (pieces.train_rows, pieces.calibration_rows) == (
        whole.train_rows,
        whole.calibration_rows,
    )
    np.testing.assert_array_equal(pieces.calibrator.scores_, whole.calibrator.scores_)
    X = detector_input(baseline.frame, config).X.head(50)
    np.testing.assert_array_equal(
        pieces.detector.decision_function(X), whole.detector.decision_function(X)
    )


def test_max_train_rows_fits_on_a_seeded_uniform_sample_and_calibrates_on_every_row(
    baseline: Baseline,
) -> None:
    config = monitor("{kind: gmm, params: {n_components: 1}}", ", max_train_rows: 300")
    first, again = fit_model(config, baseline, 100), fit_model(config, baseline, 10**9)
    full = fit_model(monitor("{kind: gmm, params: {n_components: 1}}"), baseline, 10**9)
    assert first.train_rows == again.train_rows == 300 < full.train_rows
    assert first.calibration_rows == full.calibration_rows
    np.testing.assert_array_equal(first.detector.means_, again.detector.means_)


def test_a_training_sample_is_uniform_and_keeps_the_rows_order() -> None:
    sample = TrainingSample(1_000)
    for start in range(0, 20_000, 3_000):
        sample.add(pd.DataFrame({"i": np.arange(start, min(start + 3_000, 20_000))}))
    drawn = sample.rows()["i"].to_numpy()
    assert sample.seen == 20_000 and len(drawn) == 1_000 and len(set(drawn)) == 1_000
    assert (np.diff(drawn) > 0).all()
    # each tenth of the rows gets about a tenth of the sample (binomial sd about 9.5)
    counts = np.bincount(drawn // 2_000, minlength=10)
    assert counts.min() > 60 and counts.max() < 140
