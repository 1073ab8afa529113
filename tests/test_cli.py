"""The command line: help everywhere, the jobs, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from atalaia.cli import app
from atalaia.settings import Settings

runner = CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["db", "upgrade"],
        ["ingest"],
        ["train"],
        ["score"],
        ["retrain"],
        ["walk"],
        ["events"],
        ["report"],
        ["evaluate"],
        ["demo"],
        ["models", "list"],
        ["models", "show"],
        ["models", "promote"],
        ["models", "rollback"],
        ["labels", "add"],
        ["labels", "list"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_jobs_from_the_command_line(servers, settings: Settings) -> None:
    ingest = runner.invoke(
        app, ["ingest", "servers", "--start", "2026-01-05", "--end", "2026-01-09", "--every", "1D"]
    )
    assert ingest.exit_code == 0, ingest.output
    assert ingest.output.count("1728 rows landed, 0 quarantined") == 4
    train = runner.invoke(app, ["train", "servers"])
    assert train.exit_code == 0, train.output
    assert "version 1 (gmm, champion)" in train.output
    score = runner.invoke(app, ["score", "servers", "--start", "2026-01-08", "--end", "2026-01-09"])
    assert score.exit_code == 0, score.output
    assert "1728 rows scored by version 1" in score.output
    events = runner.invoke(app, ["events", "servers"], env={"COLUMNS": "200"})
    assert events.exit_code == 0, events.output
    assert "servers: events" in events.output and "version" in events.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_json_output_for_scripts(servers, settings: Settings) -> None:
    def json_of(*arguments: str) -> Any:
        result = runner.invoke(app, [*arguments, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    landed = json_of(
        "ingest", "servers", "--start", "2026-01-05", "--end", "2026-01-08", "--every", "1D"
    )
    assert [batch["rows"] for batch in landed] == [1728] * 3
    json_of("ingest", "servers", "--start", "2026-01-13", "--end", "2026-01-14")
    assert landed[0]["start"] == "2026-01-05T00:00:00+00:00"
    trained = json_of("train", "servers")
    assert (trained["version"], trained["status"], trained["detector"]) == (1, "champion", "gmm")
    (scored,) = json_of("score", "servers", "--start", "2026-01-13", "--end", "2026-01-14")
    assert scored["model_version"] == 1 and scored["rows"] == 1728 and scored["anomalies"] > 0
    events = json_of("events", "servers")
    assert {event["entity"] for event in events} >= {"host-3"}
    assert all(event["version"] == 1 and event["top_features"] for event in events)
    assert all(0 <= item["share"] <= 1 for event in events for item in event["top_features"])
    (model,) = json_of("models", "list", "servers")
    assert (model["version"], model["status"]) == (1, "champion")
    assert model["baseline_start"] == "2026-01-05T00:00:00+00:00"
    add = runner.invoke(
        app,
        ["labels", "add", "servers", "--start", "2026-01-13T14:00", "--end", "2026-01-13T15:00"],
    )
    assert add.exit_code == 0, add.output
    (label,) = json_of("labels", "list", "servers")
    assert (label["entity"], label["kind"]) == (None, "incident")
    assert label["start_ts"] == "2026-01-13T14:00:00+00:00"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_errors_are_one_line_with_a_non_zero_exit(servers, settings: Settings) -> None:
    missing = runner.invoke(
        app, ["score", "servers", "--start", "2026-01-05", "--end", "2026-01-06"]
    )
    assert missing.exit_code == 1
    assert missing.output.strip().count("\n") == 0
    assert missing.output.startswith("error: monitor servers: no batch for")
    unknown = runner.invoke(app, ["train", "nosuch"])
    assert unknown.exit_code == 1 and "no monitor named 'nosuch'" in unknown.output
    backwards = runner.invoke(
        app, ["ingest", "servers", "--start", "2026-01-06", "--end", "2026-01-05"]
    )
    assert backwards.exit_code == 1 and "is not before its end" in backwards.output


def test_an_unreachable_store_is_one_line_without_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATALAIA_STORE_URL", "postgresql+psycopg://u:topsecret@127.0.0.1:1/x")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot reach store postgresql+psycopg://u:***@")
    assert "topsecret" not in result.output


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_labels_are_recorded_and_listed(servers, settings: Settings) -> None:
    added = runner.invoke(
        app,
        [
            "labels",
            "add",
            "servers",
            "--start",
            "2026-01-06T10:00",
            "--end",
            "2026-01-06T11:00",
            "--entity",
            "host-2",
            "--note",
            "disk full",
        ],
    )
    assert added.exit_code == 0, added.output
    assert "label 1 recorded" in added.output
    listed = runner.invoke(app, ["labels", "list", "servers"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "host-2" in listed.output and "disk full" in listed.output
    backwards = runner.invoke(
        app,
        ["labels", "add", "servers", "--start", "2026-01-06T11:00", "--end", "2026-01-06T10:00"],
    )
    assert backwards.exit_code == 1 and "is after its end" in backwards.output
