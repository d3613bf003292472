"""`anchorflow fraud run` and `fraud report` as a user runs them, and a run killed inside and
between rule transactions: its re-run leaves fraud.* exactly as a clean run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anchorflow.fraud.results import fraud_checksum
from anchorflow.run import Pipeline
from tests.builders import open_warehouse
from tests.fraud.test_step import fill, fraud_project
from tests.test_cli import cli

pytestmark = pytest.mark.e2e


def prepared(root: Path, **fraud: object) -> Path:
    """A project whose staging tables hold the hand-built data set."""
    project = fraud_project(root, rules={}, **fraud)
    with Pipeline(project) as pipeline:
        fill(pipeline.warehouse)
    return root


def checksum(root: Path) -> str:
    project = fraud_project(root, rules={})
    with open_warehouse(project) as warehouse:
        return fraud_checksum(warehouse)


def test_fraud_run_prints_each_rule_and_what_it_skipped(tmp_path: Path) -> None:
    root = prepared(tmp_path / "p")
    done = cli("fraud", "run", "--project", str(root))
    assert done.returncode == 0, done.stderr
    assert "rule click_injection 2024-03-01..2024-03-03: 2 found, 2 new" in done.stdout
    assert "rule impossible_travel skipped: input events has no" in done.stdout
    report = cli("fraud", "report", "--format", "json", "--project", str(root))
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)
    assert sum(r["fraud_registrations"] for r in rows) == 2
    assert {"country", "campaign", "sub_campaign", "fraud_rate", "click_injection"} <= set(rows[0])
    csv = cli("fraud", "report", "--format", "csv", "--from", "2024-03-02", "--project", str(root))
    assert csv.stdout.splitlines()[0].startswith("country,campaign,sub_campaign,clicks")
    # The header, then summer/s9 twice: its click was made from DE, its user registered in FR.
    assert csv.stdout.splitlines()[1:] == [
        "FR,summer,s9,0,0,1,1,1,1,1.0,1", "DE,summer,s9,1,1,0,0,0,0,,0"
    ]  # fmt: skip
    listed = cli("fraud", "rules", "--project", str(root))
    assert listed.returncode == 0, listed.stderr
    lines = {line.split("│")[1].strip(): line for line in listed.stdout.splitlines()
             if line.count("│") > 3 and line.split("│")[1].strip() not in ("", "rule")}  # fmt: skip
    assert len(lines) == 13 and "│ runs " in lines["click_injection"]
    assert "skipped: input events has no" in lines["impossible_travel"]
    bad = cli("fraud", "report", "--from", "March", "--project", str(root))
    assert bad.returncode == 1 and "--from: expected a day" in bad.stderr


@pytest.mark.parametrize("point", ["fraud_rule_before_commit", "fraud_rule_after_commit"])
def test_a_killed_fraud_run_reruns_to_the_clean_result(tmp_path: Path, point: str) -> None:
    clean = prepared(tmp_path / "clean")
    assert cli("fraud", "run", "--project", str(clean)).returncode == 0
    crashed = prepared(tmp_path / "crashed")
    killed = cli("fraud", "run", "--project", str(crashed), env={"ANCHORFLOW_CRASH_AT": point})
    assert killed.returncode == 86, killed.stderr
    again = cli("fraud", "run", "--project", str(crashed))
    assert again.returncode == 0, again.stderr
    assert checksum(crashed) == checksum(clean)
