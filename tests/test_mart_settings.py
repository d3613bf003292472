"""A mart's settings as written in its header comment and in the project file: parsed, merged,
refused in one line when they clash or do not read; the header's prose stays its description."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchorflow.config.mart_settings import MartSettings, header_settings, merged_settings

pytestmark = pytest.mark.unit


def sql_file(tmp_path: Path, header: str) -> Path:
    path = tmp_path / "daily.sql"
    path.write_text(header + "SELECT 1 AS day\n")
    return path


def test_the_header_holds_settings_and_prose(tmp_path: Path) -> None:
    path = sql_file(
        tmp_path,
        "-- Events per day.\n-- materialized: incremental\n-- time_column: day\n"
        "-- grain: week\n-- columns: day and platform, as the app sends them\n"
        "-- tests: [{unique: [day]}, {not_null: {columns: [day], severity: warn}}]\n",
    )
    settings, prose = header_settings(path)
    assert set(settings) == {"materialized", "time_column", "grain", "tests"}
    assert prose == ["Events per day.", "columns: day and platform, as the app sends them"]
    merged = merged_settings(path, None)
    assert (merged.materialization, merged.time_column, merged.period) == (
        "incremental", "day", "week",
    )  # fmt: skip
    assert [(t.kind, t.columns, t.severity) for t in merged.all_tests()] == [
        ("unique", ["day"], "error"), ("not_null", ["day"], "warn"),
    ]  # fmt: skip


def test_the_project_file_adds_tests_and_may_not_set_a_key_twice(tmp_path: Path) -> None:
    path = sql_file(tmp_path, "-- materialized: view\n-- tests: [{unique: [day]}]\n")
    declared = MartSettings.model_validate(
        {"columns": {"day": {"tests": ["not_null", {"accepted_values": [1, 2]}]}}}
    )
    merged = merged_settings(path, declared)
    assert merged.materialization == "view"
    assert [t.kind for t in merged.all_tests()] == ["unique", "not_null", "accepted_values"]
    clash = MartSettings.model_validate({"materialized": "table"})
    with pytest.raises(ValueError, match="materialized set both in its header and in the project"):
        merged_settings(path, clash)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("-- materialized: incremental\n", "needs time_column"),
        ("-- materialized: snapshot\n", "materialized"),
        ("-- tests: [{unique: }\n", "its header's tests: not a YAML value"),
        ("-- tests: [nullable]\n", "unknown test 'nullable'"),
        ("-- grain: day\n-- grain: week\n", "sets grain twice"),
    ],
)
def test_a_header_that_does_not_read_is_one_problem(
    tmp_path: Path, header: str, problem: str
) -> None:
    with pytest.raises(ValueError) as refused:
        merged_settings(sql_file(tmp_path, header), None)
    assert problem in str(refused.value)
    assert "\n" not in str(refused.value)
