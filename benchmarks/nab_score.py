"""The Numenta Anomaly Benchmark (NAB) score, implemented from NAB's rules.

Rules as in numenta/NAB at commit ea702d75 (``nab/sweeper.py``, ``nab/optimizer.py``,
``nab/runner.py``, ``nab/labeler.py``):

* The first ``min(floor(0.15 * n), 0.15 * 5000)`` rows of a file are probationary: a detection
  there is ignored.
* A row is a detection when its anomaly score is ``>= threshold``.
* In a window, only the earliest detection counts, rewarded with
  ``tp_weight * S(p) / S(-1)`` where ``p = -(right - i + 1) / width`` (``-1`` at the window's
  first row) and ``S(x) = 2 * sigmoid(-5x) - 1``; a window with no detection costs
  ``fn_weight``.
* A detection outside every window costs ``fp_weight`` before the first window, and
  ``-fp_weight * S(p)`` after one, with ``p = (i - right) / (width - 1)`` measured from the
  preceding window (``S = -1`` once ``p > 3``).
* The threshold is chosen for the whole corpus at once, by scoring every distinct anomaly
  score as a candidate threshold (NAB's sweep keeps the highest threshold among equal scores).
* Per profile, ``score = 100 * (raw - null) / (perfect - null)``, where ``null`` is the raw
  score of a detector that never fires and ``perfect = tp_weight * number of windows``.

A window that lies wholly in the probationary period counts only in ``perfect``, as in NAB
(NAB's labeler deletes such windows, so its corpus has none).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

PROBATION_FRACTION = 0.15
_PROBATION_CAP_ROWS = 5000  # NAB caps the probation at PROBATION_FRACTION * 5000 = 750 rows

Window = tuple[Any, Any]
ScoresByFile = Mapping[str, tuple[ArrayLike, ArrayLike]]
WindowsByFile = Mapping[str, Sequence[Window]]


@dataclass(frozen=True)
class NabProfile:
    """An application profile: the weights of a true positive, false positive, false negative."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


@dataclass(frozen=True)
class NabResult:
    """A detector's NAB score on one profile, at one threshold.

    ``threshold`` is ``inf`` when the best choice is to flag nothing. ``false_positives``
    counts flagged rows outside windows; ``raw_score_by_file`` sums to ``raw_score``.
    """

    profile: str
    threshold: float
    score: float
    raw_score: float
    null_score: float
    perfect_score: float
    detected_windows: int
    missed_windows: int
    false_positives: int
    raw_score_by_file: dict[str, float]


@dataclass(frozen=True)
class ThresholdSweep:
    """Raw corpus score for each candidate threshold, highest threshold first.

    The first candidate, ``inf``, flags nothing; each other one flags the rows whose score
    is at least that value.
    """

    thresholds: np.ndarray
    raw_scores: np.ndarray

    @property
    def best_index(self) -> int:
        """Index of the best raw score; the highest threshold among equals, as NAB picks."""
        return int(np.argmax(self.raw_scores))

    @property
    def best_threshold(self) -> float:
        """Threshold with the best raw score."""
        return float(self.thresholds[self.best_index])

    @property
    def best_raw_score(self) -> float:
        """The best raw score."""
        return float(self.raw_scores[self.best_index])


def probationary_length(n_rows: int, fraction: float = PROBATION_FRACTION) -> int:
    """Rows at the start of a file that NAB never scores: ``min(floor(f * n), f * 5000)``."""
    return int(min(math.floor(fraction * n_rows), fraction * _PROBATION_CAP_ROWS))


def scaled_sigmoid(position: ArrayLike) -> np.ndarray:
    """NAB's ``S(x) = 2 * sigmoid(-5x) - 1`` (= ``-tanh(2.5x)``), and -1 for ``x > 3``."""
    x = np.asarray(position, dtype=float)
    return np.where(x > 3.0, -1.0, -np.tanh(2.5 * x))


def normalised_score(raw: float, null: float, perfect: float) -> float:
    """``100 * (raw - null) / (perfect - null)``: 0 for the null detector, 100 for a perfect one."""
    if perfect == null:
        raise ValueError("the perfect and null scores are equal (no windows?): score undefined")
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class _CorpusRows:
    """The scorable (post-probation) rows of a corpus, ready to be scored for any profile.

    ``reward`` is a row's unweighted contribution if flagged: ``S(p) / S(-1)`` inside a
    window (to be multiplied by ``tp_weight``), ``S(p)`` or -1 outside (times ``fp_weight``).
    """

    files: list[str]
    scores: np.ndarray
    reward: np.ndarray
    window_of_row: np.ndarray  # corpus-wide window id, -1 outside windows
    file_of_row: np.ndarray
    file_of_window: np.ndarray
    window_scorable: np.ndarray  # False for a window wholly in the probationary period
    sweep_order: np.ndarray  # row order by descending score, ties in file order

    def weighted(self, profile: NabProfile) -> np.ndarray:
        in_window = self.window_of_row >= 0
        return self.reward * np.where(in_window, profile.tp_weight, profile.fp_weight)

    def null_score(self, profile: NabProfile) -> float:
        return -profile.fn_weight * float(self.window_scorable.sum())

    def perfect_score(self, profile: NabProfile) -> float:
        return profile.tp_weight * len(self.window_scorable)


def _row_of(timestamps: pd.Index, limit: Any, file: str) -> int:
    matches = np.flatnonzero(timestamps == limit)
    if len(matches) == 0:
        raise ValueError(f"{file}: window limit {limit} is not one of the file's timestamps")
    return int(matches[0])


def window_rows(
    timestamps: pd.Index, windows: Sequence[Window], file: str
) -> list[tuple[int, int]]:
    """Inclusive row ranges of ``windows``, located as NAB does: each limit must equal one of
    the timestamps (the first occurrence counts) and the window holds every row between."""
    ranges: list[tuple[int, int]] = []
    for start, end in windows:
        first, last = _row_of(timestamps, start, file), _row_of(timestamps, end, file)
        if last < first:
            raise ValueError(f"{file}: window ({start}, {end}) ends before it starts")
        if ranges and first <= ranges[-1][1]:
            raise ValueError(f"{file}: windows must be sorted and must not overlap")
        ranges.append((first, last))
    return ranges


def _file_rewards(n_rows: int, ranges: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-row unweighted reward and file-local window index (-1 outside windows)."""
    rows = np.arange(n_rows)
    reward = np.full(n_rows, -1.0)  # before the first window
    window = np.full(n_rows, -1)
    max_tp = float(scaled_sigmoid(-1.0))
    for k, (left, right) in enumerate(ranges):
        width = right - left + 1
        inside = slice(left, right + 1)
        window[inside] = k
        reward[inside] = scaled_sigmoid(-(right - rows[inside] + 1) / width) / max_tp
        next_left = ranges[k + 1][0] if k + 1 < len(ranges) else n_rows
        after = slice(right + 1, next_left)
        # NAB divides by width - 1, undefined for a one-row window: use 1 there.
        reward[after] = scaled_sigmoid((rows[after] - right) / max(width - 1, 1))
    return reward, window


def _prepare(scores_by_file: ScoresByFile, windows: WindowsByFile) -> _CorpusRows:
    """Validate the inputs and lay out the scorable rows of every file end to end."""
    files = sorted(scores_by_file)
    if not files:
        raise ValueError("no files to score")
    parts: dict[str, list[np.ndarray]] = {
        "scores": [],
        "reward": [],
        "window": [],
        "file": [],
        "file_of_window": [],
        "window_scorable": [],
    }
    n_windows = 0
    for file_id, file in enumerate(files):
        if file not in windows:
            raise ValueError(f"no windows given for {file} (give [] for a file without any)")
        raw_timestamps, raw_scores = scores_by_file[file]
        timestamps = pd.Index(raw_timestamps)
        scores = np.asarray(raw_scores, dtype=float)
        if len(scores) != len(timestamps):
            raise ValueError(f"{file}: {len(timestamps)} timestamps but {len(scores)} scores")
        if np.isnan(scores).any():
            raise ValueError(f"{file}: anomaly scores contain NaN")
        ranges = window_rows(timestamps, windows[file], file)
        reward, window = _file_rewards(len(scores), ranges)
        probation = probationary_length(len(scores))
        scorable_window = np.array([right >= probation for _, right in ranges], dtype=bool)
        parts["scores"].append(scores[probation:])
        parts["reward"].append(reward[probation:])
        parts["window"].append(np.where(window >= 0, window + n_windows, -1)[probation:])
        parts["file"].append(np.full(len(scores) - probation, file_id))
        parts["file_of_window"].append(np.full(len(ranges), file_id))
        parts["window_scorable"].append(scorable_window)
        n_windows += len(ranges)
    joined = {name: np.concatenate(arrays) for name, arrays in parts.items()}
    return _CorpusRows(
        files=files,
        scores=joined["scores"],
        reward=joined["reward"],
        window_of_row=joined["window"].astype(np.int64),
        file_of_row=joined["file"].astype(np.int64),
        file_of_window=joined["file_of_window"].astype(np.int64),
        window_scorable=joined["window_scorable"].astype(bool),
        sweep_order=np.argsort(-joined["scores"], kind="stable"),
    )


def _sweep(rows: _CorpusRows, profile: NabProfile) -> ThresholdSweep:
    """Raw corpus score at every distinct score value, in one pass over the sorted rows."""
    order = rows.sweep_order
    contribution = rows.weighted(profile)[order]
    window = rows.window_of_row[order]
    # Lowering the threshold past a row adds its contribution if it lies outside windows;
    # inside a window it adds how much it raises that window's best reward so far
    # (which starts at -fn_weight, a missed window).
    change = contribution.copy()
    in_window = np.flatnonzero(window >= 0)
    by_window = in_window[np.lexsort((in_window, window[in_window]))]  # then by sweep order
    group = window[by_window]
    best = pd.Series(np.maximum(contribution[by_window], -profile.fn_weight))
    best = best.groupby(group).cummax().to_numpy()
    first_of_window = np.ones(len(group), dtype=bool)
    first_of_window[1:] = group[1:] != group[:-1]
    previous = np.roll(best, 1)
    previous[first_of_window] = -profile.fn_weight
    change[by_window] = best - previous
    raw_after_row = rows.null_score(profile) + np.cumsum(change)
    sorted_scores = rows.scores[order]
    last_of_value = np.ones(len(sorted_scores), dtype=bool)
    last_of_value[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    return ThresholdSweep(
        thresholds=np.r_[np.inf, sorted_scores[last_of_value]],
        raw_scores=np.r_[rows.null_score(profile), raw_after_row[last_of_value]],
    )


def _score_at(rows: _CorpusRows, profile: NabProfile, threshold: float) -> NabResult:
    contribution = rows.weighted(profile)
    flagged = rows.scores >= threshold
    false_positive = flagged & (rows.window_of_row < 0)
    hit = flagged & (rows.window_of_row >= 0)
    best = np.full(len(rows.window_scorable), -profile.fn_weight)
    np.maximum.at(best, rows.window_of_row[hit], contribution[hit])
    best[~rows.window_scorable] = 0.0
    detected = np.zeros(len(best), dtype=bool)
    detected[rows.window_of_row[hit]] = True
    n_files = len(rows.files)
    by_file = np.bincount(
        rows.file_of_row[false_positive], weights=contribution[false_positive], minlength=n_files
    ) + np.bincount(rows.file_of_window, weights=best, minlength=n_files)
    raw = float(by_file.sum())
    null = rows.null_score(profile)
    perfect = rows.perfect_score(profile)
    return NabResult(
        profile=profile.name,
        threshold=float(threshold),
        score=normalised_score(raw, null, perfect),
        raw_score=raw,
        null_score=null,
        perfect_score=perfect,
        detected_windows=int(detected.sum()),
        missed_windows=int((rows.window_scorable & ~detected).sum()),
        false_positives=int(false_positive.sum()),
        raw_score_by_file=dict(zip(rows.files, by_file.tolist(), strict=True)),
    )


def _score(rows: _CorpusRows, profile: NabProfile, threshold: float | None) -> NabResult:
    """Score at ``threshold``, or at the best threshold of the sweep when it is None."""
    if threshold is None:
        threshold = _sweep(rows, profile).best_threshold
    return _score_at(rows, profile, threshold)


def sweep_thresholds(
    scores_by_file: ScoresByFile, windows: WindowsByFile, profile: NabProfile
) -> ThresholdSweep:
    """Raw corpus score at every candidate threshold (each distinct anomaly score)."""
    return _sweep(_prepare(scores_by_file, windows), profile)


def nab_score(
    scores_by_file: ScoresByFile,
    windows: WindowsByFile,
    profile: NabProfile,
    threshold: float | None = None,
) -> NabResult:
    """NAB score of a detector on a corpus for one profile.

    ``scores_by_file`` maps a file name to ``(timestamps, anomaly_scores)``, timestamps
    sorted; ``windows`` maps every such file to its ``[(start, end)]`` windows (inclusive,
    values comparable with the timestamps). Without ``threshold``, the best one over the
    corpus is found by the exhaustive sweep.
    """
    return _score(_prepare(scores_by_file, windows), profile, threshold)


def score_corpus(
    scores_by_file: ScoresByFile,
    windows: WindowsByFile,
    profiles: Mapping[str, NabProfile],
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, NabResult]:
    """NAB score for each profile, at the swept best threshold or at ``thresholds[name]``."""
    rows = _prepare(scores_by_file, windows)
    return {
        name: _score(rows, profile, None if thresholds is None else thresholds[name])
        for name, profile in profiles.items()
    }


def _read_json(path: Path) -> Any:
    with path.open() as handle:
        return json.load(handle)


def load_windows(nab_dir: str | Path) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """NAB's anomaly windows (``labels/combined_windows.json``) by file, e.g.
    ``"realKnownCause/nyc_taxi.csv"``."""
    raw = _read_json(Path(nab_dir) / "labels" / "combined_windows.json")
    return {
        file: [(pd.Timestamp(start), pd.Timestamp(end)) for start, end in limits]
        for file, limits in raw.items()
    }


def load_profiles(nab_dir: str | Path) -> dict[str, NabProfile]:
    """NAB's application profiles (``config/profiles.json``) by name."""
    raw = _read_json(Path(nab_dir) / "config" / "profiles.json")
    return {
        name: NabProfile(
            name=name,
            tp_weight=float(spec["CostMatrix"]["tpWeight"]),
            fp_weight=float(spec["CostMatrix"]["fpWeight"]),
            fn_weight=float(spec["CostMatrix"]["fnWeight"]),
        )
        for name, spec in raw.items()
    }


def load_published(nab_dir: str | Path) -> dict[str, dict[str, float]]:
    """The published scoreboard (``results/final_results.json``): detector -> profile -> score."""
    return _read_json(Path(nab_dir) / "results" / "final_results.json")


def load_published_thresholds(nab_dir: str | Path) -> dict[str, dict[str, float]]:
    """The thresholds NAB chose (``config/thresholds.json``): detector -> profile -> threshold."""
    raw = _read_json(Path(nab_dir) / "config" / "thresholds.json")
    return {
        detector: {profile: float(entry["threshold"]) for profile, entry in by_profile.items()}
        for detector, by_profile in raw.items()
    }


def _read_timestamped_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(path, usecols=columns)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601")
    return frame


def load_corpus(nab_dir: str | Path) -> dict[str, pd.DataFrame]:
    """NAB's data files (``data/<category>/<file>.csv``) as ``timestamp, value`` frames."""
    data_dir = Path(nab_dir) / "data"
    return {
        path.relative_to(data_dir).as_posix(): _read_timestamped_csv(path, ["timestamp", "value"])
        for path in sorted(data_dir.glob("*/*.csv"))
    }


def load_detector_scores(
    nab_dir: str | Path, detector: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A published detector's raw output (``results/<detector>/<category>/<detector>_<file>``)
    as ``(timestamps, anomaly_scores)`` by data file, ready for :func:`nab_score`."""
    results_dir = Path(nab_dir) / "results" / detector
    prefix = f"{detector}_"
    scores = {}
    for path in sorted(results_dir.glob(f"*/{prefix}*.csv")):
        frame = _read_timestamped_csv(path, ["timestamp", "anomaly_score"])
        file = f"{path.parent.name}/{path.name.removeprefix(prefix)}"
        scores[file] = (frame["timestamp"].to_numpy(), frame["anomaly_score"].to_numpy(float))
    return scores
