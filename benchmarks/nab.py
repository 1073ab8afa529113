"""The Numenta Anomaly Benchmark: NAB scores and Orion event F1 per category.

    .venv/bin/python -m benchmarks.nab [--data-dir DIR] [--detectors ar,ar(seasons=["1D"])]

Each file is one series and one monitor (the template ``benchmarks/monitors/nab.yaml``, run
by ``benchmarks.monitored`` through the product's own jobs), with the file's timestamps and
its median step as the monitor's frequency. Its probationary rows (NAB's first 15%, at most
750) are the baseline; the rest is ingested and scored a day at a time (``atalaia.walk``),
retrained on the monitor's retrain schedule, which NAB allows (a detector may keep learning
after the probation). The NAB score sweeps one threshold
over the whole corpus, so it needs one scale for every file: a row's strength is ``-log(p)``
of its p-value, kept only where it would raise an alert (``alert_scores``: an incident pages
once, and again only when it escalates within ``--alert-hold``). Event F1 counts the
monitor's stored events after the probation against NAB's windows, as Orion counts events.
Every table is given over all files and over each half (``benchmarks.common.half``).
"""

from __future__ import annotations

from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from atalaia.config import Monitor
from benchmarks.common import (
    DetectorFailure,
    DetectorSpec,
    add_reuse_option,
    argument_parser,
    code_version,
    companion_file,
    failed_series,
    failures_section,
    half,
    log,
    markdown_table,
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
from benchmarks.monitored import (
    add_template_option,
    load_template,
    monitor_document,
    row_results,
    run_monitored,
)
from benchmarks.nab_score import (
    load_corpus,
    load_profiles,
    load_published,
    load_windows,
    probationary_length,
    score_corpus,
    window_rows,
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


def frequency(timestamps: pd.Series) -> str:
    """A file's median step as a monitor frequency (seconds, or minutes when whole)."""
    seconds = int(round(timestamps.diff().median().total_seconds()))
    return f"{seconds // 60}min" if seconds % 60 == 0 else f"{seconds}s"


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


def run_file(
    file: str,
    frame: pd.DataFrame,
    windows: list,
    specs: list[DetectorSpec],
    seed: int,
    template: dict,
    hold: pd.Timedelta,
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Result rows per detector for one file, and each detector's NAB anomaly scores."""
    probation = probationary_length(len(frame))
    windows_after = [
        (max(start, probation) - probation, end - probation)
        for start, end in window_rows(pd.Index(frame["timestamp"]), windows, file)
        if end >= probation
    ]
    hold_for = hold_rows(frame["timestamp"], hold)
    series = pd.DataFrame(
        {"ts": frame["timestamp"].dt.tz_localize("UTC"), "value": frame["value"].astype(float)}
    )
    baseline = (series["ts"].iloc[0], series["ts"].iloc[probation])
    end = series["ts"].iloc[-1] + pd.Timedelta(seconds=1)
    rows, nab_scores = [], {}
    for spec in specs:
        row = {
            "category": file.split("/")[0],
            "file": file,
            "half": half(file),
            "detector": spec.label,
            "code": code_version(),
            "rows": len(frame),
            "probation_rows": probation,
        }
        document = monitor_document(
            template,
            spec,
            seed,
            name="file",
            source="series.parquet",
            features=["value"],
            frequency=frequency(frame["timestamp"]),
            baseline=baseline,
        )
        try:
            monitored = run_monitored(document, series, end)
        except DetectorFailure as failure:
            rows.append(row | failed_series(windows_after, failure))
            nab_scores[spec.label] = np.full(len(frame), NEVER_FIRES)
            continue
        step = Monitor.model_validate(document).step
        scores, flags, events = row_results(monitored, series["ts"], step)
        strengths = _minus_log_p(monitored, series["ts"], step)
        nab_scores[spec.label] = alert_scores(strengths, hold_for)
        shift = [(max(0, a - probation), b - probation) for a, b in events if b >= probation]
        after = slice(probation, None)
        rows.append(
            row
            | {"fits": 1 + monitored.retrains}
            | series_metrics(scores[after], flags[after], windows_after, shift)
            | {"fit_seconds": monitored.fit_seconds, "score_seconds": monitored.score_seconds}
        )
    return rows, nab_scores


def _minus_log_p(monitored, stamps: pd.Series, step: pd.Timedelta) -> np.ndarray:
    """Each row's ``-log`` p-value from its step's stored z (exact where p underflows);
    0 for rows without a score (the probation)."""
    origin = pd.Timestamp(0, tz="UTC")
    steps = origin + ((stamps - origin) // step) * step
    z = monitored.scores.set_index("ts")["z"].reindex(steps).to_numpy(dtype=np.float64)
    return np.where(np.isnan(z), 0.0, -log_ndtr(-np.nan_to_num(z)))


def nab_table(
    corpus: dict[str, pd.DataFrame],
    scores: dict[str, dict[str, np.ndarray]],
    nab_dir: Path,
) -> pd.DataFrame:
    """Per detector and profile: the NAB score at the best corpus-wide threshold."""
    windows, profiles = load_windows(nab_dir), load_profiles(nab_dir)
    rows = []
    for (detector, by_file), part in product(scores.items(), ("all", "tune", "confirm")):
        inputs = {
            file: (corpus[file]["timestamp"], values)
            for file, values in by_file.items()
            if part in ("all", half(file))
        }
        if not inputs:  # a run of one half (--half)
            continue
        for name, result in score_corpus(inputs, windows, profiles).items():
            rows.append(
                {
                    "detector": detector,
                    "half": part,
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
    ours = nab.pivot(index=["detector", "half"], columns="profile", values="score")
    rows = [
        {"detector": detector, "half": part}
        | {PROFILE_COLUMNS[p]: ours.at[(detector, part), p] for p in PROFILE_COLUMNS}
        for detector, part in ours.index
    ]
    published = [
        {"detector": f"NAB {name} (published)"}
        | {PROFILE_COLUMNS[p]: scores.get(p) for p in PROFILE_COLUMNS}
        for name, scores in load_published(nab_dir).items()
    ]
    published.sort(key=lambda row: -(row["standard"] or 0.0))
    columns = ["detector", "half", *PROFILE_COLUMNS.values()]
    return markdown_table(rows + published, columns, ".1f")


def by_category(rows: pd.DataFrame, metric: str) -> list[dict]:
    """One row per detector: ``metric`` per category, over Orion's five, and over all files."""
    per_category = summarise_series(rows, ["detector", "category"])
    orion_five = summarise_series(rows[rows["category"].isin(ORION_CATEGORIES)], ["detector"])
    every_file = summarise_series(rows, ["detector"])
    per_half = summarise_series(rows, ["detector", "half"])
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
        for part, files in per_half[per_half["detector"] == detector].groupby("half"):
            row[f"{part} files"] = files[metric].iloc[0]
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
    template: str,
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
        "baseline of a monitor from the template "
        f"`benchmarks/monitors/{template}.yaml` (the file's timestamps, its median step as "
        "the frequency), run through the product's jobs (`benchmarks.monitored`): the rest "
        "is ingested and scored a day at a time and retrained on the monitor's schedule "
        "(`atalaia.walk`). The same settings for every file and detector.",
        "- halves: `tune` and `confirm` split the files by a hash of their name "
        "(`benchmarks.common.half`); defaults are chosen on `tune` only. NAB scores are "
        "swept over each half's files separately.",
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
    add_template_option(parser, "nab")
    parser.add_argument(
        "--alert-hold",
        type=pd.Timedelta,
        default=ALERT_HOLD,
        help="an alert pages again within this time only when it escalates (default: 1 day)",
    )
    add_reuse_option(parser, companions=[SCORES_TABLE])
    args = parser.parse_args()
    specs = setup(args)
    template = load_template(args.template)
    corpus, windows = load_corpus(args.data_dir), load_windows(args.data_dir)
    if args.half:
        corpus = {file: frame for file, frame in corpus.items() if half(file) == args.half}
    if not corpus:
        parser.error(f"no data/<category>/<file>.csv in {args.data_dir}")
    rows: list[dict] = []
    scores: dict[str, dict[str, np.ndarray]] = {spec.label: {} for spec in specs}
    for file, frame in corpus.items():
        log(file)
        file_rows, file_scores = run_file(
            file, frame, windows[file], specs, args.seed, template, args.alert_hold
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
    text = report(frame, nab, args.data_dir, args.published_dir, args.template, args.alert_hold)
    if args.reuse is not None:
        text += reuse_note(kept, args.reuse) + "\n"
    tables = {"": frame, SCORES_TABLE: nab}
    for path in write_results(args.results_dir, args.output, text, tables):
        log(f"wrote {path}")


if __name__ == "__main__":
    main()
