"""Feature shares from detectors' contributions: the documented rule, and real detectors."""

from __future__ import annotations

import numpy as np
import pytest

import detectors
from atalaia.attribution import feature_shares, shares_text, stored_shares


def test_positive_contributions_are_normalised_per_row() -> None:
    shares = feature_shares(np.array([[1.0, 3.0, 0.0], [2.0, 2.0, 4.0]]))
    np.testing.assert_allclose(shares, [[0.25, 0.75, 0.0], [0.25, 0.25, 0.5]])


def test_negative_and_missing_contributions_are_no_evidence() -> None:
    shares = feature_shares(np.array([[-5.0, 2.0, np.nan, 6.0, -np.inf]]))
    np.testing.assert_allclose(shares, [[0.0, 0.25, 0.0, 0.75, 0.0]])


def test_rows_without_evidence_split_evenly() -> None:
    shares = feature_shares(np.array([[0.0, 0.0], [-1.0, -2.0], [np.nan, np.nan]]))
    np.testing.assert_allclose(shares, np.full((3, 2), 0.5))


def test_infinite_contributions_take_the_whole_row() -> None:
    shares = feature_shares(np.array([[np.inf, 1e300, np.inf, 3.0]]))
    np.testing.assert_allclose(shares, [[0.5, 0.0, 0.5, 0.0]])


def test_a_single_row_keeps_its_shape_and_input_is_not_changed() -> None:
    row = np.array([-1.0, 1.0, 3.0])
    np.testing.assert_allclose(feature_shares(row), [0.0, 0.25, 0.75])
    np.testing.assert_array_equal(row, [-1.0, 1.0, 3.0])
    assert feature_shares(np.empty((4, 0))).shape == (4, 0)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        feature_shares(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("kind", ["gmm", "ar"])
def test_shares_of_a_detectors_attribution_point_at_the_shifted_feature(kind: str) -> None:
    """Features 0 and 1 move together, so their conditional NLLs are negative; rows with
    feature 2 shifted far from normal get valid shares, nearly all on feature 2."""
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(600, 3))
    normal[:, 1] = normal[:, 0] + 0.05 * rng.normal(size=600)
    detector = detectors.create(kind).fit(normal)
    odd = normal[:20].copy()
    odd[:, 2] += 8.0
    contributions = detector.attribute(odd)
    assert (contributions[:, :2] < 0).all()
    shares = feature_shares(contributions)
    assert shares.shape == odd.shape
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    np.testing.assert_array_equal(shares[:, :2], 0.0)
    np.testing.assert_allclose(shares[:, 2], 1.0)


def test_stored_top_features_read_as_percentages() -> None:
    items = [
        {"feature": "latency_ms", "contribution": 9.0, "share": 0.625},
        {"feature": "cpu", "contribution": 2.0, "share": 0.3749},
    ]
    assert shares_text(items) == "latency_ms 63%, cpu 37%"
    # Items stored before shares were kept: shares among themselves.
    legacy = [{"feature": "a", "contribution": 3.0}, {"feature": "b", "contribution": -1.0}]
    assert stored_shares(legacy) == [1.0, 0.0]
    assert shares_text(legacy) == "a 100%, b 0%"
