"""Tests on marts as in dbt (not_null, unique, accepted_values, relationships, row_count), on
every engine: they pass on good data and fail on crafted bad rows, a failure of severity error
holds back the marts that read the mart, warn does not, and the results are in the journal,
the run summary, the alerts and `anchorflow marts test`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project, load_project
from anchorflow.errors import ConfigError
from anchorflow.run import Pipeline, check_project
from anchorflow.warehouse import connect
from tests.builders import ENV, project_data, write_project
from tests.conftest import table_rows
from tests.test_cli import cli

pytestmark = pytest.mark.integration

EVENTS = {
    "source": "src",
    "unique_key": "event_id",
    "columns": {"event_id": "VARCHAR", "t": "TIMESTAMP", "user_id": "VARCHAR",
                "country": "VARCHAR", "amount": "DOUBLE"},
}  # fmt: skip
USERS = {"source": "people", "unique_key": "user_id",
         "columns": {"user_id": "VARCHAR", "plan": "VARCHAR"}}  # fmt: skip
MARTS = {
    "daily": "-- events per day and country\n-- tests: [{unique: [day, country]}]\n"
    "SELECT CAST(t AS DATE) AS day, country, count(*) AS events FROM staging.events GROUP BY ALL",
    "spenders": "SELECT user_id, sum(amount) AS amount FROM staging.events GROUP BY ALL",
    "top": "SELECT * FROM marts.spenders WHERE amount > 5",
}
SETTINGS: dict[str, Any] = {
    "daily": {
        "tests": [
            {
                "row_count": {
                    "equals": "staging.events",
                    "expression": "sum(events)",
                    "where": "country IS NOT NULL",
                }
            },
            {"row_count": {"equals": "staging.events", "tolerance": "80%", "severity": "warn"}},
            {"unique": {"columns": ["day"], "severity": "warn"}},  # one country a day, at first
        ],
        "columns": {
            "country": {
                "description": "where the events came from",
                "tests": [
                    "not_null",
                    {"accepted_values": {"values": ["DE", "FR"], "severity": "warn"}},
                ],
            },
        },
    },
    "spenders": {
        "columns": {
            "user_id": {
                "tests": ["unique", {"relationships": {"to": "staging.users", "field": "user_id"}}]
            },
        },
    },
}


def make(root: Path, settings: dict[str, Any] = SETTINGS) -> Project:
    sources = {
        "src": {"kind": "files", "path": "landing/*.jsonl"},
        "people": {"kind": "files", "path": "people/*.jsonl"},
    }
    data = project_data(
        sources, {"events": EVENTS, "users": USERS}, marts={"models": settings},
        alerts=[{"kind": "log"}],
    )  # fmt: skip
    return load_project(write_project(root, data, MARTS), env={**ENV, **os.environ})


def deliver(project: Project, folder: str, name: str, rows: list[dict[str, Any]]) -> None:
    (project.root / folder).mkdir(exist_ok=True)
    (project.root / folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def event(n: int, user: str, country: str | None, day: int = 1) -> dict[str, Any]:
    return {"event_id": f"e{n}", "t": f"2024-03-{day:02d}T10:00:00", "user_id": user,
            "country": country, "amount": float(n)}  # fmt: skip


def good(project: Project) -> None:
    deliver(project, "people", "a.jsonl", [{"user_id": f"u{i}", "plan": "free"} for i in range(3)])
    rows = [event(n, f"u{n % 3}", "DE" if n % 2 else "FR", 1 + n % 2) for n in range(8)]
    deliver(project, "landing", "a.jsonl", rows)


def test_tests_pass_then_fail_on_bad_rows_with_their_severity(engine: str, tmp_path: Path) -> None:
    project = make(tmp_path / "p")
    good(project)
    with Pipeline(project) as pipeline:
        summary = pipeline.run()
    tests = {(m.name, t.test): t for m in summary.marts for t in m.tests}
    assert len(tests) == 8 and all(t.passed for t in tests.values())
    assert summary.failed_mart_tests == 0
    assert table_rows(project, "SELECT count(*) FROM meta.mart_tests WHERE status = 'pass'") == [
        (8,)
    ]
    # The column's description is the column's comment.
    with connect(project, read_only=True) as reader:
        comments = reader.query(reader.sql.column_comments(), ["marts"])
    assert ("daily", "country", "where the events came from") in comments

    # A country outside the list (warn), a NULL country (error), a user nobody knows (error).
    deliver(project, "landing", "b.jsonl",
            [event(20, "u1", "XX"), event(21, "u2", None), event(22, "u9", "DE")])  # fmt: skip
    with Pipeline(project) as pipeline:
        summary = pipeline.run()
    by_mart = {m.name: m for m in summary.marts}
    failed = {(m.name, t.test): (t.severity, t.failures) for m in summary.marts
              for t in m.failed_tests}  # fmt: skip
    assert failed == {
        ("daily", "not_null(country)"): ("error", 1),
        ("daily", "accepted_values(country)"): ("warn", 1),
        ("daily", "unique(day)"): ("warn", 4),  # day 1: FR, XX, NULL and DE
        ("daily", "row_count(sum(events) = staging.events)"): ("error", 1),
        ("spenders", "relationships(user_id → staging.users.user_id)"): ("error", 1),
    }
    assert summary.failed_mart_tests == 3
    # spenders failed an error test: top, which reads it, waits; daily's marts are built.
    assert by_mart["top"].kind == "skipped" and by_mart["spenders"].kind == "full"
    with Pipeline(project) as pipeline:
        assert "top" in pipeline.marts_step.pending(pipeline.warehouse)
    # The query shown finds the failing rows.
    (not_null,) = [t for t in by_mart["daily"].tests if t.test == "not_null(country)"]
    assert len(table_rows(project, not_null.query)) == 1
    (reconciled,) = [t for t in by_mart["daily"].tests if t.kind == "row_count" and not t.passed]
    assert reconciled.detail == "marts.daily: 10, staging.events: 11"
    recorded = table_rows(
        project,
        "SELECT mart, test, severity, failures FROM meta.mart_tests WHERE status = 'fail' "
        "ORDER BY 1, 2",
    )
    assert [(m, t) for m, t, *_ in recorded] == sorted(failed)
    alerts = table_rows(project, "SELECT subject FROM meta.alerts WHERE kind = 'mart_tests_failed'")
    assert alerts == [("marts: 5 test(s) failed in marts.daily, marts.spenders (3 error, 2 warn)",)]

    # Nothing new: nothing is built or tested, and top still waits for spenders.
    builds = table_rows(project, "SELECT count(*) FROM meta.mart_builds")
    with Pipeline(project) as pipeline:
        assert [(m.name, m.kind) for m in pipeline.run().marts] == [("top", "skipped")]
    assert table_rows(project, "SELECT count(*) FROM meta.mart_builds") == builds
    # The user arrives: spenders' tests run again (nothing is rebuilt), pass, and top is built.
    deliver(project, "people", "b.jsonl", [{"user_id": "u9", "plan": "pro"}])
    with Pipeline(project) as pipeline:
        done = {m.name: m for m in pipeline.run().marts}
    assert (done["spenders"].kind, done["spenders"].failed_tests) == ("tests", [])
    assert done["top"].kind == "full" and "daily" not in done


def test_marts_test_prints_each_test_and_fails_on_errors(engine: str, tmp_path: Path) -> None:
    project = make(tmp_path / "p")
    good(project)
    with Pipeline(project) as pipeline:
        pipeline.run()
    built = cli("marts", "build", "--project", str(project.root))
    assert (built.returncode, built.stdout) == (0, "marts: nothing due\n"), built.stderr
    built = cli("marts", "build", "--full", "--project", str(project.root))
    assert "mart marts.top: " in built.stdout and "mart marts.daily: 2 rows, 6 test(s) passed" in (
        built.stdout
    )
    done = cli("marts", "test", "daily", "--project", str(project.root))
    assert done.returncode == 0, done.stderr
    assert "pass unique(day, country)" in done.stdout
    assert "pass accepted_values(country)" in done.stdout
    deliver(project, "landing", "b.jsonl", [event(21, "u2", None)])
    loaded = cli("run", "--project", str(project.root))  # loads, then fails on the test
    assert loaded.returncode == 1, loaded.stderr
    assert "FAIL not_null(country): 1 failing row(s)" in loaded.stdout
    assert table_rows(project, "SELECT count(*) FROM staging.events") == [(9,)]
    done = cli("marts", "test", "--project", str(project.root))
    assert done.returncode == 1, done.stdout
    line = next(x for x in done.stdout.splitlines() if "FAIL not_null(country)" in x)
    assert "1 failing row(s); find them: SELECT" in line
    assert '"country" IS NULL' in line
    unknown = cli("marts", "test", "nope", "--project", str(project.root))
    assert unknown.returncode == 1 and "unknown mart 'nope'" in unknown.stderr


def test_validate_names_an_unknown_column_of_a_test_in_one_line(
    engine: str, tmp_path: Path
) -> None:
    settings = {
        "daily": {"columns": {"contry": {"tests": ["not_null"]}}},
        "top": {"tests": [{"row_count": {"equals": "staging.users", "where": "amont > 5"}}]},
        "spenders": {"materialized": "incremental", "time_column": "user_id",
                     "tests": [{"relationships": {"column": "user_id", "to": "staging.users",
                                                   "field": "id"}}]},
    }  # fmt: skip
    project = make(tmp_path / "p", settings)
    with pytest.raises(ConfigError) as refused:
        check_project(project)
    *named, engine_says = refused.value.problems
    assert named == [
        "anchorflow.yml: marts: models/daily.sql: columns.contry: it has no column 'contry' "
        "(day, country, events)",
        "anchorflow.yml: marts: models/spenders.sql: time_column: user_id is VARCHAR; "
        "expected a DATE or TIMESTAMP",
        "anchorflow.yml: marts: models/spenders.sql: test relationships(user_id → "
        "staging.users.id): staging.users has no column 'id'",
    ]
    # A test's SQL that the engine cannot bind: its words, one line.
    assert engine_says.startswith("anchorflow.yml: marts: models/top.sql: test row_count(= ")
    assert "amont" in engine_says and "\n" not in engine_says


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"daily": {"tests": ["not_nul"]}}, "unknown test 'not_nul'"),
        ({"daily": {"materialized": "incremental"}}, "needs time_column"),
        ({"nope": {}}, "models.nope: there is no models/nope.sql"),
        (
            {
                "spenders": {
                    "tests": [
                        {
                            "relationships": {
                                "column": "user_id",
                                "to": "staging.x",
                                "field": "user_id",
                            }
                        }
                    ]
                }
            },
            "compares with staging.x, which the project does not make",
        ),
        (
            {"daily": {"tests": [{"row_count": {"equals": "staging.events", "where": "a >"}}]}},
            "not a condition in SQL",
        ),
    ],
)
def test_settings_that_do_not_read_are_refused_when_the_project_is_read(
    tmp_path: Path, settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        make(tmp_path / "p", settings)
    assert len(refused.value.problems) == 1
    assert problem in refused.value.problems[0]
    assert refused.value.problems[0].startswith("anchorflow.yml: ")
