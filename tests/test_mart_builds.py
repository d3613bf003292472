"""Marts built only when due, as views, tables or incremental tables, on every engine: the
events arrive as files (one load each), and the journal (`meta.mart_builds`) says what each run
built and why."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project, load_project
from anchorflow.run import Pipeline
from anchorflow.warehouse import connect
from tests.builders import ENV, build_project, project_data, write_project
from tests.conftest import table_rows

pytestmark = pytest.mark.integration

EVENTS = {
    "source": "src",
    "unique_key": "event_id",
    "columns": {
        "event_id": "VARCHAR",
        "t": "TIMESTAMP",
        "user_id": "VARCHAR",
        "country": "VARCHAR",
        "amount": "DOUBLE",
    },
}
DAILY = (
    "SELECT CAST(t AS DATE) AS day, country, count(*) AS events, sum(amount) AS amount,\n"
    "  count(DISTINCT user_id) AS users\nFROM staging.events GROUP BY ALL"
)
MARTS = {
    "daily": "-- events per day and country\n-- materialized: incremental\n"
    "-- time_column: day\n" + DAILY,
    "daily_table": DAILY,
    "by_country": "-- events per country\n-- materialized: view\n"
    "SELECT country, count(*) AS events FROM staging.events GROUP BY ALL",
    "totals": "SELECT sum(events) AS events, count(*) AS days FROM marts.daily",
}


def event(n: int, day: int, country: str = "DE", user: str | None = None) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "t": f"2024-03-{day:02d}T{n % 24:02d}:00:00",
        "user_id": user or f"u{n % 3}",
        "country": country,
        "amount": float(n),
    }


def deliver(project: Project, name: str, events: list[dict[str, Any]]) -> None:
    landing = project.root / "landing"
    landing.mkdir(exist_ok=True)
    (landing / name).write_text("".join(json.dumps(e) + "\n" for e in events))


def make(root: Path, models: dict[str, str] = MARTS, settings: Any = None) -> Project:
    sources = {"src": {"kind": "files", "path": "landing/*.jsonl"}}
    if settings is None:
        return build_project(root, sources=sources, staging={"events": EVENTS}, marts=models)
    data = project_data(sources, {"events": EVENTS}, marts={"models": settings})
    return load_project(write_project(root, data, models), env={**ENV, **os.environ})


def run(project: Project) -> list[tuple[str, str]]:
    """(mart, how) of every mart the run built."""
    with Pipeline(project) as pipeline:
        return [(m.name, m.kind) for m in pipeline.run().marts]


def builds(project: Project) -> list[tuple[Any, ...]]:
    return table_rows(project, "SELECT mart, kind, periods FROM meta.mart_builds ORDER BY build_id")


def daily(project: Project, table: str = "daily") -> list[tuple[Any, ...]]:
    return table_rows(project, f"SELECT * FROM marts.{table} ORDER BY day, country")


def test_only_due_marts_build_and_incremental_redoes_only_the_touched_days(
    engine: str, tmp_path: Path
) -> None:
    project = make(tmp_path / "p")
    deliver(project, "a.jsonl", [event(n, 1 + n % 2) for n in range(10)])
    first = run(project)
    assert sorted(first) == [
        ("by_country", "view"), ("daily", "full"), ("daily_table", "full"), ("totals", "full"),
    ]  # fmt: skip
    assert daily(project) == daily(project, "daily_table") and len(daily(project)) == 2

    # Nothing new: nothing is built, the journal shows no build.
    before = builds(project)
    assert run(project) == []
    assert builds(project) == before

    # Day 2 gets more events and day 3 appears: only those two days are redone.
    deliver(project, "b.jsonl", [event(n, 2, "FR") for n in range(10, 14)] + [event(20, 3)])
    second = dict(run(project))
    assert second == {
        "daily": "incremental", "daily_table": "full", "by_country": "refresh", "totals": "full",
    }  # fmt: skip
    assert [b for b in builds(project) if b[0] == "daily"][-1] == ("daily", "incremental", 2)
    assert daily(project) == daily(project, "daily_table")
    assert [d[0].day for d in daily(project)] == [1, 2, 2, 3]
    assert table_rows(project, "SELECT events, days FROM marts.totals") == [(15, 4)]
    assert table_rows(project, "SELECT * FROM marts.by_country ORDER BY 1") == [
        ("DE", 11), ("FR", 4),
    ]  # fmt: skip


def test_a_replaced_load_or_changed_sql_rebuilds_the_incremental_mart_whole(
    engine: str, tmp_path: Path
) -> None:
    project = make(tmp_path / "p")
    deliver(project, "a.jsonl", [event(n, 1 + n % 2) for n in range(10)])
    deliver(project, "b.jsonl", [event(n, 3) for n in range(10, 12)])
    run(project)
    # The file is delivered again without day 1: its load is replaced, day 1 must go.
    deliver(project, "a.jsonl", [event(n, 2) for n in range(1, 10, 2)])
    assert dict(run(project))["daily"] == "full"
    assert daily(project) == daily(project, "daily_table")
    assert {d[0].day for d in daily(project)} == {2, 3}
    reason = table_rows(
        project, "SELECT reason FROM meta.mart_builds WHERE mart = 'daily' ORDER BY build_id"
    )[-1][0]
    assert reason.endswith("whole: staging.events lost or retyped loads")

    # New SQL (another column): built whole, whatever the inputs did.
    path = project.marts_path / "daily.sql"
    path.write_text(path.read_text().replace("count(*) AS events", "count(*) AS events, 1 AS v"))
    assert dict(run(project)) == {"daily": "full", "totals": "full"}
    assert table_rows(project, "SELECT DISTINCT v FROM marts.daily") == [(1,)]


def test_a_view_is_made_once_and_a_mart_can_change_materialization(
    engine: str, tmp_path: Path
) -> None:
    project = make(tmp_path / "p")
    deliver(project, "a.jsonl", [event(n, 1) for n in range(3)])
    run(project)
    kinds = table_rows(
        project,
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = 'marts' ORDER BY 1",
    )
    assert dict(kinds)["by_country"] == "VIEW" and dict(kinds)["daily"] == "BASE TABLE"
    with connect(project, read_only=True) as reader:
        comments = dict(reader.query(reader.sql.table_comments(), ["marts"]))
    assert comments["by_country"] == "events per country"  # its header less its settings
    # A view reads through: new events show without a rebuild; its tests run again.
    deliver(project, "b.jsonl", [event(9, 2, "FR")])
    assert dict(run(project))["by_country"] == "refresh"
    assert table_rows(project, "SELECT * FROM marts.by_country ORDER BY 1") == [
        ("DE", 3), ("FR", 1),
    ]  # fmt: skip
    # The view becomes a table and the incremental table a view.
    for name, before, after in (("by_country", "view", "table"), ("daily", "incremental", "view")):
        path = project.marts_path / f"{name}.sql"
        text = path.read_text().replace(f"materialized: {before}", f"materialized: {after}")
        path.write_text(text.replace("-- time_column: day\n", ""))
    assert dict(run(project)) == {"by_country": "full", "daily": "view", "totals": "full"}
    kinds = table_rows(
        project,
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = 'marts' ORDER BY 1",
    )
    assert dict(kinds)["by_country"] == "BASE TABLE" and dict(kinds)["daily"] == "VIEW"
    assert daily(project) == daily(project, "daily_table")


def test_settings_in_the_project_file_and_weekly_grain(engine: str, tmp_path: Path) -> None:
    weekly = "SELECT CAST(t AS DATE) AS day, count(*) AS events FROM staging.events GROUP BY ALL"
    models = {"per_day": {"materialized": "incremental", "time_column": "day", "grain": "week"}}
    project = make(tmp_path / "p", {"per_day": weekly}, models)
    deliver(project, "a.jsonl", [event(n, day) for n, day in enumerate([1, 4, 5, 11])])
    run(project)
    # March 2024: the 4th and the 5th are in the week of Monday the 4th; the 11th the next.
    deliver(project, "b.jsonl", [event(9, 5)])
    assert run(project) == [("per_day", "incremental")]
    assert builds(project)[-1] == ("per_day", "incremental", 1)
    assert table_rows(project, "SELECT day, events FROM marts.per_day ORDER BY 1")[1:3] == [
        (table_rows(project, "SELECT DATE '2024-03-04'")[0][0], 1),
        (table_rows(project, "SELECT DATE '2024-03-05'")[0][0], 2),
    ]


def test_an_incremental_mart_over_an_anchor_table_and_one_over_a_perspective(
    engine: str, tmp_path: Path
) -> None:
    changes = (
        "SELECT CAST(changed_at AS DATE) AS day, count(*) AS changes\n"
        'FROM anchor."User_country" GROUP BY ALL'
    )
    users = (
        "SELECT DATE '2024-03-01' AS day, country, count(*) AS users\n"
        'FROM anchor."User_latest" GROUP BY ALL'
    )
    models = {
        "changes": "-- materialized: incremental\n-- time_column: day\n" + changes,
        "changes_table": changes,
        "users": "-- materialized: incremental\n-- time_column: day\n" + users,
    }
    anchor = {
        "entities": {
            "User": {
                "key": "user_id", "sources": ["events"], "changed_at": "t",
                "attributes": {"country": {"model": "events", "history": "scd2"}},
            },
        },
    }  # fmt: skip
    sources = {"src": {"kind": "files", "path": "landing/*.jsonl"}}
    data = project_data(sources, {"events": EVENTS}, anchor)
    project = load_project(write_project(tmp_path / "p", data, models), env={**ENV, **os.environ})
    deliver(project, "a.jsonl", [event(n, 1 + n % 2, user=f"u{n % 4}") for n in range(8)])
    run(project)
    deliver(project, "b.jsonl", [event(10, 3, "FR", "u1"), event(11, 3, "FR", "u5")])
    assert dict(run(project)) == {
        "changes": "incremental",
        "changes_table": "full",
        "users": "full",
    }
    assert builds(project)[-3:][0] == ("changes", "incremental", 1)
    order = "ORDER BY day"
    assert table_rows(project, f"SELECT * FROM marts.changes {order}") == table_rows(
        project, f"SELECT * FROM marts.changes_table {order}"
    )
    reason = table_rows(
        project, "SELECT reason FROM meta.mart_builds WHERE mart = 'users' ORDER BY build_id"
    )[-1][0]
    assert reason == "new in anchor.*; whole: anchor.* has no load ids"
