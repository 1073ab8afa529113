"""What the benchmark runners share: detector specs, splits, fitting, metrics and results.

A detector is named by a spec string, ``kind`` or ``kind(param=value, ...)``:

* ``pyod.<Name>`` is PyOD's own model (``pyod.IForest``, ``pyod.VAE(epoch_num=10)``), called
  directly as a baseline: ``fit`` on the training rows, ``decision_function`` on the others;
* anything else goes to ``detectors.create`` (``gmm``, every kind of ``detectors.REGISTRY``,
  and ``pyod:<Name>``, PyOD behind our adapter), so it runs through our Detector contract.

:func:`fit_and_score` is where a tabular runner's detector meets the arrays: it hands it rows
and gets anomaly scores back. The time-series runners go through the product's own jobs
instead (``benchmarks.monitored``).
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import inspect
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

import detectors
from atalaia.evaluation import (
    EventCounts,
    auc_pr,
    auc_roc,
    event_counts,
    events_to_flags,
    point_metrics,
)
from detectors import pyod_adapter
from detectors.pyod_adapter import pyod_class

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
# The code a result depends on, for its provenance.
CODE_DIRS = ("atalaia", "benchmarks", "detectors")
# A run's own results are not code it ran with.
RESULTS_NOT_CODE = ":(exclude)benchmarks/results"
PYOD_PREFIX = "pyod."
# PyOD's own models run beside ours on every benchmark.
BASELINES = (
    "pyod.IForest",
    "pyod.ECOD",
    "pyod.PCA",
    "pyod.GMM",
    "pyod.VAE",
    "pyod.AutoEncoder",
)


# -- detector specs ------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorSpec:
    """A detector's name and constructor parameters; ``text`` is how tables label it."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def label(self) -> str:
        """The spec as written, e.g. ``gmm`` or ``pyod.VAE(epoch_num=10)``."""
        return self.text or self.name

    @property
    def is_pyod_baseline(self) -> bool:
        """Whether this is PyOD's own model, called directly."""
        return self.name.startswith(PYOD_PREFIX)


def _split_top_level(text: str) -> list[str]:
    """Split ``text`` on the commas that lie outside brackets."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _value(text: str) -> Any:
    """A Python literal (number, bool, None, list, ...) or else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_spec(text: str) -> DetectorSpec:
    """Parse ``kind`` or ``kind(param=value, ...)``; values are Python literals or strings."""
    text = text.strip()
    name, _, rest = text.partition("(")
    name = name.strip()
    if not name or (rest and not rest.endswith(")")):
        raise ValueError(f"detector spec {text!r}: expected kind or kind(param=value, ...)")
    params: dict[str, Any] = {}
    for item in _split_top_level(rest[:-1]) if rest else []:
        key, equals, value = item.partition("=")
        if not equals or not key.strip().isidentifier():
            raise ValueError(f"detector spec {text!r}: {item!r} is not param=value")
        params[key.strip()] = _value(value.strip())
    return DetectorSpec(name=name, params=params, text=text)


def parse_specs(text: str) -> list[DetectorSpec]:
    """Parse a comma-separated list of specs (commas inside brackets belong to a spec)."""
    specs = [parse_spec(part) for part in _split_top_level(text)]
    if not specs:
        raise ValueError("no detector given")
    return specs


def default_specs() -> list[DetectorSpec]:
    """Every kind in ``detectors.REGISTRY``, then PyOD's baselines."""
    return [parse_spec(kind) for kind in detectors.available()] + [
        parse_spec(name) for name in BASELINES
    ]


def constructor_params(name: str) -> set[str]:
    """The parameters the detector named ``name`` can be built with."""
    for prefix in (PYOD_PREFIX, pyod_adapter.PREFIX):  # our adapter takes PyOD's own params
        if name.startswith(prefix):
            return set(inspect.signature(pyod_class(name.removeprefix(prefix))).parameters)
    return set(detectors.detector_class(name)._get_param_names())


def build_detector(spec: DetectorSpec, seed: int) -> Any:
    """A new, unfitted detector for ``spec``, seeded with ``seed`` where it takes a seed
    (and quiet where it takes ``verbose``), unless the spec sets those itself.

    The seed goes to the constructor: PyOD's deep models seed torch there.
    """
    defaults = {"random_state": seed, "verbose": 0}
    accepted = constructor_params(spec.name)
    params = {k: v for k, v in defaults.items() if k in accepted} | spec.params
    if spec.is_pyod_baseline:
        return pyod_class(spec.name.removeprefix(PYOD_PREFIX))(**params)
    return detectors.create(spec.name, **params)


# -- fitting and scoring -------------------------------------------------------------------


class DetectorFailure(Exception):
    """A detector raised, or returned scores that are not finite numbers."""


@dataclass(frozen=True)
class FitScores:
    """Anomaly scores (higher = more anomalous) of each array scored, with the timings."""

    scores: list[np.ndarray]
    fit_seconds: float
    score_seconds: float


def limit_threads(threads: int) -> None:
    """Run BLAS, OpenMP and torch with at most ``threads`` threads from now on.

    On a busy 2-core machine, a 2-thread OpenBLAS made a small GMM fit 100x slower and
    torch's default threads a small PyOD VAE 12x slower than one thread did.
    """
    threadpool_limits(limits=threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for libraries loaded later
    import torch

    torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's global and (when loaded) torch's random generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def fit_and_score(
    spec: DetectorSpec, train: np.ndarray, to_score: Sequence[np.ndarray], seed: int
) -> FitScores:
    """Fit ``spec`` on ``train``, then score each array of ``to_score``.

    Generators are seeded before the fit and before each scoring call (PyOD's VAE samples
    when it scores). Anything the detector raises, and any NaN or infinite score, becomes a
    :class:`DetectorFailure`, so a runner can record it and go on.
    """
    try:
        model = build_detector(spec, seed)
        seed_everything(seed)
        began = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - began
        scores = []
        began = time.perf_counter()
        for rows in to_score:
            seed_everything(seed)
            scores.append(np.asarray(model.decision_function(rows), dtype=np.float64).ravel())
        score_seconds = time.perf_counter() - began
    except Exception as exc:  # a benchmark records any detector error and carries on
        raise DetectorFailure(f"{type(exc).__name__}: {exc}") from exc
    for rows, values in zip(to_score, scores, strict=True):
        if values.shape != (len(rows),):
            raise DetectorFailure(f"{len(values)} scores for {len(rows)} rows")
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise DetectorFailure(f"{bad} of {len(values)} scores are NaN or infinite")
    return FitScores(scores, fit_seconds, score_seconds)


# -- splits --------------------------------------------------------------------------------


def normal_split(
    labels: np.ndarray, train_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (sorted) of a random ``train_fraction`` of the normal rows, and of the rest:
    the other normal rows plus every anomaly."""
    normal = np.flatnonzero(np.asarray(labels) == 0)
    n_train = int(round(train_fraction * len(normal)))
    train = np.sort(rng.permutation(normal)[:n_train])
    test = np.setdiff1d(np.arange(len(labels)), train)
    return train, test


def subsample(indices: np.ndarray, max_rows: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``max_rows`` of ``indices``, drawn at random without replacement, sorted."""
    if max_rows is None or len(indices) <= max_rows:
        return indices
    return np.sort(rng.choice(indices, size=max_rows, replace=False))


# -- time-series metrics -------------------------------------------------------------------


def series_metrics(
    scores: np.ndarray,
    flags: np.ndarray,
    true_events: Sequence[tuple[int, int]],
    found_events: Sequence[tuple[int, int]],
) -> dict[str, Any]:
    """One series' event counts, AUCs (where both classes occur) and point F1s.

    ``true_events`` and ``found_events`` (the monitor's stored events) are inclusive row
    ranges. Rows without a score (NaN, never flagged) are left out of the AUCs.
    """
    labels = events_to_flags(true_events, len(scores))
    counts = event_counts(true_events, found_events)
    points = point_metrics(labels, flags)
    scored = ~np.isnan(scores)
    both_classes = 0 < labels[scored].sum() < scored.sum()
    return {
        "labelled_events": len(true_events),
        "tp": counts.tp,
        "fp": counts.fp,
        "fn": counts.fn,
        "flagged_rows": int(np.sum(flags)),
        "flagged_share": float(np.mean(flags)) if len(flags) else 0.0,
        "auc_roc": auc_roc(labels[scored], scores[scored]) if both_classes else None,
        "auc_pr": auc_pr(labels[scored], scores[scored]) if both_classes else None,
        "point_f1": points.f1,
        "point_f1_pa": points.f1_point_adjusted,
    }


def failed_series(true_events: Sequence[tuple[int, int]], failure: DetectorFailure) -> dict:
    """The row of a series a detector failed on: every labelled event counts as missed."""
    return {
        "labelled_events": len(true_events),
        "tp": 0,
        "fp": 0,
        "fn": len(true_events),
        "error": str(failure),
    }


def half(series: str) -> str:
    """``tune`` or ``confirm``: the half a series (a channel, a file, a data set) belongs to,
    fixed by a hash of its name. Defaults are chosen on ``tune``; ``confirm`` only reports."""
    return "tune" if hashlib.sha256(series.encode()).digest()[0] % 2 == 0 else "confirm"


def with_halves(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (each with its ``half``) plus a copy of every row as half ``all``."""
    return pd.concat([rows.assign(half="all"), rows], ignore_index=True)


def summarise_series(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group: series, failures, TP/FP/FN summed then F1, mean flagged share, AUCs and
    point F1s, seconds."""
    needed = ["error", "flagged_share", "auc_roc", "auc_pr", "point_f1", "point_f1_pa"]
    needed += ["fit_seconds", "score_seconds"]
    rows = rows.reindex(columns=list(dict.fromkeys([*rows.columns, *needed])))
    rows = rows.assign(failed=rows["error"].notna())
    summary = (
        rows.groupby(by, sort=False)
        .agg(
            series=("tp", "size"),
            failed=("failed", "sum"),
            tp=("tp", "sum"),
            fp=("fp", "sum"),
            fn=("fn", "sum"),
            flagged_share=("flagged_share", "mean"),
            auc_roc=("auc_roc", "mean"),
            auc_pr=("auc_pr", "mean"),
            point_f1=("point_f1", "mean"),
            point_f1_pa=("point_f1_pa", "mean"),
            fit_seconds=("fit_seconds", "sum"),
            score_seconds=("score_seconds", "sum"),
        )
        .reset_index()
    )
    counts = [EventCounts(*map(int, c)) for c in summary[["tp", "fp", "fn"]].to_numpy()]
    position = summary.columns.get_loc("fn") + 1
    summary.insert(position, "precision", [c.precision for c in counts])
    summary.insert(position + 1, "recall", [c.recall for c in counts])
    summary.insert(position + 2, "event_f1", [c.f1 for c in counts])
    return summary


# -- published results ---------------------------------------------------------------------

ORION_F1_FILE = "orion_0.7.1_f1_by_dataset.txt"
ORION_SIGNALS_FILE = "orion_benchmark_results_0.7.1.csv"


def load_orion_f1(published_dir: Path) -> dict[str, dict[str, float]]:
    """Orion 0.7.1's event F1 by pipeline and data set (``{}`` when the file is absent)."""
    path = published_dir / ORION_F1_FILE
    if not path.exists():
        return {}
    lines = [line.split() for line in path.read_text().splitlines()[1:] if line.strip()]
    header, body = lines[0], lines[1:]
    return {
        row[0]: dict(zip(header[1:], map(float, row[1:]), strict=True))
        for row in body
        if len(row) == len(header)
    }


def orion_signals(published_dir: Path, dataset: str) -> set[str]:
    """The signals Orion 0.7.1 evaluated in ``dataset`` (empty when the file is absent)."""
    path = published_dir / ORION_SIGNALS_FILE
    if not path.exists():
        return set()
    frame = pd.read_csv(path, usecols=["dataset", "signal"])
    return set(frame.loc[frame["dataset"] == dataset, "signal"])


def published_orion_rows(
    published_dir: Path, columns: dict[str, str], label: str = "detector"
) -> list[dict[str, Any]]:
    """Rows ``{label: "Orion <pipeline> (published)", our column: F1}``, best first.

    ``columns`` maps each of our column names to the data set name in Orion's table.
    """
    published = load_orion_f1(published_dir)
    rows = [
        {label: f"Orion {pipeline} (published)"}
        | {ours: by_dataset.get(theirs) for ours, theirs in columns.items()}
        for pipeline, by_dataset in published.items()
    ]
    first = next(iter(columns), None)
    return sorted(rows, key=lambda row: -(row.get(first) or 0.0))


# -- command line and result files ---------------------------------------------------------


def default_data_dir() -> Path:
    """The shared benchmark data: ``$ATALAIA_DATA_DIR``, else ``../shared/data`` beside the repo."""
    return Path(os.environ.get("ATALAIA_DATA_DIR", REPO.parent / "shared" / "data"))


def argument_parser(description: str, data_subdir: str, output: str) -> argparse.ArgumentParser:
    """A parser with the options every runner takes; ``output`` names its results files."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir() / data_subdir,
        help="folder of the data set, in its source's format (default: %(default)s)",
    )
    parser.add_argument(
        "--detectors",
        type=parse_specs,
        default=None,
        help="comma-separated detector specs, e.g. 'gmm,pyod.IForest,gmm(n_components=2)' "
        "(default: every registered kind and PyOD's baselines)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of splits and detectors")
    parser.add_argument(
        "--threads", type=int, default=1, help="BLAS/OpenMP/torch threads (default: %(default)s)"
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where the markdown and CSV go (default: %(default)s)",
    )
    parser.add_argument(
        "--output", default=output, help="results file name, without suffix (default: %(default)s)"
    )
    parser.add_argument(
        "--published-dir",
        type=Path,
        default=default_data_dir() / "published",
        help="the published result tables (default: %(default)s)",
    )
    parser.add_argument(
        "--half",
        choices=["tune", "confirm"],
        default=None,
        help="run only the series of this half (``half``; default: both)",
    )
    return parser


def setup(args: argparse.Namespace) -> list[DetectorSpec]:
    """Note the run's provenance and apply ``--threads``; return the specs of
    ``--detectors``, else the default list."""
    provenance()
    limit_threads(args.threads)
    return args.detectors or default_specs()


def _git(*args: str) -> str:
    """The output of a git command in the repository, as is ("" when git fails)."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout


@functools.cache
def code_version() -> str:
    """The commit a run started at, with ``+`` when the code had uncommitted changes."""
    commit = _git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = _git(
        "status", "--porcelain", "--untracked-files=no", "--", *CODE_DIRS, RESULTS_NOT_CODE
    )
    return commit + ("+" if changed else "")


def add_reuse_option(parser: argparse.ArgumentParser, companions: Sequence[str] = ()) -> None:
    """``--reuse CSV``: keep an earlier run's rows of the detectors this run does not run.

    The CSV, and the CSV of each table named in ``companions`` beside it (as
    ``write_results`` names them), must exist when the arguments are parsed, not only when
    the run that needs them ends.
    """

    def existing_results(text: str) -> Path:
        path = Path(text)
        for needed in [path, *(companion_file(path, table) for table in companions)]:
            if not needed.is_file():
                raise argparse.ArgumentTypeError(f"no file {needed}")
        return path

    parser.add_argument(
        "--reuse",
        type=existing_results,
        help="an earlier results CSV of this runner: its rows of detectors not given to "
        "--detectors are kept (each row's `code` column names the commit it ran at)",
    )


def companion_file(path: Path, table: str) -> Path:
    """The CSV of ``table`` that ``write_results`` writes beside the results CSV ``path``."""
    return path.with_name(f"{path.stem}-{table}.csv")


def reused_rows(path: Path | None, specs: Sequence[DetectorSpec]) -> pd.DataFrame:
    """The rows of the CSV at ``path`` whose detector is none of ``specs`` (empty: no path)."""
    if path is None:
        return pd.DataFrame()
    rows = pd.read_csv(path)
    return rows[~rows["detector"].isin([spec.label for spec in specs])]


def reuse_note(kept: pd.DataFrame, path: Path) -> str:
    """A line saying which detectors' rows came from an earlier run, and at what code."""
    codes = kept.drop_duplicates("detector").set_index("detector")["code"]
    earlier = [f"`{name}` ({code})" for name, code in codes.items()]
    return f"- rows kept from `{path.name}` (an earlier run; commit): " + ", ".join(earlier)


@functools.cache
def provenance() -> str:
    """Markdown lines saying when, with what command, code and libraries a run started."""
    commit = _git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = _git(
        "status", "--porcelain", "--untracked-files=no", "--", *CODE_DIRS, RESULTS_NOT_CODE
    )
    if changed:
        files = ", ".join(line[3:] for line in changed.splitlines())
        commit += f" plus uncommitted changes to {files}"
    libraries = ", ".join(
        f"{name} {version(name)}" for name in ("numpy", "scikit-learn", "pyod", "torch")
    )
    main_spec = getattr(sys.modules["__main__"], "__spec__", None)
    program = f"python -m {main_spec.name}" if main_spec else sys.argv[0]
    command = " ".join([program, *sys.argv[1:]])
    return (
        f"- run started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit {commit}: `{command}`\n"
        f"- machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}; "
        f"{libraries}\n"
    )


def cpu_model() -> str:
    """The CPU's model name and its widest vector instructions, from ``/proc/cpuinfo``
    (hosts of the same machine kind differ, and torch's speed with them)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    fields = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in info.splitlines())
    }
    name = fields.get("model name") or "unknown CPU"
    flags = fields.get("flags", "").split()
    widest = next((isa for isa in ("avx512f", "avx2", "avx") if isa in flags), "no AVX")
    return f"{name}, {widest.removesuffix('f')}"


def write_results(
    results_dir: Path, name: str, report: str, tables: dict[str, pd.DataFrame]
) -> list[Path]:
    """Write ``<name>.md`` and one CSV per table (``<name>.csv`` for the key ``""``)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    markdown = results_dir / f"{name}.md"
    markdown.write_text(report)
    written = [markdown]
    for suffix, table in tables.items():
        path = results_dir / (f"{name}-{suffix}.csv" if suffix else f"{name}.csv")
        table.to_csv(path, index=False, float_format="%.6g")
        written.append(path)
    return written


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``table`` as dicts, with NaN as None (a blank cell in markdown)."""
    return table.astype(object).where(table.notna(), None).to_dict("records")


def failures_section(rows: pd.DataFrame, columns: list[str]) -> list[str]:
    """A markdown "Failures" section listing the rows with an error (none: nothing)."""
    failed = rows[rows["error"].notna()] if "error" in rows else rows.iloc[:0]
    if failed.empty:
        return []
    return ["\n## Failures\n", markdown_table(records(failed), [*columns, "error"])]


def log(message: str) -> None:
    """Progress on stderr, so a long run shows where it is."""
    print(message, file=sys.stderr, flush=True)


def markdown_table(
    rows: Sequence[Mapping[str, object]],
    columns: Sequence[str] | None = None,
    float_format: str = ".3f",
) -> str:
    """Format rows (e.g. ``EvaluationReport.as_row()`` plus a name) as a markdown table.

    ``columns`` defaults to every key, in order of first appearance; a missing value is
    left blank and floats are written with ``float_format``.
    """
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, float | np.floating):
            return format(value, float_format)
        return str(value)

    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
