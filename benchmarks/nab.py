"""The Numenta Anomaly Benchmark: NAB scores and Orion event F1 per category.

    .venv/bin/python -m benchmarks.nab [--data-dir DIR] [--detectors ar,nar] [--window 32]

Each file is one series, a row one step. Its probationary rows (NAB's first 15%, at most
750) are the initial baseline; the rest is scored walking forward (``benchmarks.streaming``),
the detector retrained on the past as the product's scheduled retraining would, which NAB
allows (a detector may keep learning after the probation). The NAB score sweeps one threshold
over the whole corpus, so it needs one scale for every file: a row's strength is ``-log(p)``
of its p-value, kept only where it would raise an alert (``alert_scores``: an incident pages
once, and again only when it escalates within ``--alert-hold``). Event F1 counts the
calibrated flags after the probation against NAB's windows, as Orion counts events.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from atalaia.evaluation import markdown_table
from atalaia.nab import (
    load_corpus,
    load_profiles,
    load_published,
    load_windows,
    probationary_length,
    score_corpus,
    window_rows,
)
from benchmarks.common import (
    DetectorFailure,
    DetectorSpec,
    add_reuse_option,
    argument_parser,
    code_version,
    companion_file,
    failed_series,
    failures_section,
    log,
    provenance,
    published_orion_rows,
    records,
    reuse_note,
    reused_rows,
    series_metrics,
    setup,
    summarise_series,
    write_results,
)
from benchmarks.streaming import (
    TIME_SERIES_POLICY,
    StreamPolicy,
    add_stream_options,
    alert_scores,
    stream,
    stream_policy,
)

# NAB category -> the column of Orion's published F1 table.
ORION_CATEGORIES = {
    "artificialWithAnomaly": "Art",
    "realAdExchange": "AdEx",
    "realAWSCloudwatch": "AWS",
    "realTraffic": "Traf",
    "realTweets": "Tweet",
}
# Below every -log(p) (which is >= 0): a failed file never fires at a threshold above it.
NEVER_FIRES = -1.0
# NAB scores how early an anomaly is found: no smoothing, which would delay every alert.
NAB_POLICY = dataclasses.replace(TIME_SERIES_POLICY, smoothing=1, retrain_every=1000)
ALERT_HOLD = pd.Timedelta(days=1)
# The table of NAB scores per detector and profile, written as nab-scores.csv.
SCORES_TABLE = "scores"
PROFILE_COLUMNS = {
    "standard": "standard",
    "reward_low_FP_rate": "low FP",
    "reward_low_FN_rate": "low FN",
}


def hold_rows(timestamps: pd.Series, hold: pd.Timedelta) -> int:
    """How many rows of a file span ``hold``, at its median step."""
    step = timestamps.diff().median()
    return int(round(hold / step)) if pd.notna(step) and step > pd.Timedelta(0) else 0


def run_file(
    file: str,
    frame: pd.DataFrame,
    windows: list,
    specs: list[DetectorSpec],
    seed: int,
    policy: StreamPolicy,
    hold: pd.Timedelta,
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Result rows per detector for one file, and each detector's NAB anomaly scores."""
    values = frame[["value"]].to_numpy(np.float64)
    probation = probationary_length(len(values))
    windows_after = [
        (max(start, probation) - probation, end - probation)
        for start, end in window_rows(pd.Index(frame["timestamp"]), windows, file)
        if end >= probation
    ]
    hold_for = hold_rows(frame["timestamp"], hold)
    step = frame["timestamp"].diff().median()  # some files' steps are irregular
    rows, nab_scores = [], {}
    for spec in specs:
        row = {
            "category": file.split("/")[0],
            "file": file,
            "detector": spec.label,
            "code": code_version(),
            "rows": len(values),
            "probation_rows": probation,
        }
        try:
            run = stream(spec, values, probation, policy, seed, step=step)
        except DetectorFailure as failure:
            rows.append(row | failed_series(windows_after, failure))
            nab_scores[spec.label] = np.full(len(values), NEVER_FIRES)
            continue
        nab_scores[spec.label] = alert_scores(-run.log_p_values, hold_for)
        after = slice(probation, None)
        rows.append(
            row
            | {"fits": run.fits}
            | series_metrics(
                run.scores[after],
                run.flags[after],
                windows_after,
                run.policy.max_gap,
                run.policy.event_lead,
            )
            | {"fit_seconds": run.fit_seconds, "score_seconds": run.score_seconds}
        )
    return rows, nab_scores


def nab_table(
    corpus: dict[str, pd.DataFrame],
    scores: dict[str, dict[str, np.ndarray]],
    nab_dir: Path,
) -> pd.DataFrame:
    """Per detector and profile: the NAB score at the best corpus-wide threshold."""
    windows, profiles = load_windows(nab_dir), load_profiles(nab_dir)
    rows = []
    for detector, by_file in scores.items():
        inputs = {file: (corpus[file]["timestamp"], by_file[file]) for file in by_file}
        for name, result in score_corpus(inputs, windows, profiles).items():
            rows.append(
                {
                    "detector": detector,
                    "profile": name,
                    "score": result.score,
                    "threshold": result.threshold,
                    "detected_windows": result.detected_windows,
                    "missed_windows": result.missed_windows,
                    "false_positive_rows": result.false_positives,
                }
            )
    return pd.DataFrame(rows)


def scoreboard(nab: pd.DataFrame, nab_dir: Path) -> str:
    """Our NAB scores beside the published scoreboard, best standard score first."""
    ours = nab.pivot(index="detector", columns="profile", values="score")
    rows = [
        {"detector": detector} | {PROFILE_COLUMNS[p]: ours.at[detector, p] for p in PROFILE_COLUMNS}
        for detector in dict.fromkeys(nab["detector"])
    ]
    published = [
        {"detector": f"NAB {name} (published)"}
        | {PROFILE_COLUMNS[p]: scores.get(p) for p in PROFILE_COLUMNS}
        for name, scores in load_published(nab_dir).items()
    ]
    published.sort(key=lambda row: -(row["standard"] or 0.0))
    return markdown_table(rows + published, ["detector", *PROFILE_COLUMNS.values()], ".1f")


def by_category(rows: pd.DataFrame, metric: str) -> list[dict]:
    """One row per detector: ``metric`` per category, over Orion's five, and over all files."""
    per_category = summarise_series(rows, ["detector", "category"])
    orion_five = summarise_series(rows[rows["category"].isin(ORION_CATEGORIES)], ["detector"])
    every_file = summarise_series(rows, ["detector"])
    table = []
    for detector in dict.fromkeys(rows["detector"]):
        mine = per_category[per_category["detector"] == detector].set_index("category")
        row = {"detector": detector}
        row |= {
            ORION_CATEGORIES.get(category, category): mine.at[category, metric]
            for category in mine.index
        }
        row["Orion's five"] = orion_five.set_index("detector").at[detector, metric]
        row["all files"] = every_file.set_index("detector").at[detector, metric]
        table.append(row)
    return records(pd.DataFrame(table))


def counts_by_category(rows: pd.DataFrame) -> list[dict]:
    """``TP / FP / FN`` cells, laid out like :func:`by_category`."""
    tables = {name: by_category(rows, name) for name in ("tp", "fp", "fn")}
    return [
        {
            key: value if key == "detector" else f"{value} / {fp[key]} / {fn[key]}"
            for key, value in tp.items()
        }
        for tp, fp, fn in zip(tables["tp"], tables["fp"], tables["fn"], strict=True)
    ]


def report(
    rows: pd.DataFrame,
    nab: pd.DataFrame,
    nab_dir: Path,
    published_dir: Path,
    policy: StreamPolicy,
    hold: pd.Timedelta,
) -> str:
    """The markdown results page."""
    f1 = by_category(rows, "event_f1")
    columns = list(f1[0])
    orion = published_orion_rows(published_dir, {ours: ours for ours in ORION_CATEGORIES.values()})
    text = [
        "# NAB: NAB scores and Orion event F1 per category\n",
        provenance(),
        "- protocol: each file's probationary part (NAB's first 15%, at most 750 rows) is its "
        "initial baseline; the rest is scored walking forward (`benchmarks.streaming`), a "
        f"row per step: {policy.describe()}. The same settings for every file and detector.",
        "- NAB score: a row's anomaly score is -log of its p-value (one scale for every "
        "file), kept only where it raises an alert: above every score of the "
        f"{hold} before it (an incident pages once, and again when it escalates), else 0; "
        "the threshold is swept over the whole corpus as NAB does; a file a detector failed "
        "on counts as never firing.",
        "- event F1: TP/FP/FN summed over the files of a category, after the probation, "
        "against NAB's windows; a failed file counts its windows as missed. Orion scores "
        "its pipelines on whole signals without a probation, so the comparison is rough.",
        "\n## NAB score (standard / low FP / low FN)\n",
        scoreboard(nab, nab_dir),
        "\n## Event F1 per category\n",
        markdown_table(f1 + orion, columns),
        "\n## Event counts per category (TP / FP / FN)\n",
        markdown_table(counts_by_category(rows), columns),
        "\n## Mean AUC-PR per category (rows after the probation, files with windows)\n",
        markdown_table(by_category(rows, "auc_pr"), columns),
    ]
    text += failures_section(rows, ["file", "detector"])
    return "\n".join(text) + "\n"


def main() -> None:
    """Run the benchmark and write ``benchmarks/results/nab.md`` and its CSVs."""
    parser = argument_parser(__doc__.splitlines()[0], "nab", "nab")
    add_stream_options(parser, NAB_POLICY)
    parser.add_argument(
        "--alert-hold",
        type=pd.Timedelta,
        default=ALERT_HOLD,
        help="an alert pages again within this time only when it escalates (default: 1 day)",
    )
    add_reuse_option(parser, companions=[SCORES_TABLE])
    args = parser.parse_args()
    specs = setup(args)
    policy = stream_policy(args)
    corpus, windows = load_corpus(args.data_dir), load_windows(args.data_dir)
    if not corpus:
        parser.error(f"no data/<category>/<file>.csv in {args.data_dir}")
    rows: list[dict] = []
    scores: dict[str, dict[str, np.ndarray]] = {spec.label: {} for spec in specs}
    for file, frame in corpus.items():
        log(file)
        file_rows, file_scores = run_file(
            file, frame, windows[file], specs, args.seed, policy, args.alert_hold
        )
        rows += file_rows
        for detector, values in file_scores.items():
            scores[detector][file] = values
    kept = reused_rows(args.reuse, specs)
    frame = pd.concat([pd.DataFrame(rows), kept], ignore_index=True)
    nab = nab_table(corpus, scores, args.data_dir)
    if args.reuse is not None:
        earlier = companion_file(args.reuse, SCORES_TABLE)
        nab = pd.concat([nab, reused_rows(earlier, specs)], ignore_index=True)
    text = report(frame, nab, args.data_dir, args.published_dir, policy, args.alert_hold)
    if args.reuse is not None:
        text += reuse_note(kept, args.reuse) + "\n"
    tables = {"": frame, SCORES_TABLE: nab}
    for path in write_results(args.results_dir, args.output, text, tables):
        log(f"wrote {path}")


if __name__ == "__main__":
    main()
