"""The stack's alert rules: promtool checks them and runs their unit tests.

``docker/prometheus/alerts.yml`` holds the rules, ``alerts_test.yml`` their ``promtool test
rules`` cases. The promtool tests are skipped where promtool is absent (Debian's
``prometheus`` package has it; ``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from atalaia.metrics import LABELS, METRICS
from tests.conftest import REPO

PROMETHEUS_DIR = REPO / "docker" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (apt-get install prometheus; .ci/run does)",
)
METRIC_NAME = re.compile(r"\batalaia_[a-z0-9_]+")


def promtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run promtool in docker/prometheus (where the files name each other relatively)."""
    return subprocess.run(
        [PROMTOOL, *arguments],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rules() -> list[dict]:
    """Every rule of alerts.yml, recording and alerting."""
    document = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def unit_tests() -> list[dict]:
    return yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


@needs_promtool
def test_promtool_accepts_the_prometheus_config_and_finds_its_rules() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout


@needs_promtool
def test_the_rules_pass_their_promtool_unit_tests() -> None:
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_rule_has_a_firing_and_a_quiet_case() -> None:
    cases = [case for test in unit_tests() for case in test["alert_rule_test"]]
    for rule in alerts():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case.get("exp_alerts") for case in mine), f"{rule['alert']} never fires"
        assert any(not case.get("exp_alerts") for case in mine), f"{rule['alert']} always fires"
    assert {case["alertname"] for case in cases} <= {rule["alert"] for rule in alerts()}


def test_the_rules_and_their_tests_use_only_exported_metrics_and_labels() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for rule in rules():
        name = rule.get("alert") or rule["record"]
        metrics = set(METRIC_NAME.findall(rule["expr"]))
        assert metrics and metrics <= set(METRICS), f"{name}: {metrics - set(METRICS)}"
        for grouped in re.findall(r"\b(?:on|by) \(([^)]*)\)", rule["expr"]):
            assert {label.strip() for label in grouped.split(",")} <= set(LABELS), name
    for rule in alerts():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description"} <= set(rule["annotations"])
    # Every recorded series is used by an alert.
    for record in recorded:
        assert any(record in rule["expr"] for rule in alerts()), f"{record} is unused"
    for test in unit_tests():
        for item in test["input_series"]:
            name = item["series"].split("{", 1)[0]
            assert name in METRICS, f"{test['name']}: {name} is not a metric Atalaia exports"
