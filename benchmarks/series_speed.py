"""Time-series scoring speed: a day of one-minute data for 1,000 series, as a monitor scores it.

    .venv/bin/python -m benchmarks.series_speed [--series 1000] [--detectors ar,gmm,nar]

The data are synthetic and seeded: each series is a daily cycle of its own phase and
amplitude plus a slow random walk and noise. A detector is fitted once on the windows of the
day before (all series pooled, as one monitor's model serves every entity; at most
``--max-fit-rows`` of them, drawn at random), then the day is scored the way the product
scores a batch: windows of every entity (``detectors.windows.make_windows``, with the
``window - 1`` steps before the day as context), the detector's scores, and their moving mean
per entity (``detectors.smoothing``). Each step is timed; the total is what the issue's
target is about (the linear AR and the GMM well under a minute for 1,440,000 steps). Neural
detectors score a tenth of the series (``--neural-share``) and their rate is recorded.
"""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pandas as pd

from benchmarks.common import (
    argument_parser,
    build_detector,
    log,
    markdown_table,
    parse_spec,
    parse_specs,
    provenance,
    records,
    seed_everything,
    setup,
    write_results,
)
from benchmarks.monitored import load_template
from detectors.smoothing import moving_mean
from detectors.windows import make_windows

STEPS_PER_DAY = 1440
STEP = timedelta(minutes=1)
FAST_KINDS = ("ar", "gmm")
DEFAULT_DETECTORS = "ar,gmm,nar,vae,gan"
TARGET_SECONDS = 60.0
# The time-series settings measured: the SMAP monitor template's detector section.
TIME_SERIES = load_template("smap")["detector"]


def make_series(n_series: int, seed: int) -> pd.DataFrame:
    """Two days of one-minute values for ``n_series`` entities: ``entity, ts, value``."""
    rng = np.random.default_rng(seed)
    steps = 2 * STEPS_PER_DAY
    minute = np.arange(steps)
    phase = rng.uniform(0, 2 * np.pi, (n_series, 1))
    amplitude = rng.uniform(0.5, 2.0, (n_series, 1))
    cycle = amplitude * np.sin(2 * np.pi * minute / STEPS_PER_DAY + phase)
    walk = np.cumsum(rng.normal(0, 0.02, (n_series, steps)), axis=1)
    values = cycle + walk + rng.normal(0, 0.1, (n_series, steps))
    stamps = pd.date_range("2026-01-01", periods=steps, freq="1min", tz="UTC")
    return pd.DataFrame(
        {
            "entity": np.repeat([f"s{i:04d}" for i in range(n_series)], steps),
            "ts": np.tile(stamps, n_series),
            "value": values.ravel(),
        }
    )


def windows_of(frame: pd.DataFrame, window: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The windows of ``frame`` (named columns) and each window's entity and last step."""
    made = make_windows(
        frame,
        timestamp="ts",
        features=["value"],
        frequency=STEP,
        window=window,
        entity=frame["entity"],
    )
    return made.frame(), made.index


def measure(spec_text: str, data: pd.DataFrame, args) -> dict:
    """Fit on the first day, score the second; seconds per step of scoring."""
    spec = parse_spec(spec_text)
    window, span = TIME_SERIES["window"], TIME_SERIES["smoothing"]
    day_two = data["ts"] >= data["ts"].min() + pd.Timedelta(days=1)
    first_day = data[~day_two]
    entities = data["entity"].unique()
    if spec.name not in FAST_KINDS:
        entities = entities[: max(1, int(len(entities) * args.neural_share))]
    fit_windows, _ = windows_of(first_day, window)
    rng = np.random.default_rng(args.seed)
    if len(fit_windows) > args.max_fit_rows:
        fit_windows = fit_windows.iloc[np.sort(rng.choice(len(fit_windows), args.max_fit_rows))]
    model = build_detector(spec, args.seed)
    seed_everything(args.seed)
    began = time.perf_counter()
    model.fit(fit_windows)
    fit_seconds = time.perf_counter() - began
    # the batch: the second day of the chosen entities, with the steps before it as context
    context = data["ts"] >= data["ts"].min() + pd.Timedelta(days=1) - STEP * (window - 1)
    batch = data[context & data["entity"].isin(entities)]
    began = time.perf_counter()
    windows, index = windows_of(batch, window)
    in_day = (index["ts"] >= data["ts"].min() + pd.Timedelta(days=1)).to_numpy()
    windowing = time.perf_counter() - began
    began = time.perf_counter()
    scores = model.decision_function(windows)
    scoring = time.perf_counter() - began
    began = time.perf_counter()
    smoothed = moving_mean(scores, span, index["entity"].to_numpy())[in_day]
    smoothing = time.perf_counter() - began
    steps = int(in_day.sum())
    total = windowing + scoring + smoothing
    return {
        "detector": spec.label,
        "series": len(entities),
        "steps": steps,
        "fit_rows": len(fit_windows),
        "fit_seconds": fit_seconds,
        "windowing_seconds": windowing,
        "scoring_seconds": scoring,
        "smoothing_seconds": smoothing,
        "total_seconds": total,
        "steps_per_second": steps / total,
        "seconds_for_1000_series": total * 1000 / len(entities),
        "finite": bool(np.isfinite(smoothed).all()),
    }


def main() -> None:
    """Run and write ``benchmarks/results/series-speed.md`` and its CSV."""
    parser = argument_parser(__doc__.splitlines()[0], "", "series-speed")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--max-fit-rows", type=int, default=100_000)
    parser.add_argument("--neural-share", type=float, default=0.1)
    parser.set_defaults(detectors=parse_specs(DEFAULT_DETECTORS))
    args = parser.parse_args()
    specs = setup(args)
    data = make_series(args.series, args.seed)
    rows = []
    for spec in specs:
        log(spec.label)
        rows.append(measure(spec.label, data, args))
    table = pd.DataFrame(rows)
    columns = list(table.columns)
    lines = [
        f"# Time-series scoring speed: one day of one-minute data, {args.series:,} series\n",
        provenance(),
        "- " + " ".join(__doc__.split("\n\n")[1].split()),
        f"- window {TIME_SERIES['window']} steps, moving mean over "
        f"{TIME_SERIES['smoothing']} steps (the SMAP monitor template's); "
        f"`--threads {args.threads}` for BLAS "
        "(the torch detectors use every core).",
        "",
        "## Target",
        "",
    ]
    for row in rows:
        if row["detector"] in FAST_KINDS:
            seconds = row["seconds_for_1000_series"]
            verdict = "met" if seconds < TARGET_SECONDS else "MISSED"
            lines.append(
                f"- `{row['detector']}`: {seconds:.1f} s for 1,000 series x 1,440 steps "
                f"(target well under {TARGET_SECONDS:.0f} s): {verdict}."
            )
    lines += ["", "## Measurements", "", markdown_table(records(table), columns, ".3g"), ""]
    for path in write_results(args.results_dir, args.output, "\n".join(lines), {"": table}):
        log(f"wrote {path}")


if __name__ == "__main__":
    main()
