"""Speed and memory of every detector on 100,000 x 20 rows, side by side with PyOD's VAE.

    .venv/bin/python -m benchmarks.speed [--rows 100000] [--detectors gmm,vae,...]

The data are synthetic and seeded: normal rows lie near a curved 4-dimensional manifold in 20
dimensions (``tanh`` of a random linear map of a Gaussian code, mixed again linearly, plus
noise). The test set has as many rows as the training set; 2% of them are anomalies, half with
two features replaced by values drawn from those features' own distribution (every value
ordinary, the combination not), half drawn uniformly over each feature's range.

Each detector runs in a fresh process with the defaults a user gets (our torch detectors and
PyOD's deep models use every core), so one detector's memory and threads do not affect the
next. Per detector: fit seconds, scoring rate on the whole test set, AUC-ROC, and the peak
resident memory the fit added, against the training data's size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from atalaia.evaluation import auc_roc
from benchmarks.common import (
    RESULTS_DIR,
    build_detector,
    log,
    markdown_table,
    parse_spec,
    parse_specs,
    provenance,
    seed_everything,
    write_results,
)

DEFAULT_DETECTORS = "gmm,vae,made,gan,pyod.VAE"
N_FEATURES = 20
LATENT = 4
ANOMALY_SHARE = 0.02
WARM_UP_ROWS = 256
# The test set is scored this many times and the fastest pass counts, as timeit does: on a
# shared machine the same trained MADE scored 96,000 to 270,000 rows/s in runs an hour apart.
SCORE_PASSES = 3
# Targets of the detector issue, recorded beside the measurements.
MIN_ROWS_PER_SECOND = 200_000
MIN_ROWS_PER_SECOND_GMM = 1_000_000
MIN_SPEEDUP_OVER_PYOD_VAE = 10


def make_data(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training rows, test rows and test labels (1 = anomaly), all from ``seed``."""
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(LATENT, N_FEATURES))
    second = rng.normal(size=(N_FEATURES, N_FEATURES)) / np.sqrt(N_FEATURES)

    def normal_rows(n: int) -> np.ndarray:
        code = rng.normal(size=(n, LATENT))
        return np.tanh(code @ first) @ second + 0.05 * rng.normal(size=(n, N_FEATURES))

    train, test = normal_rows(n_rows), normal_rows(n_rows)
    labels = np.zeros(n_rows, dtype=int)
    anomalies = rng.choice(n_rows, int(ANOMALY_SHARE * n_rows), replace=False)
    labels[anomalies] = 1
    mixed, uniform = np.array_split(anomalies, 2)
    for row in mixed:
        features = rng.choice(N_FEATURES, 2, replace=False)
        test[row, features] = train[rng.integers(0, n_rows, 2), features]
    low, high = train.min(axis=0), train.max(axis=0)
    test[uniform] = rng.uniform(low, high, size=(len(uniform), N_FEATURES))
    return train, test, labels


def reset_peak_memory() -> bool:
    """Restart the kernel's count of this process's peak resident memory (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def resident_bytes(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


def measure(spec_text: str, n_rows: int, seed: int) -> dict:
    """Fit and score one detector in this process; the row of the results table."""
    spec = parse_spec(spec_text)
    train, test, labels = make_data(n_rows, seed)
    # a first fit on a few rows loads the libraries and sets up thread pools and allocators,
    # so what follows measures the fit itself
    build_detector(spec, seed).fit(train[:WARM_UP_ROWS])
    model = build_detector(spec, seed)
    seed_everything(seed)
    before = resident_bytes("VmRSS")
    tracked = reset_peak_memory()
    began = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - began
    peak = resident_bytes("VmHWM") if tracked else None
    passes = []
    for _ in range(SCORE_PASSES):
        seed_everything(seed)
        began = time.perf_counter()
        scores = np.asarray(model.decision_function(test), dtype=np.float64)
        passes.append(time.perf_counter() - began)
    return {
        "detector": spec.label,
        "fit_seconds": fit_seconds,
        "score_seconds": min(passes),
        "slowest_score_seconds": max(passes),
        "rows_per_second": len(test) / min(passes),
        "auc_roc": auc_roc(labels, scores),
        "fit_memory_mb": None if peak is None else (peak - before) / 2**20,
        "data_mb": train.nbytes / 2**20,
        "threads": _threads(),
    }


def _threads() -> int | None:
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def run_isolated(spec_text: str, n_rows: int, seed: int) -> dict:
    """``measure`` in a fresh Python process."""
    command = [sys.executable, "-W", "ignore", "-m", "benchmarks.speed", "--one", spec_text]
    command += ["--rows", str(n_rows), "--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"detector": spec_text, "error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def targets(table: pd.DataFrame) -> list[str]:
    """Lines saying, for each target of the issue, what was measured."""
    lines = []
    by_name = table.set_index("detector")
    if {"vae", "pyod.VAE"} <= set(by_name.index):
        ours, theirs = by_name.loc["vae"], by_name.loc["pyod.VAE"]
        speedup = theirs["fit_seconds"] / ours["fit_seconds"]
        met = speedup >= MIN_SPEEDUP_OVER_PYOD_VAE and ours["auc_roc"] >= theirs["auc_roc"]
        lines.append(
            f"- `vae` trains {speedup:.1f}x faster than PyOD's VAE with its defaults "
            f"({ours['fit_seconds']:.1f} s against {theirs['fit_seconds']:.1f} s), at AUC-ROC "
            f"{ours['auc_roc']:.3f} against {theirs['auc_roc']:.3f}: target (>= "
            f"{MIN_SPEEDUP_OVER_PYOD_VAE}x at equal or better AUC) {'met' if met else 'MISSED'}."
        )
    for name, row in by_name.iterrows():
        if str(name).startswith("pyod.") or pd.isna(row.get("rows_per_second")):
            continue
        floor = MIN_ROWS_PER_SECOND_GMM if name == "gmm" else MIN_ROWS_PER_SECOND
        rate = row["rows_per_second"]
        verdict = "met" if rate >= floor else "MISSED"
        lines.append(f"- `{name}` scores {rate:,.0f} rows/s: target >= {floor:,} {verdict}.")
        memory = row.get("fit_memory_mb")
        if memory is not None and not pd.isna(memory):
            lines.append(
                f"- `{name}` fit added {memory:.0f} MB of peak resident memory, "
                f"{memory / row['data_mb']:.1f}x the training data's {row['data_mb']:.0f} MB."
            )
    return lines


def report(table: pd.DataFrame, n_rows: int, load: tuple[float, float]) -> str:
    """The markdown results file."""
    columns = ["detector", "fit_seconds", "score_seconds", "slowest_score_seconds"]
    columns += ["rows_per_second", "auc_roc"]
    columns += ["fit_memory_mb", "data_mb", "threads", "error"]
    rows = table.reindex(columns=columns).astype(object)
    rows = rows.where(rows.notna(), None).to_dict("records")
    return "\n".join(
        [
            f"# Speed benchmark: {n_rows:,} x {N_FEATURES} rows",
            "",
            provenance(),
            f"- load average (1 min) of the machine at start and end: {load[0]:.1f}, "
            f"{load[1]:.1f} on {os.cpu_count()} cores; the machine is shared, so every "
            "time here is inflated by whatever else ran, alike for every detector.",
            "- data: " + " ".join(__doc__.split("\n\n")[2].split()),
            "- each detector in a fresh process, defaults (our torch detectors and PyOD's deep "
            f"models on every core), after a warm-up fit on {WARM_UP_ROWS} rows; "
            f"`score_seconds`: the fastest of {SCORE_PASSES} passes scoring the whole test "
            "set (`slowest_score_seconds` beside it), `rows_per_second` from it; one fit per "
            "detector; `fit_memory_mb`: peak resident memory the fit added (Linux VmHWM).",
            "",
            "## Targets",
            "",
            *targets(table),
            "",
            "## Measurements",
            "",
            markdown_table(rows, columns, float_format=".3g"),
            "",
        ]
    )


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="training and test rows")
    parser.add_argument("--detectors", default=DEFAULT_DETECTORS, help="comma-separated specs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--output", default="speed")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run one spec here, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.rows, args.seed)))
        return
    provenance()
    load_at_start = os.getloadavg()[0]
    results = []
    for spec in parse_specs(args.detectors):
        log(f"speed: {spec.label}")
        results.append(run_isolated(spec.label, args.rows, args.seed))
        log(f"  {results[-1]}")
    table = pd.DataFrame(results)
    text = report(table, args.rows, (load_at_start, os.getloadavg()[0]))
    for path in write_results(args.results_dir, args.output, text, {"": table}):
        log(f"wrote {path}")


if __name__ == "__main__":
    main()
