"""Score smoothing: a per-entity moving mean that looks back a fixed number of steps."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.smoothing import full_spans, moving_mean


def test_moving_mean_looks_back_span_steps() -> None:
    np.testing.assert_allclose(moving_mean(np.array([3.0, 1, 2, 6]), 2), [3, 2, 1.5, 4])
    np.testing.assert_array_equal(moving_mean(np.array([3.0, 1]), 1), [3, 1])


def test_entities_are_smoothed_apart_in_their_own_order() -> None:
    scores = np.array([1.0, 10, 3, 30])
    entity = np.array(["a", "b", "a", "b"])
    np.testing.assert_allclose(moving_mean(scores, 2, entity), [1, 10, 2, 20])


def test_a_step_smoothed_with_its_lookback_does_not_depend_on_the_batch() -> None:
    scores = np.random.default_rng(0).normal(size=50)
    whole = moving_mean(scores, 5)
    tail = moving_mean(scores[30 - 4 :], 5)[4:]
    np.testing.assert_allclose(tail, whole[30:])


def test_span_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        moving_mean(np.ones(3), 0)


def test_full_spans_mark_the_means_that_average_a_whole_span_per_entity() -> None:
    entity = np.array(["a", "a", "b", "a", "b", "b", "a"])
    assert full_spans(7, 3, entity).tolist() == [False, False, False, True, False, True, True]
    assert full_spans(4, 1).all(), "a span of one is always full"
