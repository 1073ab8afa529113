"""How the time-series runners score a series: as the product runs a monitor, step by step.

A series is a matrix of rows in time order (one row per step), optionally cut into segments
that windows never cross (SMAP's training and test arrays are not contiguous). Its first
``first`` rows are the initial baseline; the rest is scored in batches, walking forward:

* the detector sees windows of the last ``window`` steps (``detectors.windows``), with the
  seasonal lags of ``seasons`` when the initial baseline spans two of each (a monitor's
  training refuses a shorter baseline; here the season is left out); a row's score is its
  window's, smoothed by the product's moving mean (``detectors.smoothing``).
  The first ``window - 1`` rows of a segment lack a full window: they are neither fitted
  on nor scored (as in Orion's windowed pipelines), so a series' start, predicted from no
  past, is not taken for an anomaly, and detectors that refuse missing values (PyOD's)
  run too;
* the detector is fitted on the older part of the baseline and calibrated on its newest
  ``fraction``; the calibration pool then grows with every scored row that was not flagged,
  so each batch is judged against all the normal scores seen before it (past data only);
* every ``retrain_every`` rows the detector is fitted again on the baseline grown by the
  rows scored since, flagged rows excluded (the product's scheduled retraining);
* a row is flagged when its p-value is below ``alpha``. Beyond the largest calibration
  score, p-values follow an exponential tail (``detectors.calibration``) whose scale is at
  least ``min_tail_scale`` nats, so score differences smaller than that are not taken as
  evidence and ``alpha`` may be below ``1 / (n_calibration + 1)``;
* events are formed as a monitor forms them (``atalaia.evaluation.detected_events``): each
  starts ``smoothing - 1`` rows before its first flagged row, the rows whose raw scores that
  row's smoothed score averages, and events whose spans touch, or that are at most
  ``max_gap`` rows apart, are one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import pandas as pd

from atalaia.config import duration, event_lead
from benchmarks.common import DetectorFailure, DetectorSpec, fit_and_score
from detectors import ConformalCalibrator
from detectors.smoothing import moving_mean
from detectors.windows import make_windows

# The fewest baseline rows that calibrate (a quarter of a short baseline would be too few).
MIN_CALIBRATION_ROWS = 100


@dataclass(frozen=True)
class StreamPolicy:
    """Windows, smoothing, calibration, retraining and events: one setting for every series."""

    window: int = 1
    smoothing: int = 1
    alpha: float = 0.01
    fraction: float = 0.25
    batch: int = 100
    retrain_every: int = 0  # rows; 0: never
    min_tail_scale: float = 1.0
    max_gap: int = 0
    seasons: tuple[str, ...] = ()  # durations such as "1D"; the series' step converts them

    @property
    def event_lead(self) -> int:
        """Rows an event starts before its first flag, as a monitor's events do."""
        return event_lead(self.smoothing)

    def calibration_rows(self, n_baseline: int) -> int:
        """How many of the newest baseline rows calibrate."""
        return max(math.ceil(self.fraction * n_baseline), MIN_CALIBRATION_ROWS)

    def describe(self) -> str:
        """One paragraph for a results file."""
        retrain = (
            f"refitted every {self.retrain_every} rows on the rows seen so far, flagged rows "
            "excluded"
            if self.retrain_every
            else "never refitted"
        )
        seasons = (
            f" plus seasonal lags of {', '.join(self.seasons)} (where the initial baseline "
            "spans two of a season)"
            if self.seasons
            else ""
        )
        return (
            f"windows of {self.window} steps{seasons}; scores smoothed by a moving mean over "
            f"{self.smoothing} steps; the detector is fitted on the baseline (at first the "
            f"training part) less its newest {self.fraction:.0%} (at least "
            f"{MIN_CALIBRATION_ROWS} rows), which calibrates; scored in batches of "
            f"{self.batch} rows, each judged against every unflagged score before it; "
            f"{retrain}; a row is flagged when its p-value < alpha = {self.alpha:g} "
            f"(exponential tail beyond the largest calibration score, scale at least "
            f"{self.min_tail_scale:g} nats); an event starts {self.event_lead} rows before its "
            f"first flagged row (the rows its smoothed score averages), and events at most "
            f"{self.max_gap} rows apart or touching are one"
        )


# The settings both time-series runners use by default (see benchmarks/README.md for why).
TIME_SERIES_POLICY = StreamPolicy(window=32, smoothing=20, alpha=1e-4)


class TailCalibrator(ConformalCalibrator):
    """The product's conformal calibrator with a floor on the scale of its exponential tail.

    Without a floor, calibration scores that barely differ (a channel that was constant in
    training scores the same everywhere) give a tail of scale ~0, and any score a hair above
    them an extreme p-value. ``alpha`` may lie below ``1 / (n + 1)``: flags then come from
    the tail alone.
    """

    def __init__(self, alpha: float = 0.01, min_tail_scale: float = 1.0) -> None:
        super().__init__(alpha=alpha)
        self.min_tail_scale = min_tail_scale

    def fit(self, calibration_scores: np.ndarray) -> TailCalibrator:
        """Remember the scores of held-out normal rows; floor the tail's scale."""
        plain = ConformalCalibrator(alpha=1.0).fit(calibration_scores)  # any count will do
        self.scores_ = plain.scores_
        self.tail_scale_ = max(plain.tail_scale_, self.min_tail_scale)
        return self


def series_windows(
    values: np.ndarray,
    window: int,
    segment: np.ndarray | None = None,
    seasons: Sequence[int] = (),
) -> pd.DataFrame:
    """Flattened windows ending at every row (each row one step), never crossing segments,
    with the seasonal lags of ``seasons`` (periods in rows).

    Built by the product's ``make_windows`` on a regular grid of one-minute steps; the
    columns are named ``x<i>@t-<lag>``, from which the autoregressive detectors learn how
    many channels a step has.
    """
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    features = [f"x{i}" for i in range(values.shape[1])]
    frame = pd.DataFrame(values, columns=features)
    frame["ts"] = pd.Timestamp("2000-01-01") + pd.to_timedelta(np.arange(len(values)), "min")
    entity = None if segment is None else pd.Series(np.asarray(segment), index=frame.index)
    windows = make_windows(
        frame,
        timestamp="ts",
        features=features,
        frequency=timedelta(minutes=1),
        window=window,
        entity=entity,
        seasons=seasons,
    )
    if len(windows.values) != len(values):
        raise ValueError("every row must hold at least one value")
    return windows.frame()


@dataclass(frozen=True)
class Streamed:
    """Per row of a series: smoothed score, log p-value and flag (rows before ``first`` and
    warm-up rows: NaN, 0 and False), with the cost of getting them."""

    scores: np.ndarray
    log_p_values: np.ndarray
    flags: np.ndarray
    policy: StreamPolicy
    fits: int
    fit_seconds: float
    score_seconds: float


def detector_policy(spec: DetectorSpec, policy: StreamPolicy) -> tuple[DetectorSpec, StreamPolicy]:
    """Split a spec's parameters named like :class:`StreamPolicy`'s fields (``window``,
    ``retrain_every``, ...) off into the policy: ``gan(retrain_every=0)`` is the GAN with the
    run's settings but no retraining, as a monitor's ``detector`` section holds both."""
    fields = set(StreamPolicy.__dataclass_fields__)
    overrides = {key: value for key, value in spec.params.items() if key in fields}
    if not overrides:
        return spec, policy
    params = {key: value for key, value in spec.params.items() if key not in fields}
    return replace(spec, params=params), replace(policy, **overrides)


def stream(
    spec: DetectorSpec,
    values: np.ndarray,
    first: int,
    policy: StreamPolicy,
    seed: int,
    segment: np.ndarray | None = None,
    step: pd.Timedelta | None = None,
) -> Streamed:
    """Score rows ``first..`` of ``values`` (rows x features, in time order) walking forward
    (see the module's doc), with the policy as :func:`detector_policy` makes it for ``spec``.
    ``step`` is the time between rows, which turns the policy's seasons into rows.
    """
    spec, policy = detector_policy(spec, policy)
    windows = series_windows(values, policy.window, segment, season_rows(policy, step, first))
    n = len(windows)
    segment = np.zeros(n) if segment is None else np.asarray(segment)
    warm_up = _segment_position(segment) < policy.window - 1
    scores, log_p = np.full(n, np.nan), np.zeros(n)
    flags = np.zeros(n, dtype=bool)
    baseline = np.arange(first)
    fits, fit_seconds, score_seconds = 0, 0.0, 0.0
    start = first
    while start < n:
        n_calibration = policy.calibration_rows(len(baseline))
        fit_rows, calibration = baseline[:-n_calibration], baseline[-n_calibration:]
        fit_rows = fit_rows[~warm_up[fit_rows]]
        if len(fit_rows) < 2:
            raise DetectorFailure(
                f"{len(baseline)} baseline rows leave too few full windows to fit after "
                f"{n_calibration} calibrate"
            )
        end = n if not policy.retrain_every else min(n, start + policy.retrain_every)
        # score from a little before the calibration rows, so their smoothing is complete
        lead = max(0, calibration[0] - policy.smoothing + 1)
        full = ~warm_up[lead:end]
        to_score = windows.iloc[lead:end][full]
        fitted = fit_and_score(spec, windows.iloc[fit_rows], [to_score], seed)
        fits += 1
        fit_seconds += fitted.fit_seconds
        score_seconds += fitted.score_seconds
        raw = np.full(end - lead, np.nan)
        raw[full] = fitted.scores[0]
        smoothed = moving_mean(raw, policy.smoothing, segment[lead:end])  # NaN: skipped
        pool = [score for score in smoothed[calibration - lead] if not np.isnan(score)]
        for batch in range(start, end, policy.batch):
            rows = slice(batch, min(end, batch + policy.batch))
            calibrator = TailCalibrator(policy.alpha, policy.min_tail_scale).fit(np.array(pool))
            batch_scores = smoothed[rows.start - lead : rows.stop - lead]
            scored = ~np.isnan(batch_scores)
            log_p[rows] = np.where(scored, calibrator.log_p_values(batch_scores), 0.0)
            flags[rows] = log_p[rows] < math.log(policy.alpha)
            scores[rows] = batch_scores
            pool.extend(batch_scores[scored & ~flags[rows]])
        new_rows = np.arange(start, end)
        baseline = np.concatenate([baseline, new_rows[~flags[start:end]]])
        start = end
    return Streamed(scores, log_p, flags, policy, fits, fit_seconds, score_seconds)


def season_rows(policy: StreamPolicy, step: pd.Timedelta | None, first: int) -> list[int]:
    """The policy's seasons in rows of ``step``, those the ``first`` baseline rows span twice."""
    if policy.seasons and step is None:
        raise ValueError("seasons need the time between rows, and this series has none")
    periods = [round(pd.Timedelta(duration(season)) / step) for season in policy.seasons]
    return [rows for rows in periods if rows >= 1 and 2 * rows <= first]


def _segment_position(segment: np.ndarray) -> np.ndarray:
    """Each row's position within its run of equal segment keys (0 at a segment's start)."""
    starts = np.r_[True, segment[1:] != segment[:-1]]
    first_row = np.maximum.accumulate(np.where(starts, np.arange(len(segment)), 0))
    return np.arange(len(segment)) - first_row


def alert_scores(strengths: np.ndarray, hold: int) -> np.ndarray:
    """Each row's strength where it would raise an alert, else 0.

    At any threshold, a row alerts when its strength reaches the threshold and exceeds every
    strength of the ``hold`` rows before it: an incident pages once, and again only when it
    escalates, not at every step it lasts. ``hold = 0`` keeps every row.
    """
    strengths = np.asarray(strengths, dtype=np.float64)
    if hold == 0:
        return strengths.copy()
    before = pd.Series(strengths).shift(1).rolling(hold, min_periods=1).max()
    return np.where(strengths > before.fillna(-np.inf).to_numpy(), strengths, 0.0)


def add_stream_options(parser, defaults: StreamPolicy) -> None:
    """The options of :class:`StreamPolicy`, with ``defaults`` as their defaults."""
    for name, help_text in (
        ("window", "steps per window (1: each step alone)"),
        ("smoothing", "moving-mean span of the scores, in steps"),
        ("alpha", "a row is flagged when its p-value is below alpha"),
        ("fraction", "share of the baseline (newest rows) that calibrates"),
        ("batch", "rows per scoring batch; the calibration pool grows after each"),
        ("retrain_every", "refit after this many scored rows (0: never)"),
        ("min_tail_scale", "floor of the p-value tail's scale, in nats"),
        ("max_gap", "flagged rows at most this many rows apart form one event"),
    ):
        default = getattr(defaults, name)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=type(default),
            default=default,
            help=f"{help_text} (default: %(default)s)",
        )
    parser.add_argument(
        "--seasons",
        type=lambda text: tuple(season for season in text.split(",") if season),
        default=defaults.seasons,
        help="comma-separated seasonal periods such as 1D,7D (default: none)",
    )


def stream_policy(args) -> StreamPolicy:
    """The policy given by the options of :func:`add_stream_options`."""
    return StreamPolicy(**{name: getattr(args, name) for name in StreamPolicy.__dataclass_fields__})
