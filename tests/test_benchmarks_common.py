"""The benchmark runners' shared helpers: specs, splits, fitting, calibration, summaries."""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import detectors
from benchmarks import nab, smap, tabular
from benchmarks.common import (
    DetectorFailure,
    add_reuse_option,
    build_detector,
    companion_file,
    fit_and_score,
    half,
    load_orion_f1,
    normal_split,
    parse_spec,
    parse_specs,
    series_metrics,
    subsample,
    summarise_series,
)
from detectors.gmm import GaussianMixtureDetector

# --- specs --------------------------------------------------------------------------------


def test_a_spec_is_a_kind_with_optional_literal_parameters() -> None:
    assert parse_spec("gmm").name == "gmm" and parse_spec("gmm").params == {}
    spec = parse_spec("pyod.VAE(epoch_num=5, encoder_neuron_list=[16, 8], device=cpu)")
    assert spec.name == "pyod.VAE" and spec.is_pyod_baseline
    assert spec.params == {"epoch_num": 5, "encoder_neuron_list": [16, 8], "device": "cpu"}
    assert spec.label == "pyod.VAE(epoch_num=5, encoder_neuron_list=[16, 8], device=cpu)"
    assert not parse_spec("pyod:IForest").is_pyod_baseline  # our adapter, through the registry


def test_a_spec_list_splits_on_commas_outside_brackets() -> None:
    specs = parse_specs("gmm(n_components=2, reg_covar=1e-4),pyod.IForest, vae")
    assert [spec.name for spec in specs] == ["gmm", "pyod.IForest", "vae"]
    assert specs[0].params == {"n_components": 2, "reg_covar": 1e-4}


@pytest.mark.parametrize("text", ["", "gmm(n_components=2", "gmm(2)", "(x=1)"])
def test_malformed_specs_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_specs(text)


def test_the_seed_reaches_every_detector_unless_the_spec_sets_it() -> None:
    assert build_detector(parse_spec("gmm"), seed=7).random_state == 7
    assert build_detector(parse_spec("gmm(random_state=3)"), seed=7).random_state == 3
    assert build_detector(parse_spec("pyod.IForest"), seed=7).random_state == 7
    adapted = build_detector(parse_spec("pyod:IForest(n_estimators=10)"), seed=7)
    assert adapted.model_params == {"random_state": 7, "verbose": 0, "n_estimators": 10}
    with pytest.raises(ValueError, match="PyOD has no detector"):
        build_detector(parse_spec("pyod.NoSuchModel"), seed=0)


# --- fitting and scoring ------------------------------------------------------------------


def blobs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3))


def test_fit_and_score_scores_each_array_repeatably() -> None:
    train, far = blobs(300), blobs(20, seed=1) + 6.0
    first = fit_and_score(parse_spec("gmm(n_components=2)"), train, [train[:50], far], seed=0)
    again = fit_and_score(parse_spec("gmm(n_components=2)"), train, [train[:50], far], seed=0)
    assert [len(s) for s in first.scores] == [50, 20]
    assert first.scores[1].min() > np.median(first.scores[0])  # far rows are more anomalous
    np.testing.assert_array_equal(first.scores[1], again.scores[1])
    assert first.fit_seconds >= 0 and first.score_seconds >= 0


class NaNScores(GaussianMixtureDetector):
    """A mixture whose log-likelihoods all come out NaN."""

    kind = "nan"

    def _score_samples(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), np.nan)


def test_detector_errors_and_nan_scores_become_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DetectorFailure, match="no parameter"):
        fit_and_score(parse_spec("gmm(nonsense=1)"), blobs(50), [blobs(5)], seed=0)
    with pytest.raises(DetectorFailure, match="expected 3 features, got 2"):
        fit_and_score(parse_spec("gmm(n_components=1)"), blobs(50), [blobs(5)[:, :2]], seed=0)
    monkeypatch.setitem(detectors.REGISTRY, "nan", f"{__name__}:NaNScores")
    with pytest.raises(DetectorFailure, match="5 of 5 scores are NaN"):
        fit_and_score(parse_spec("nan(n_components=1)"), blobs(50), [blobs(5)], seed=0)


# --- splits -------------------------------------------------------------------------------


def test_normal_split_trains_on_normal_rows_and_tests_on_the_rest() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    train, test = normal_split(labels, 0.7, np.random.default_rng(0))
    assert len(train) == 63 and labels[train].sum() == 0
    assert set(np.flatnonzero(labels)) <= set(test)
    assert sorted([*train, *test]) == list(range(100))
    assert list(train) == sorted(train) and list(test) == sorted(test)
    again, _ = normal_split(labels, 0.7, np.random.default_rng(0))
    other, _ = normal_split(labels, 0.7, np.random.default_rng(1))
    np.testing.assert_array_equal(train, again)
    assert set(train) != set(other)


def test_subsample_caps_rows_without_replacement() -> None:
    rows = np.arange(10, 1000)
    capped = subsample(rows, 100, np.random.default_rng(0))
    assert len(capped) == len(set(capped)) == 100 and set(capped) <= set(rows)
    assert list(capped) == sorted(capped)
    assert subsample(rows, None, np.random.default_rng(0)) is rows
    assert subsample(rows, 5000, np.random.default_rng(0)) is rows


def test_tabular_protocols() -> None:
    labels = np.array([0] * 40 + [1] * 10)
    train, test = tabular.split("unsup", labels, seed=0, max_train_rows=None)
    np.testing.assert_array_equal(train, np.arange(50))
    np.testing.assert_array_equal(test, np.arange(50))
    train, test = tabular.split("normal", labels, seed=0, max_train_rows=20)
    assert len(train) == 20 and labels[train].sum() == 0 and len(test) == 22
    with pytest.raises(ValueError, match="protocol"):
        tabular.protocol_list("normal,supervised")


def test_tabular_files_are_chosen_by_stem_or_name(tmp_path: Path) -> None:
    for stem in ("10_cover", "4_breastw", "22_magic.gamma"):
        np.savez(tmp_path / f"{stem}.npz", X=np.zeros((2, 2)), y=np.array([0, 1]))
    assert [p.stem for p in tabular.data_files(tmp_path, None)] == [
        "4_breastw",
        "10_cover",
        "22_magic.gamma",
    ]
    chosen = tabular.data_files(tmp_path, ["magic.gamma", "4_breastw"])
    assert [tabular.data_name(p.stem) for p in chosen] == ["breastw", "magic.gamma"]
    with pytest.raises(SystemExit, match="nosuch"):
        tabular.data_files(tmp_path, ["nosuch"])


# --- time-series metrics ------------------------------------------------------------------


def test_series_metrics_count_events_and_points() -> None:
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.1, 0.7, 0.1, 0.1])
    flags = np.array([0, 0, 1, 0, 0, 1, 1, 0], dtype=bool)
    found = [(2, 2), (5, 6)]  # the monitor's events
    row = series_metrics(scores, flags, [(2, 3)], found)
    assert (row["tp"], row["fp"], row["fn"], row["flagged_rows"]) == (1, 1, 0, 3)
    assert row["auc_roc"] == 1.0
    assert row["point_f1"] == pytest.approx(2 / 5)  # TP 1, FP 2, FN 1
    assert row["point_f1_pa"] == pytest.approx(4 / 6)  # TP 2, FP 2, FN 0
    no_events = series_metrics(scores, flags, [], found)
    assert no_events["auc_roc"] is None and no_events["fp"] == 2
    merged = series_metrics(scores, flags, [(2, 3)], [(2, 6)])
    assert (merged["tp"], merged["fp"]) == (1, 0), "one event over both runs of flags"


def test_rows_without_a_score_are_left_out_of_the_aucs() -> None:
    scores = np.array([np.nan, np.nan, 0.1, 0.9, 0.2])
    row = series_metrics(scores, np.zeros(5, dtype=bool), [(0, 0), (3, 3)], [])
    assert row["auc_roc"] == 1.0 and row["fn"] == 2


def test_summaries_sum_counts_before_taking_f1() -> None:
    rows = pd.DataFrame(
        {
            "detector": ["d", "d", "e"],
            "tp": [1, 0, 0],
            "fp": [1, 0, 0],
            "fn": [0, 2, 3],
            "auc_roc": [0.5, 1.0, None],
            "error": [None, None, "boom"],
        }
    )
    summary = summarise_series(rows, ["detector"]).set_index("detector")
    assert summary.at["d", "event_f1"] == pytest.approx(2 / 5)
    assert summary.at["d", "auc_roc"] == 0.75 and summary.at["d", "failed"] == 0
    assert summary.at["e", "failed"] == 1 and summary.at["e", "event_f1"] == 0.0


# --- data formats -------------------------------------------------------------------------


def test_smap_labels_merge_a_channel_listed_twice(tmp_path: Path) -> None:
    labels = tmp_path / "labeled_anomalies.csv"
    labels.write_text(
        "chan_id,spacecraft,anomaly_sequences,class,num_values\n"
        'A-1,SMAP,"[[10, 20], [40, 50]]","[point, point]",100\n'
        'P-2,SMAP,"[[53, 65]]",[point],90\n'
        'P-2,SMAP,"[[50, 60]]",[point],90\n'
    )
    channels = smap.load_channels(labels)
    assert [(c.name, c.anomalies) for c in channels] == [
        ("A-1", [(10, 20), (40, 50)]),
        ("P-2", [(50, 65)]),
    ]
    assert smap.merge_ranges([(5, 6), (1, 2), (2, 4)]) == [(1, 4), (5, 6)]


def test_smap_arrays_come_from_a_tarball_unpacked_into_the_cache(tmp_path: Path) -> None:
    source = tmp_path / "source" / "MSL"
    for part in ("train", "test"):
        (source / part).mkdir(parents=True)
        np.save(source / part / "C-1.npy", np.full((4, 2), 1.0 if part == "train" else 2.0))
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(data / "MSL.tar.gz", "w:gz") as archive:
        archive.add(source, arcname="MSL")
    cache = tmp_path / "cache"
    folders = smap.array_folders(data, cache)
    assert len(folders) == 1 and folders[0].is_relative_to(cache)
    train, test = smap.channel_arrays(folders, "C-1")
    assert train[0, 0] == 1.0 and test[0, 0] == 2.0
    assert smap.channel_arrays(folders, "C-2") is None
    assert smap.array_folders(data, cache) == folders  # unpacked once


def test_nab_file_is_a_monitor_trained_on_the_probation_and_scored_after_it() -> None:
    stamps = pd.date_range("2026-01-01", periods=4000, freq="5min")
    values = np.random.default_rng(0).normal(size=4000)
    values[3500:3510] += 12.0
    frame = pd.DataFrame({"timestamp": stamps, "value": values})
    windows = [(stamps[3450], stamps[3550])]
    template = nab.load_template("nab") | {"schedule": {"score": "@daily", "retrain": "@weekly"}}
    spec = parse_spec("ar(window=4)")
    rows, scores = nab.run_file(
        "cat/f.csv", frame, windows, [spec], 0, template, pd.Timedelta(hours=1)
    )
    (row,) = rows
    # 600 probation rows (2026-01-01 to 01-03 02:00); the rest runs to 01-14 21:15: the
    # weekly retrain ticks on Sunday 01-04 and 01-11
    assert row["probation_rows"] == 600 and row["fits"] == 3
    assert row["labelled_events"] == 1 and row["tp"] == 1
    alerts = scores[spec.label]
    assert len(alerts) == 4000 and (alerts >= 0).all()
    assert alerts[3500] > np.percentile(alerts[600:3450], 99)
    paged = alerts[3500:3510][alerts[3500:3510] > 0]
    assert 0 < len(paged) < 10 and (np.diff(paged) > 0).all(), "pages again only to escalate"
    assert nab.hold_rows(frame["timestamp"], pd.Timedelta(days=1)) == 288
    assert nab.frequency(frame["timestamp"]) == "5min"


def test_orion_f1_table_is_read_by_pipeline_and_data_set(tmp_path: Path) -> None:
    (tmp_path / "orion_0.7.1_f1_by_dataset.txt").write_text(
        "Orion 0.7.1 benchmark, F1 ...\n"
        "pipeline   MSL  SMAP   Art\n"
        "aer      0.657 0.764 0.750\n"
        "arima    0.525 0.411 0.308\n"
    )
    table = load_orion_f1(tmp_path)
    assert table == {
        "aer": {"MSL": 0.657, "SMAP": 0.764, "Art": 0.75},
        "arima": {"MSL": 0.525, "SMAP": 0.411, "Art": 0.308},
    }
    assert load_orion_f1(tmp_path / "absent") == {}


def test_reusing_results_needs_the_csv_and_its_companions_before_the_run(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_reuse_option(parser, companions=["scores"])
    earlier = tmp_path / "nab.csv"
    earlier.write_text("detector\nar\n")
    with pytest.raises(SystemExit):  # nab-scores.csv is not beside it
        parser.parse_args(["--reuse", str(earlier)])
    companion_file(earlier, "scores").write_text("detector\nar\n")
    assert parser.parse_args(["--reuse", str(earlier)]).reuse == earlier
    with pytest.raises(SystemExit):
        parser.parse_args(["--reuse", str(tmp_path / "missing.csv")])


def test_tabular_means_are_given_over_all_sets_and_each_half() -> None:
    files = ["1_ALOI", "2_annthyroid", "3_backdoor", "4_breastw"]
    results = pd.DataFrame(
        {
            "protocol": "normal",
            "file": files,
            "detector": "gmm",
            "auc_roc": [0.6, 0.7, 0.8, 0.9],
            "auc_pr": 0.5,
            "fit_seconds": 1.0,
            "score_seconds": 1.0,
        }
    )
    table = tabular.means(results).set_index("half")
    assert table.at["all", "files"] == 4 and table.at["all", "auc_roc"] == pytest.approx(0.75)
    for part in ("tune", "confirm"):
        mine = results[[half(f) == part for f in files]]
        if len(mine):
            assert table.at[part, "auc_roc"] == pytest.approx(mine["auc_roc"].mean())
    assert table.loc[["tune", "confirm"], "files"].sum() == 4
