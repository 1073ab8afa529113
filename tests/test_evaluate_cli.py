"""`atalaia evaluate`: a labelled file, and a monitor's stored scores against its labels."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from atalaia import demo_data, jobs, store
from atalaia.cli import app
from atalaia.config import Monitor
from atalaia.evaluation import (
    auc_pr,
    auc_roc,
    detected_events,
    event_counts,
    flags_to_events,
)
from atalaia.settings import Settings
from storage.engine import transaction
from storage.labels import add_label
from storage.monitors import monitor_id
from storage.scores import read_scores

runner = CliRunner()
WIDE = {"COLUMNS": "200"}

# Two series. Entity a: labelled rows 2-3, flags on 1-2 and 5 -> 1 TP, 1 FP.
# Entity b: labelled row 1, flags on 0-1 -> 1 TP. Events: TP 2, FP 1, FN 0, F1 = 4/5.
# Points: labelled {a2, a3, b1}, flagged {a1, a2, a5, b0, b1}: TP 2, FP 3, FN 1, F1 = 4/8;
# adjusted, a3 counts as found: TP 3, FP 3, FN 0, F1 = 6/9.
# Scores: the positives 0.9, 0.8, 0.45 beat 7, 7 and 6 of the 7 negatives: AUC-ROC 20/21;
# ranked P, P, N, P: average precision (1 + 1 + 3/4) / 3 = 0.917.
LABELLED = pd.DataFrame(
    {
        "host": ["a"] * 6 + ["b"] * 4,
        "step": [0, 1, 2, 3, 4, 5, 0, 1, 2, 3],
        "anomaly_score": [0.1, 0.5, 0.9, 0.8, 0.2, 0.3, 0.4, 0.45, 0.1, 0.2],
        "truth": [0, 0, 1, 1, 0, 0, 0, 1, 0, 0],
        "alert": [0, 1, 1, 0, 0, 1, 1, 1, 0, 0],
    }
)


def metrics(output: str) -> dict[str, str]:
    """The table's rows as ``{metric: value}``."""
    found = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|]", line) if cell.strip()]
        if len(cells) == 2:
            found[cells[0]] = cells[1]
    return found


def evaluate(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["evaluate", *args], env=WIDE)
    return result.exit_code, result.output


FILE_OPTIONS = ["--score", "anomaly_score", "--label", "truth", "--flag", "alert"]


def test_a_labelled_file_gives_every_metric(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    LABELLED.to_csv(path, index=False)
    code, output = evaluate(str(path), *FILE_OPTIONS, "--entity", "host")
    assert code == 0, output
    table = metrics(output)
    assert table["rows"] == "10"
    assert table["labelled anomalous rows"] == "3"
    assert table["AUC-ROC"] == f"{20 / 21:.3f}"
    assert table["AUC-PR"] == "0.917"
    assert table["events TP / FP / FN"] == "2 / 1 / 0"
    assert table["event F1"] == "0.800"
    assert table["point F1"] == "0.500"
    assert table["point-adjusted F1 (inflated)"] == "0.667"


def test_events_never_cross_entities(tmp_path: Path) -> None:
    # Read as one series, a5 and b0-b1 merge into one event that overlaps b1's label.
    path = tmp_path / "history.csv"
    LABELLED.to_csv(path, index=False)
    code, output = evaluate(str(path), *FILE_OPTIONS)
    assert code == 0, output
    assert metrics(output)["events TP / FP / FN"] == "2 / 0 / 0"


@pytest.mark.parametrize(
    ("options", "counts"),
    [
        ([], "0 / 2 / 1"),  # events (4, 4) and (8, 8); the label on row 2 is missed
        (["--lead", "2"], "1 / 1 / 0"),  # (2, 4) finds it; (6, 8) is 1 row apart, not merged
        (["--max-gap", "3"], "0 / 1 / 1"),  # (4, 8)
        (["--max-gap", "3", "--lead", "2"], "1 / 0 / 0"),  # (2, 8)
    ],
)
def test_a_files_flags_form_events_with_a_gap_and_a_lead(
    tmp_path: Path, options: list[str], counts: str
) -> None:
    rows = np.arange(10)
    path = tmp_path / "history.csv"
    pd.DataFrame(
        {"score": rows % 4 == 0, "label": rows == 2, "flag": (rows == 4) | (rows == 8)}
    ).astype(int).to_csv(path, index=False)
    code, output = evaluate(str(path), "--flag", "flag", *options)
    assert code == 0, output
    assert metrics(output)["events TP / FP / FN"] == counts


def test_parquet_rows_are_put_in_time_order(tmp_path: Path) -> None:
    path = tmp_path / "history.parquet"
    LABELLED.sample(frac=1.0, random_state=3).to_parquet(path)
    code, output = evaluate(str(path), *FILE_OPTIONS, "--entity", "host", "--time", "step")
    assert code == 0, output
    assert metrics(output)["event F1"] == "0.800"


def test_without_flags_only_the_threshold_free_metrics(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    LABELLED.to_csv(path, index=False)
    code, output = evaluate(str(path), "--score", "anomaly_score", "--label", "truth")
    assert code == 0, output
    table = metrics(output)
    assert table["AUC-PR"] == "0.917"
    assert "event F1" not in table


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    LABELLED.to_csv(path, index=False)
    code, output = evaluate(str(path), "--score", "nosuch", "--label", "truth")
    assert code == 1 and output.startswith("error:") and "nosuch" in output
    assert output.strip().count("\n") == 0
    code, output = evaluate(str(path), "--score", "anomaly_score", "--label", "step")
    assert code == 1 and "0/1" in output
    code, output = evaluate(str(tmp_path / "none.csv"))
    assert code == 1 and "no such file" in output
    code, output = evaluate()
    assert code == 1 and "give either a labelled file or --monitor" in output


def day(n: int) -> tuple[datetime, datetime]:
    start = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=n)
    return start, start + timedelta(days=1)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_monitors_stored_scores_against_its_labels(servers: Monitor, settings: Settings) -> None:
    for n in range(3):
        jobs.ingest(servers, *day(n), settings=settings)
    jobs.train(servers, settings=settings)
    scored_days = (8, 10)  # the days of the first two injected incidents
    for n in scored_days:
        jobs.ingest(servers, *day(n), settings=settings)
        jobs.score(servers, *day(n), settings=settings)
    incidents = demo_data.INCIDENTS[:2]
    with transaction(store.engine(settings.store_url)) as session:
        identifier = monitor_id(session, "servers")
        for incident in incidents:
            add_label(session, identifier, incident.start, incident.end, entity=incident.host)
        # Another kind of label marks no anomaly.
        add_label(session, identifier, *day(8), kind="maintenance")
        stored = read_scores(session, identifier, day(8)[0], day(10)[1])

    truth = np.zeros(len(stored), dtype=bool)
    for incident in incidents:
        truth |= (
            (stored["entity"] == incident.host)
            & (stored["ts"] >= incident.start)
            & (stored["ts"] <= incident.end)
        ).to_numpy()

    def expected_events(max_gap: int, lead: int = 0) -> str:
        counts = sum(
            (
                event_counts(
                    flags_to_events(truth[rows.index]),
                    detected_events(rows["is_anomaly"].to_numpy(), max_gap, lead),
                )
                for _, rows in stored.groupby("entity")
            ),
            start=event_counts([], []),
        )
        return f"{counts.tp} / {counts.fp} / {counts.fn}"

    code, output = evaluate(
        "--monitor", "servers", "--since", "2026-01-13", "--until", "2026-01-16"
    )
    assert code == 0, output
    table = metrics(output)
    assert "version 1" in output
    assert table["rows"] == str(len(stored)) == str(6 * 288 * len(scored_days))
    assert table["labelled anomalous rows"] == str(truth.sum()) == "80"  # 7 + 73 steps
    assert table["AUC-ROC"] == f"{auc_roc(truth, stored['raw_score']):.3f}"
    assert table["AUC-PR"] == f"{auc_pr(truth, stored['raw_score']):.3f}"
    assert table["flagged rows"] == str(int(stored["is_anomaly"].sum()))
    # events as the monitor forms them: max_gap 1, no smoothing
    assert table["events TP / FP / FN"] == expected_events(max_gap=1)
    # the options override the monitor's: a lead of a day merges most events of a host
    code, output = evaluate("--monitor", "servers", "--since", "2026-01-13", "--lead", "288")
    assert code == 0, output
    assert metrics(output)["events TP / FP / FN"] == expected_events(max_gap=1, lead=288)

    code, output = evaluate("--monitor", "servers", "--version", "2")
    assert code == 1 and "no model version 2" in output
    code, output = evaluate("--monitor", "servers", "--since", "2026-02-01")
    assert code == 1 and "no stored scores" in output
