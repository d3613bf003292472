"""The `fraud:` section is checked when the project is read (names, columns, IP ranges) and,
by `validate`, against the catalogue and the engine (rule settings, parameters, binding)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project, load_project
from anchorflow.errors import ConfigError
from anchorflow.fraud.step import FraudStep
from anchorflow.run import check_project
from tests.builders import build_project
from tests.fraud.test_step import fraud_project


def problem(tmp_path: Path, **fraud: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        build_project(tmp_path, fraud=fraud)
    return str(raised.value)


QUERY = {"sql": "(SELECT 1)"}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("fraud", "says"),
    [
        ({"inputs": {"signups": {"model": "x"}}}, "no input 'signups': the rules read clicks"),
        ({"inputs": {"clicks": {"model": "nope"}}}, "fraud.inputs.clicks.model: unknown staging"),
        ({"inputs": {"clicks": {"table": "raw.x"}}}, "expected <schema>.<table> in staging"),
        ({"inputs": {"clicks": {"model": "a", "table": "staging.a"}}}, "model: (a staging model)"),
        (
            {"inputs": {"clicks": {"table": "staging.c", "columns": {"colour": "x"}}}},
            "input clicks has no column 'colour'",
        ),
        (
            {"inputs": {"events": {"table": "staging.e", "columns": {"is_server": QUERY}}}},
            "not a query",
        ),
        ({"whitelist": {"ips": ["10.0.0.300/8"]}}, "expected an IPv4 address or range"),
        ({"whitelist": {"ips": ["::1"]}}, "only IPv4 ranges"),
        ({"user_entity": "Customer"}, "fraud.user_entity: the anchor model has no entity"),
    ],
)
def test_the_section_is_checked_when_read(tmp_path: Path, fraud: Any, says: str) -> None:
    assert says in problem(tmp_path, **fraud)


@pytest.mark.integration
def test_validate_checks_rule_settings_and_parameters(tmp_path: Path) -> None:
    unknown = fraud_project(tmp_path / "a", rules={"no_such_rule": {"shadow": True}})
    with pytest.raises(ConfigError) as raised:
        check_project(unknown)
    assert "fraud.rules.no_such_rule: no such rule" in str(raised.value)
    bad = fraud_project(
        tmp_path / "b", rules={"click_injection": {"params": {"max_seconds": "soon"}}}
    )
    with pytest.raises(ConfigError) as raised:
        check_project(bad)
    assert "fraud.rules.click_injection" in str(raised.value)
    assert "max_seconds" in str(raised.value)


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fraud" / "anchorflow.yml"


def example(root: Path, text: str | None = None) -> Project:
    """The fraud example project in `root`, its file's text changed by `text` (old → new)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "anchorflow.yml").write_text(EXAMPLE.read_text() if text is None else text)
    return load_project(root / "anchorflow.yml")


@pytest.mark.integration
def test_validate_binds_each_rule_over_the_inputs_as_mapped(tmp_path: Path) -> None:
    check_project(example(tmp_path / "ok"))  # the example binds
    typo = EXAMPLE.read_text().replace("channel = 'server'", "chanel = 'server'")
    with pytest.raises(ConfigError) as raised:
        check_project(example(tmp_path / "typo", typo))
    lines = str(raised.value).splitlines()
    assert any(line.startswith("fraud rule api_only") and "chanel" in line for line in lines)


@pytest.mark.unit
def test_a_project_rule_reading_a_column_the_input_lacks_is_refused(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir(parents=True)
    (rules / "night_owls.sql").write_text(
        "-- slug: night_owls\n-- description: registrations at night\n-- version: 1\n"
        "-- severity: low\n-- flags: [user]\n-- lookback: 0s\n"
        "-- inputs: {registrations: [user_id, time]}\n-- params: {}\n"
        "SELECT r.user_id, r.time AS flagged_at, r.no_such_column\n"
        "FROM registrations AS r WHERE r.time >= :window_start AND r.time < :window_end\n"
    )
    project = example(tmp_path)
    with pytest.raises(ConfigError) as raised:
        FraudStep(project).rules()
    assert "night_owls.sql" in str(raised.value) and "no_such_column" in str(raised.value)
