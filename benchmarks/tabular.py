"""ADBench's classical tabular sets: AUC-ROC and AUC-PR of every detector on the same splits.

    .venv/bin/python -m benchmarks.tabular [--quick] [--protocols normal,unsup] [--files ...]

Each ``<n>_<name>.npz`` holds ``X`` (rows x features) and ``y`` (1 = anomaly). Protocol
``normal`` trains on a random 70% of the normal rows and tests on the other normal rows plus
every anomaly; ``unsup`` (ADBench's) fits on all rows and scores all rows. Every detector sees
the same split, drawn from ``--seed``. Training rows beyond ``--max-train-rows`` are dropped
by a seeded random subsample, the same rows for every detector; test rows are never capped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from atalaia.evaluation import auc_pr, auc_roc
from benchmarks.common import (
    DetectorFailure,
    DetectorSpec,
    argument_parser,
    failures_section,
    fit_and_score,
    half,
    log,
    markdown_table,
    normal_split,
    provenance,
    records,
    setup,
    subsample,
    with_halves,
    write_results,
)

PROTOCOLS = ("normal", "unsup")
TRAIN_FRACTION = 0.7
MAX_TRAIN_ROWS = 10_000
# Small and medium sets for a run of a few minutes.
QUICK_FILES = ("4_breastw", "14_glass", "39_vertebral", "42_WBC", "45_wine", "7_Cardiotocography")
PUBLISHED_FILE = "adbench_aucroc_unsup.csv"
RESULT_COLUMNS = [
    "protocol",
    "file",
    "detector",
    "features",
    "train_rows",
    "test_rows",
    "test_anomalies",
    "auc_roc",
    "auc_pr",
    "fit_seconds",
    "score_seconds",
    "error",
]
MEANS_COLUMNS = [
    "protocol",
    "half",
    "detector",
    "files",
    "failed",
    "auc_roc",
    "auc_pr",
    "auc_roc_common",
    "auc_pr_common",
    "fit_seconds",
    "score_seconds",
]


def protocol_list(text: str) -> list[str]:
    """Parse ``--protocols``."""
    protocols = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown or not protocols:
        raise ValueError(f"protocols must be among {', '.join(PROTOCOLS)}")
    return protocols


def data_name(stem: str) -> str:
    """ADBench's name of a set from its file stem: ``22_magic.gamma`` -> ``magic.gamma``."""
    number, _, name = stem.partition("_")
    return name if number.isdigit() and name else stem


def data_files(data_dir: Path, wanted: list[str] | None) -> list[Path]:
    """The ``.npz`` files in ADBench's numbering order, optionally only the ``wanted`` ones
    (by file stem, e.g. ``4_breastw``, or by name, e.g. ``breastw``)."""
    files = sorted(
        data_dir.glob("*.npz"),
        key=lambda path: (int(path.stem.split("_")[0]) if path.stem[0].isdigit() else 0, path),
    )
    if wanted is None:
        return files
    chosen = [path for path in files if path.stem in wanted or data_name(path.stem) in wanted]
    unknown = set(wanted) - {path.stem for path in chosen} - {data_name(p.stem) for p in chosen}
    if unknown:
        raise SystemExit(f"no such file in {data_dir}: {', '.join(sorted(unknown))}")
    return chosen


def load_set(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``X`` as float64 and ``y`` as 0/1 integers."""
    with np.load(path, allow_pickle=False) as data:
        return data["X"].astype(np.float64), data["y"].astype(np.int64).ravel()


def split(
    protocol: str, labels: np.ndarray, seed: int, max_train_rows: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices for a protocol, the training rows capped."""
    rng = np.random.default_rng(seed)
    if protocol == "normal":
        train, test = normal_split(labels, TRAIN_FRACTION, rng)
    elif protocol == "unsup":
        train = test = np.arange(len(labels))
    else:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return subsample(train, max_train_rows, rng), test


def run_set(
    path: Path,
    protocol: str,
    specs: list[DetectorSpec],
    seed: int,
    max_train_rows: int | None,
) -> list[dict]:
    """One result row per detector for one data set and protocol."""
    X, y = load_set(path)
    train, test = split(protocol, y, seed, max_train_rows)
    rows = []
    for spec in specs:
        row = {
            "protocol": protocol,
            "file": path.stem,
            "detector": spec.label,
            "features": X.shape[1],
            "train_rows": len(train),
            "test_rows": len(test),
            "test_anomalies": int(y[test].sum()),
        }
        try:
            fitted = fit_and_score(spec, X[train], [X[test]], seed)
        except DetectorFailure as failure:
            rows.append(row | {"error": str(failure)})
            log(f"  {spec.label}: failed: {failure}")
            continue
        scores = fitted.scores[0]
        rows.append(
            row
            | {
                "auc_roc": auc_roc(y[test], scores),
                "auc_pr": auc_pr(y[test], scores),
                "fit_seconds": fitted.fit_seconds,
                "score_seconds": fitted.score_seconds,
            }
        )
    return rows


def means(results: pd.DataFrame) -> pd.DataFrame:
    """Per protocol, half (``all``, ``tune``, ``confirm``: ``benchmarks.common.half`` of the
    set's name) and detector: files, failures, mean AUCs (over the files it ran on, and over
    the files every detector ran on), total seconds."""
    results = results.assign(failed=results["auc_roc"].isna(), half=results["file"].map(half))
    results = with_halves(results)
    every_detector_ran = ~results.groupby(["protocol", "half", "file"])["failed"].transform("any")
    common = results[every_detector_ran].groupby(["protocol", "half", "detector"], sort=False)
    table = (
        results.groupby(["protocol", "half", "detector"], sort=False)
        .agg(
            files=("file", "size"),
            failed=("failed", "sum"),
            auc_roc=("auc_roc", "mean"),
            auc_pr=("auc_pr", "mean"),
            fit_seconds=("fit_seconds", "sum"),
            score_seconds=("score_seconds", "sum"),
        )
        .join(common["auc_roc"].mean().rename("auc_roc_common"))
        .join(common["auc_pr"].mean().rename("auc_pr_common"))
        .reset_index()
    )
    return table.reindex(columns=MEANS_COLUMNS)


def load_published(published_dir: Path) -> pd.DataFrame | None:
    """ADBench's published unsupervised AUC-ROC per set (rows) and algorithm (columns)."""
    path = published_dir / PUBLISHED_FILE
    return pd.read_csv(path, index_col="dataset") if path.exists() else None


def published_beside(published: pd.DataFrame | None, specs: list[DetectorSpec]) -> dict[str, str]:
    """Our baseline's label -> ADBench's column, for the PyOD baselines ADBench published."""
    if published is None:
        return {}
    names = {spec.label: spec.name.removeprefix("pyod.") for spec in specs if spec.is_pyod_baseline}
    return {label: name for label, name in names.items() if name in published.columns}


def per_file_table(
    results: pd.DataFrame,
    protocol: str,
    metric: str,
    published: pd.DataFrame | None,
    beside: dict[str, str],
) -> str:
    """Files (rows) by detectors (columns) for one metric; ``fail`` where a detector failed.

    For the unsupervised AUC-ROC, ADBench's published value of each baseline follows it.
    """
    mine = results[results["protocol"] == protocol]
    detectors = list(dict.fromkeys(mine["detector"]))
    with_published = published is not None and protocol == "unsup" and metric == "auc_roc"
    columns = ["file", "train_rows", "test_rows", "test_anomalies"]
    for detector in detectors:
        columns.append(detector)
        if with_published and detector in beside:
            columns.append(f"ADBench {beside[detector]}")
    rows = []
    for file, group in mine.groupby("file", sort=False):
        first = group.iloc[0]
        row = {"file": file, **{c: first[c] for c in columns[1:4]}}
        for result in group.itertuples():
            value = getattr(result, metric)
            row[result.detector] = "fail" if pd.isna(value) else float(value)
            if with_published and result.detector in beside:
                name = data_name(file)
                row[f"ADBench {beside[result.detector]}"] = (
                    float(published.at[name, beside[result.detector]])
                    if name in published.index
                    else None
                )
        rows.append(row)
    return markdown_table(rows, columns)


def published_means(
    results: pd.DataFrame, published: pd.DataFrame | None, beside: dict[str, str]
) -> list[dict]:
    """ADBench's mean AUC-ROC of each baseline over the files run here, beside ours."""
    if published is None:
        return []
    files = [data_name(stem) for stem in results["file"].unique()]
    known = [name for name in files if name in published.index]
    return [
        {
            "protocol": "unsup",
            "detector": f"ADBench {name} (published)",
            "files": len(known),
            "auc_roc": float(published.loc[known, name].mean()),
        }
        for name in beside.values()
    ]


def report(
    results: pd.DataFrame,
    table: pd.DataFrame,
    published: pd.DataFrame | None,
    beside: dict[str, str],
    max_train_rows: int | None,
) -> str:
    """The markdown results page."""
    text = [
        "# Tabular benchmark: ADBench classical sets\n",
        provenance(),
        f"- protocols: `normal` = fit on a random {TRAIN_FRACTION:.0%} of the normal rows, "
        "test on the other normal rows and every anomaly; `unsup` = fit on all rows, score "
        "all rows (labels unseen). Same split for every detector.",
        f"- training rows capped at {max_train_rows or 'no cap'} by a seeded random subsample, "
        "identical for every detector (PyOD's deep models take minutes per epoch on the "
        "largest sets otherwise); test rows are never capped.",
        "- every detector with its default parameters, seeded; BLAS, OpenMP and torch "
        "single-threaded. `fail`: the detector raised or returned NaN/infinite scores (see "
        "Failures); it is left out of its own means, and the `_common` means use only the "
        "files every detector ran on.",
        "\n## Means\n",
        markdown_table(records(table) + published_means(results, published, beside)),
    ]
    for protocol in results["protocol"].unique():
        for metric, title in (("auc_roc", "AUC-ROC"), ("auc_pr", "AUC-PR")):
            text += [
                f"\n## Protocol {protocol}: {title} per file\n",
                per_file_table(results, protocol, metric, published, beside),
            ]
    text += failures_section(results, ["protocol", "file", "detector"])
    return "\n".join(text) + "\n"


def main() -> None:
    """Run the benchmark and write ``benchmarks/results/tabular.md`` and ``tabular.csv``."""
    parser = argument_parser(__doc__.splitlines()[0], "adbench", "tabular")
    parser.add_argument(
        "--protocols",
        type=protocol_list,
        default=list(PROTOCOLS),
        help=f"comma-separated, of {', '.join(PROTOCOLS)} (default: both)",
    )
    parser.add_argument("--files", help="comma-separated file stems or names (default: all)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"only {', '.join(QUICK_FILES)}; results in tabular-quick.* unless --output",
    )
    parser.add_argument("--max-train-rows", type=int, default=MAX_TRAIN_ROWS)
    args = parser.parse_args()
    specs = setup(args)
    wanted = list(QUICK_FILES) if args.quick else args.files and args.files.split(",")
    files = data_files(args.data_dir, wanted or None)
    if not files:
        parser.error(f"no .npz files in {args.data_dir}")
    rows = []
    for protocol in args.protocols:
        for path in files:
            log(f"{protocol} {path.stem}")
            rows += run_set(path, protocol, specs, args.seed, args.max_train_rows)
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    published = load_published(args.published_dir)
    beside = published_beside(published, specs)
    table = means(results)
    text = report(results, table, published, beside, args.max_train_rows)
    name = f"{args.output}-quick" if args.quick and args.output == "tabular" else args.output
    for path in write_results(args.results_dir, name, text, {"": results, "means": table}):
        log(f"wrote {path}")


if __name__ == "__main__":
    main()
