"""SMAP/MSL telemetry: train on ``train/<chan>.npy``, score ``test/<chan>.npy``, count events.

    .venv/bin/python -m benchmarks.smap [--data-dir DIR] [--detectors ar,ar(window=16)]

The data folder holds ``labeled_anomalies.csv`` (telemanom's labels) and either ``train/`` and
``test/`` folders or tarballs that unpack to them (Merlion's ``SMAP.tar.gz``); a tarball is
unpacked once into a cache folder outside the repository. Every channel the labels list and
the data holds is run, of either spacecraft. Each channel is a monitor (the template
``benchmarks/monitors/smap.yaml``, run by ``benchmarks.monitored`` through the product's own
jobs): its training array, one step a minute, is the baseline; its test array starts at the
first midnight after it that leaves a gap longer than a window's look-back (so no window
or smoothing crosses from one into the other), and is walked forward a day at a time. The
stored events on the test array are counted as Orion does: TP, FP and FN summed over
channels, then F1, over all channels and over each half (``benchmarks.common.half``). ``--columns``
picks the channel's columns: ``value`` (the telemetry value, column 0, as Orion uses) or
``all`` (the value and the 24 command flags).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from atalaia.config import Monitor
from atalaia.representation import lookback_at_most
from benchmarks.common import (
    DetectorFailure,
    DetectorSpec,
    add_reuse_option,
    argument_parser,
    code_version,
    failed_series,
    failures_section,
    half,
    log,
    markdown_table,
    orion_signals,
    provenance,
    published_orion_rows,
    records,
    reuse_note,
    reused_rows,
    series_metrics,
    setup,
    summarise_series,
    with_halves,
    write_results,
)
from benchmarks.monitored import (
    add_template_option,
    load_template,
    monitor_document,
    row_results,
    run_monitored,
)

LABELS_FILE = "labeled_anomalies.csv"
# Where every channel's series starts (its steps are a minute apart).
SERIES_START = pd.Timestamp("2000-01-01", tz="UTC")
# --columns: which of a channel's 25 columns the detectors see
COLUMNS = {"value": [0], "all": list(range(25))}
SUMMARY_COLUMNS = [
    "detector",
    "half",
    "series",
    "failed",
    "tp",
    "fp",
    "fn",
    "precision",
    "recall",
    "event_f1",
    "event_f1_orion_signals",
    "flagged_share",
    "auc_roc",
    "auc_pr",
    "point_f1",
    "point_f1_pa",
    "fit_seconds",
    "score_seconds",
]


@dataclass(frozen=True)
class Channel:
    """A telemetry channel and its labelled anomalies (inclusive test-row ranges)."""

    name: str
    spacecraft: str
    anomalies: list[tuple[int, int]]


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive ranges sorted, with overlapping ones merged into one."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def load_channels(labels_path: Path) -> list[Channel]:
    """The channels of ``labeled_anomalies.csv``, in file order.

    A channel listed twice (SMAP's P-2) gets the union of its rows' ranges, overlapping
    ranges merged: the same anomaly labelled twice counts once.
    """
    frame = pd.read_csv(labels_path)
    ranges: dict[str, list[tuple[int, int]]] = {}
    spacecraft: dict[str, str] = {}
    for row in frame.itertuples(index=False):
        sequences = [(int(start), int(end)) for start, end in json.loads(row.anomaly_sequences)]
        ranges.setdefault(row.chan_id, []).extend(sequences)
        spacecraft.setdefault(row.chan_id, row.spacecraft)
    return [Channel(name, spacecraft[name], merge_ranges(found)) for name, found in ranges.items()]


def default_cache_dir() -> Path:
    """Where tarballs are unpacked: ``$XDG_CACHE_HOME/atalaia`` (default ``~/.cache/atalaia``)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "atalaia"


def _unpacked(tarball: Path, cache_dir: Path) -> Path:
    """The folder ``tarball`` is unpacked into, keyed by its content; unpack it if needed."""
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()[:12]
    target = cache_dir / f"{tarball.name.removesuffix('.tar.gz')}-{digest}"
    if not target.exists():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        log(f"unpacking {tarball} into {target}")
        with tarfile.open(tarball) as archive:
            archive.extractall(partial, filter="data")
        partial.rename(target)
    return target


def array_folders(data_dir: Path, cache_dir: Path) -> list[Path]:
    """Folders with ``train/`` and ``test/``: in ``data_dir`` and in its unpacked tarballs."""
    roots = [data_dir, *(_unpacked(t, cache_dir) for t in sorted(data_dir.glob("*.tar.gz")))]
    return [
        train.parent
        for root in roots
        for train in sorted(root.rglob("train"))
        if train.is_dir() and (train.parent / "test").is_dir()
    ]


def channel_arrays(folders: list[Path], channel: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The channel's (train, test) arrays from the first folder holding both, else None."""
    for folder in folders:
        train, test = folder / "train" / f"{channel}.npy", folder / "test" / f"{channel}.npy"
        if train.exists() and test.exists():
            return np.load(train, allow_pickle=False), np.load(test, allow_pickle=False)
    return None


def channel_frame(
    train: np.ndarray, test: np.ndarray, lookback_steps: int
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The channel as one series of one-minute steps, and where its test array starts: the
    first midnight after the training array that leaves more than ``lookback_steps`` empty
    steps between them."""
    train_stamps = SERIES_START + pd.to_timedelta(np.arange(len(train)), "min")
    test_start = (train_stamps[-1] + pd.Timedelta(minutes=lookback_steps + 1)).ceil("D")
    test_stamps = test_start + pd.to_timedelta(np.arange(len(test)), "min")
    values = np.vstack([train, test])
    frame = pd.DataFrame(values, columns=[f"x{i}" for i in range(values.shape[1])])
    frame.insert(0, "ts", train_stamps.append(test_stamps))
    return frame, test_start


def run_channel(
    channel: Channel,
    train: np.ndarray,
    test: np.ndarray,
    specs: list[DetectorSpec],
    seed: int,
    template: dict,
) -> list[dict]:
    """One result row per detector for one channel (arrays already cut to the columns)."""
    rows = []
    for spec in specs:
        row = {
            "spacecraft": channel.spacecraft,
            "channel": channel.name,
            "half": half(channel.name),
            "detector": spec.label,
            "code": code_version(),
            "train_rows": len(train),
            "test_rows": len(test),
        }
        document = monitor_document(
            template,
            spec,
            seed,
            name="channel",
            source="series.parquet",
            features=[f"x{i}" for i in range(train.shape[1])],
            frequency="1min",
            # a placeholder baseline: its end is set below, once the look-back is known
            baseline=(SERIES_START, SERIES_START + pd.Timedelta(days=1)),
        )
        monitor = Monitor.model_validate(document)
        gap = lookback_at_most(monitor, len(train)) // monitor.step
        frame, test_start = channel_frame(train, test, gap)
        end = test_start + pd.Timedelta(minutes=len(test))
        document["baseline"] |= {"start": SERIES_START.isoformat(), "end": test_start.isoformat()}
        try:
            monitored = run_monitored(document, frame, end)
        except DetectorFailure as failure:
            rows.append(row | failed_series(channel.anomalies, failure))
            continue
        tested = frame["ts"].iloc[len(train) :].reset_index(drop=True)
        scores, flags, events = row_results(monitored, tested, monitor.step)
        rows.append(
            row
            | {"fits": 1 + monitored.retrains}
            | series_metrics(scores, flags, channel.anomalies, events)
            | {"fit_seconds": monitored.fit_seconds, "score_seconds": monitored.score_seconds}
        )
    return rows


def summary(rows: pd.DataFrame, spacecraft: str, published_dir: Path) -> pd.DataFrame:
    """Per detector and half (``all``, ``tune``, ``confirm``) on one spacecraft, with F1 also
    on the signals Orion evaluated."""
    mine = with_halves(rows[rows["spacecraft"] == spacecraft])
    table = summarise_series(mine, ["detector", "half"])
    signals = orion_signals(published_dir, spacecraft)
    on_orion = mine[mine["channel"].isin(signals)]
    if signals and not on_orion.empty:
        orion_f1 = summarise_series(on_orion, ["detector", "half"]).set_index(["detector", "half"])[
            "event_f1"
        ]
        table["event_f1_orion_signals"] = pd.MultiIndex.from_frame(table[["detector", "half"]]).map(
            orion_f1.to_dict().get
        )
    return table.reindex(columns=SUMMARY_COLUMNS)


def report(
    rows: pd.DataFrame,
    summaries: dict[str, pd.DataFrame],
    published_dir: Path,
    template: str,
    columns: str,
    missing: list[str],
) -> str:
    """The markdown results page."""
    text = [
        "# SMAP/MSL telemetry: event F1 as Orion counts it\n",
        provenance(),
        "- protocol: each channel is a monitor from the template "
        f"`benchmarks/monitors/{template}.yaml`, run through the product's jobs "
        "(`benchmarks.monitored`): the training array `train/<chan>.npy`, a step a minute, is "
        "the baseline; the test array `test/<chan>.npy` starts at the next midnight that "
        "leaves a gap longer than a window's look-back, and is ingested and scored a day at a "
        "time (`atalaia.walk`); the stored events are counted.",
        "- halves: `tune` and `confirm` split the channels by a hash of their name "
        "(`benchmarks.common.half`); defaults are chosen on `tune` only, `all` is every channel.",
        f"- columns: `{columns}` ({len(COLUMNS[columns])} per step); the same settings for "
        "every channel and detector.",
        "- TP/FP/FN are summed over channels, then F1 = 2TP / (2TP + FP + FN); a channel a "
        "detector failed on counts its labelled events as missed. `flagged_share` is the mean "
        "share of test rows flagged: Orion's count rewards one event over a whole test array "
        "as a true positive, so read F1 beside it. AUCs and point F1s are means over "
        "channels; point-adjusted F1 (`point_f1_pa`) is inflated and only shown beside the "
        "unadjusted one.",
    ]
    if missing:
        text.append(f"- listed in the labels but not in the data: {', '.join(missing)}")

    for spacecraft, table in summaries.items():
        n_channels = rows.loc[rows["spacecraft"] == spacecraft, "channel"].nunique()
        n_orion = len(orion_signals(published_dir, spacecraft))
        text += [
            f"\n## {spacecraft}: {n_channels} channels\n",
            f"`event_f1` sums over all {n_channels} channels; `event_f1_orion_signals` over "
            f"the {n_orion} signals Orion 0.7.1 evaluated (published F1s are on those).\n",
            markdown_table(
                records(table)
                + published_orion_rows(published_dir, {"event_f1_orion_signals": spacecraft}),
                SUMMARY_COLUMNS,
            ),
        ]
    text += failures_section(rows, ["spacecraft", "channel", "detector"])
    return "\n".join(text) + "\n"


def main() -> None:
    """Run the benchmark and write ``benchmarks/results/smap.md`` and ``smap.csv``."""
    parser = argument_parser(__doc__.splitlines()[0], "smap", "smap")
    add_template_option(parser, "smap")
    parser.add_argument("--channels", help="comma-separated channel ids (default: all listed)")
    parser.add_argument("--columns", choices=sorted(COLUMNS), default="value")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    add_reuse_option(parser)
    args = parser.parse_args()
    specs = setup(args)
    template = load_template(args.template)
    channels = load_channels(args.data_dir / LABELS_FILE)
    if args.channels:
        wanted = set(args.channels.split(","))
        channels = [channel for channel in channels if channel.name in wanted]
    if args.half:
        channels = [channel for channel in channels if half(channel.name) == args.half]
    folders = array_folders(args.data_dir, args.cache_dir)
    rows, missing = [], []
    for channel in channels:
        arrays = channel_arrays(folders, channel.name)
        if arrays is None:
            missing.append(channel.name)
            continue
        log(f"{channel.spacecraft} {channel.name}")
        train, test = (array[:, COLUMNS[args.columns]] for array in arrays)
        rows += run_channel(channel, train, test, specs, args.seed, template)
    if not rows:
        parser.error(f"no channel of {args.data_dir / LABELS_FILE} found in {args.data_dir}")
    kept = reused_rows(args.reuse, specs)
    frame = pd.concat([pd.DataFrame(rows), kept], ignore_index=True)
    summaries = {
        spacecraft: summary(frame, spacecraft, args.published_dir)
        for spacecraft in frame["spacecraft"].unique()
    }
    text = report(frame, summaries, args.published_dir, args.template, args.columns, missing)
    if args.reuse is not None:
        text += reuse_note(kept, args.reuse) + "\n"
    tables = {"": frame, "summary": pd.concat(summaries, names=["spacecraft"]).reset_index(0)}
    for path in write_results(args.results_dir, args.output, text, tables):
        log(f"wrote {path}")


if __name__ == "__main__":
    main()
