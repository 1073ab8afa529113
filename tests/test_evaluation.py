"""Tests of atalaia.evaluation: AUCs, event counting, point F1s and the report table."""

import numpy as np
import pandas as pd
import pytest

from atalaia.evaluation import (
    EvaluationReport,
    EventCounts,
    auc_pr,
    auc_roc,
    detected_events,
    evaluate_scores,
    event_counts,
    events_overlap,
    events_to_flags,
    flags_to_events,
    labels_to_events,
    point_adjust,
    point_adjusted_f1,
    point_f1,
    point_metrics,
)
from benchmarks.common import markdown_table

# --- threshold-free metrics ---------------------------------------------------------------


def test_auc_of_a_perfect_and_a_reversed_score():
    y = np.array([0, 0, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.9, 0.3, 0.8])
    assert auc_roc(y, scores) == 1.0
    assert auc_roc(y, -scores) == 0.0
    assert auc_pr(y, scores) == 1.0


def test_auc_roc_counts_a_tie_as_half():
    # Positive-negative pairs: 0.5>0.1, 0.5=0.5 (half), 0.9>0.1, 0.9>0.5 -> 3.5 / 4.
    assert auc_roc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == pytest.approx(0.875)
    assert auc_roc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == pytest.approx(0.5)


def test_auc_pr_is_average_precision():
    # Ranked 1,0,1,0: recall 0.5 at precision 1, recall 1 at precision 2/3 -> 0.5 + 0.5 * 2/3.
    assert auc_pr([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(5 / 6)


def test_auc_accepts_boolean_labels():
    assert auc_roc([False, True, False], [0.1, 0.9, 0.2]) == 1.0


@pytest.mark.parametrize("metric", [auc_roc, auc_pr])
def test_auc_rejects_nan_scores(metric):
    with pytest.raises(ValueError, match="NaN"):
        metric([0, 1, 0], [0.1, np.nan, 0.3])


@pytest.mark.parametrize("metric", [auc_roc, auc_pr])
@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
def test_auc_rejects_a_single_class(metric, labels):
    with pytest.raises(ValueError, match="single class"):
        metric(labels, [0.1, 0.2, 0.3])


def test_auc_rejects_mismatched_lengths_and_non_binary_labels():
    with pytest.raises(ValueError, match="3 values but scores has 2"):
        auc_roc([0, 1, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="0/1"):
        auc_roc([0, 2, 1], [0.1, 0.2, 0.3])


# --- events -------------------------------------------------------------------------------


def test_detected_events_merge_close_flags_and_start_where_their_smoothing_starts():
    flags = [1, 1, 0, 1, 0, 0, 1]
    assert detected_events(flags) == [(0, 1), (3, 3), (6, 6)]
    assert detected_events(flags, max_gap=1) == [(0, 3), (6, 6)]
    assert detected_events(flags, max_gap=2) == [(0, 6)]
    late = [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1]
    assert detected_events(late, lead=2) == [(3, 6), (8, 10)]
    assert detected_events(late, lead=3) == [(2, 10)], "spans that touch are one event"
    assert detected_events([0, 1], lead=5) == [(0, 1)], "never before the first row"


def test_flags_to_events_finds_inclusive_runs():
    assert flags_to_events([0, 1, 1, 0, 0, 1]) == [(1, 2), (5, 5)]
    assert flags_to_events([True, True, True]) == [(0, 2)]
    assert flags_to_events([False, False]) == []
    assert flags_to_events([]) == []


def test_labels_to_events_and_back():
    labels = np.array([1, 0, 0, 1, 1, 1, 0, 1])
    events = labels_to_events(labels)
    assert events == [(0, 0), (3, 5), (7, 7)]
    np.testing.assert_array_equal(events_to_flags(events, len(labels)), labels.astype(bool))


def test_labels_to_events_rejects_non_binary_values():
    with pytest.raises(ValueError, match="0/1"):
        labels_to_events([0, 1, 2])


def test_events_to_flags_rejects_ranges_outside_the_array():
    with pytest.raises(ValueError, match="outside"):
        events_to_flags([(3, 5)], 5)


def test_events_overlap_is_inclusive():
    assert events_overlap((0, 5), (5, 8))
    assert events_overlap((2, 3), (0, 9))
    assert not events_overlap((0, 5), (6, 8))


def test_a_single_shared_point_is_an_overlap():
    assert event_counts([(0, 5)], [(5, 8)]) == EventCounts(tp=1, fp=0, fn=0)


def test_adjacent_ranges_do_not_overlap():
    assert event_counts([(0, 5)], [(6, 8)]) == EventCounts(tp=0, fp=1, fn=1)


def test_one_detection_covering_two_labelled_intervals_is_two_true_positives():
    counts = event_counts([(0, 2), (5, 7)], [(1, 6)])
    assert counts == EventCounts(tp=2, fp=0, fn=0)
    assert counts.f1 == 1.0


def test_two_detections_in_one_labelled_interval_are_one_true_positive():
    assert event_counts([(0, 10)], [(1, 2), (8, 12)]) == EventCounts(tp=1, fp=0, fn=0)


def test_detections_overlapping_nothing_are_false_positives():
    counts = event_counts([(10, 20), (40, 45)], [(0, 3), (15, 15), (30, 35), (50, 60)])
    # (15, 15) hits the first interval; the second is missed; three detections hit nothing.
    assert counts == EventCounts(tp=1, fp=3, fn=1)
    assert counts.precision == pytest.approx(1 / 4)
    assert counts.recall == pytest.approx(1 / 2)
    assert counts.f1 == pytest.approx(2 / (2 + 3 + 1))


def test_event_counts_do_not_depend_on_order():
    truth = [(40, 45), (10, 20)]
    detected = [(50, 60), (15, 15), (0, 3), (44, 70)]
    assert event_counts(truth, detected) == event_counts(sorted(truth), sorted(detected))
    assert event_counts(truth, detected) == EventCounts(tp=2, fp=2, fn=0)


def test_event_counts_work_on_timestamp_ranges():
    t = pd.Timestamp
    truth = [(t("2024-01-01 10:00"), t("2024-01-01 12:00"))]
    detected = [
        (t("2024-01-01 12:00"), t("2024-01-01 13:00")),  # touches the end: a hit
        (t("2024-01-02 00:00"), t("2024-01-02 01:00")),
    ]
    assert event_counts(truth, detected) == EventCounts(tp=1, fp=1, fn=0)


def test_event_counts_with_nothing_on_one_side():
    assert event_counts([(0, 1), (4, 5)], []) == EventCounts(tp=0, fp=0, fn=2)
    assert event_counts([], [(0, 1)]) == EventCounts(tp=0, fp=1, fn=0)


def test_event_counts_reject_a_range_that_ends_before_it_starts():
    with pytest.raises(ValueError, match="end precedes its start"):
        event_counts([(5, 2)], [])


def test_event_counts_add_up_over_channels():
    assert EventCounts(1, 2, 3) + EventCounts(4, 5, 6) == EventCounts(5, 7, 9)
    per_channel = [EventCounts(tp=1), EventCounts(fp=1, fn=1)]
    total = sum(per_channel, EventCounts())
    # F1 of the summed counts, not the mean of per-channel F1s (1.0 and 0.0).
    assert total.f1 == pytest.approx(2 / 4)


def test_undefined_event_ratios_are_zero():
    assert EventCounts().f1 == 0.0
    assert EventCounts().precision == 0.0
    assert EventCounts(fn=2).precision == 0.0
    assert EventCounts(fp=2).recall == 0.0


# --- point metrics ------------------------------------------------------------------------

# One labelled segment of four points, one of them flagged, and one false alarm.
LABELS = np.array([0, 1, 1, 1, 1, 0, 0, 0, 0, 0])
FLAGS = np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 1])


def test_point_adjustment_fills_a_touched_segment():
    np.testing.assert_array_equal(
        point_adjust(LABELS, FLAGS), np.array([0, 1, 1, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    )


def test_point_f1_and_point_adjusted_f1_differ():
    # Unadjusted: TP 1, FP 1, FN 3 -> 2 / (2 + 1 + 3). Adjusted: TP 4, FP 1, FN 0 -> 8 / 9.
    assert point_f1(LABELS, FLAGS) == pytest.approx(1 / 3)
    assert point_adjusted_f1(LABELS, FLAGS) == pytest.approx(8 / 9)
    metrics = point_metrics(LABELS, FLAGS)
    assert (metrics.precision, metrics.recall) == pytest.approx((1 / 2, 1 / 4))
    assert (metrics.precision_point_adjusted, metrics.recall_point_adjusted) == pytest.approx(
        (4 / 5, 1.0)
    )


def test_point_adjustment_inflates_random_flags():
    rng = np.random.default_rng(0)
    labels = np.zeros(10_000, dtype=int)
    for start in range(500, 10_000, 1000):
        labels[start : start + 200] = 1
    flags = rng.random(labels.size) < 0.02
    metrics = point_metrics(labels, flags)
    assert metrics.f1 < 0.1
    assert metrics.f1_point_adjusted > 0.5


def test_point_f1_without_labels_or_flags_is_zero():
    assert point_f1([0, 0, 0], [0, 0, 0]) == 0.0


def test_point_metrics_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="flags has 2"):
        point_metrics([0, 1, 0], [0, 1])


# --- report -------------------------------------------------------------------------------


def test_evaluate_scores_without_flags_gives_only_aucs():
    report = evaluate_scores([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
    assert report == EvaluationReport(auc_roc=1.0, auc_pr=1.0)
    assert report.as_row() == {"auc_roc": 1.0, "auc_pr": 1.0}


def test_evaluate_scores_with_flags_adds_events_and_points():
    scores = np.linspace(0, 1, len(LABELS))
    report = evaluate_scores(LABELS, scores, FLAGS)
    assert report.events == EventCounts(tp=1, fp=1, fn=0)
    assert report.points == point_metrics(LABELS, FLAGS)
    row = report.as_row()
    assert row["event_f1"] == pytest.approx(2 / 3)
    assert row["point_f1"] == pytest.approx(1 / 3)
    assert row["point_f1_pa"] == pytest.approx(8 / 9)
    led = evaluate_scores(LABELS, scores, FLAGS, lead=5)
    assert led.events == EventCounts(tp=1, fp=0, fn=0), "the flag at 9 reaches back to 4"


def test_markdown_table():
    rows = [
        {"detector": "iforest", "auc_roc": 0.91234, "event_tp": 3},
        {"detector": "knn", "auc_roc": 0.5},
    ]
    assert markdown_table(rows) == (
        "| detector | auc_roc | event_tp |\n"
        "|---|---|---|\n"
        "| iforest | 0.912 | 3 |\n"
        "| knn | 0.500 |  |\n"
    )
    assert markdown_table(rows, columns=["auc_roc"], float_format=".1f") == (
        "| auc_roc |\n|---|\n| 0.9 |\n| 0.5 |\n"
    )
