"""Taking data back out, through the real pipeline on the emulator's traffic: `rollback` of a
load (raw keeps it, the next run restores the model) and `forget` of a user (gone from every
table of every schema, with one audit row that does not name them)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from anchorflow.anchor.plan import AnchorPlan
from anchorflow.config import Project, load_project
from anchorflow.errors import ConfigError
from anchorflow.run import Pipeline
from anchorflow.warehouse import connect
from tests.anchor.pipeline_project import (
    ENV,
    HOURS,
    anchored_project,
    copy_project,
    id_pairs,
    latest,
    needs_pipeline,
    plan_of,
    reading,
    resolved,
    rows,
    run_concurrently,
    snapshot,
)
from tests.conftest import available_at

pytestmark = pytest.mark.e2e

ROLLED_BACK = 2


@pytest.fixture
def clean(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Project:
    needs_pipeline(engine)
    return load_project(anchored_project(tmp_path_factory), env=ENV)


def tables_with_load_ids(path: Project) -> list[str]:
    found = rows(
        path,
        "SELECT c.table_schema || '.' || c.table_name FROM information_schema.columns AS c "
        "JOIN information_schema.tables AS t USING (table_catalog, table_schema, table_name) "
        "WHERE c.column_name = 'load_id' AND t.table_type = 'BASE TABLE' ORDER BY 1",
    )
    return [str(r[0]) for r in found]


def count(path: Project, name: str, where: str = "TRUE", params: list[Any] | None = None) -> int:
    schema, table = name.split(".")
    return int(rows(path, f'SELECT count(*) FROM "{schema}"."{table}" WHERE {where}', params)[0][0])


def referenced(plan: AnchorPlan, entity: str, alias: str) -> str:
    """Some attribute or tie row points at `alias`.id."""
    found = [
        f'EXISTS (SELECT 1 FROM anchor."{t.table}" AS r WHERE r."{role.column}" = {alias}.id)'
        for t in plan.targets.values()
        for role in t.roles
        if role.entity == entity
    ]
    return " OR ".join(found) or "FALSE"


def test_rollback_removes_a_load_above_raw_and_the_next_run_restores_the_model(
    clean: Project, tmp_path: Path
) -> None:
    project = copy_project(clean.root, tmp_path / "p")
    path, plan = project, plan_of(project)
    before = {name: count(path, name, "load_id = ?", [ROLLED_BACK])
              for name in tables_with_load_ids(path)}  # fmt: skip
    assert before["raw.amplitude_events"] > 0 and before["staging.events"] > 0
    assert before["anchor.User_country"] > 0 and before["meta.anchor_transfers"] > 0
    other_loads = {
        name: table_rows for name, table_rows in snapshot(path).items() if name.startswith("anchor")
    }

    (ran,) = run_concurrently([["rollback", str(ROLLED_BACK), "--project", str(project.root)]])
    assert ran.returncode == 0, ran.stderr
    assert f"load {ROLLED_BACK} rolled back" in ran.stdout
    assert f"removed {before['staging.events']:,} row(s) from staging.events" in ran.stdout

    # Raw keeps the load; staging, its journal and every attribute and tie lose it.
    after = {name: count(path, name, "load_id = ?", [ROLLED_BACK]) for name in before}
    assert after["raw.amplitude_events"] == before["raw.amplitude_events"]
    assert after["meta.loads"] == 1
    kept_rows = {name: n for name, n in after.items() if n and name not in
                 ("raw.amplitude_events", "meta.loads")}  # fmt: skip
    # An entity row the load created stays only while rows of other loads point at it.
    assert set(kept_rows) <= {f"anchor.{e}" for e in plan.entities}
    for name in kept_rows:
        entity = name.split(".")[1]
        alias = f'"anchor"."{entity}"'
        assert count(path, name, f"load_id = {ROLLED_BACK} AND NOT "
                                 f"({referenced(plan, entity, alias)})") == 0  # fmt: skip
    stats_of_load = ("SELECT count(*) FROM meta.field_stats, (SELECT CAST(? AS BIGINT) AS l) "
                     "AS p WHERE list_contains(load_ids, p.l)")  # fmt: skip
    assert rows(path, stats_of_load, [ROLLED_BACK]) == [(0,)]
    # The other loads' attribute and tie rows are exactly as they were.
    for name, table_rows in snapshot(path).items():
        entity_or_knot = name.split(".")[1] in {*plan.entities, *plan.knots}
        derived = name.endswith("_current")  # serving tables follow the rows they serve
        if name.startswith("anchor") and not entity_or_knot and not derived:
            assert table_rows == [r for r in other_loads[name] if r[-1] != ROLLED_BACK]  # load_id

    # The next run types and anchors the load again from raw: the model means the same again.
    with Pipeline(project, now=available_at(HOURS)) as pipeline:
        summary = pipeline.run()
    assert summary.windows == []  # nothing downloaded: raw had it
    assert [(r.model, r.loads) for r in summary.staging] == [("events", 1)]
    assert resolved(path, plan) == resolved(clean, plan)
    for entity in plan.entities:
        assert latest(path, entity) == latest(clean, entity)
    assert snapshot(path)["meta.anchor_transfers"] == snapshot(clean)["meta.anchor_transfers"]


def test_rollback_then_run_restores_the_same_surrogate_ids(clean: Project, tmp_path: Path) -> None:
    """Keys only the rolled-back load knew get their ids back from the registry."""
    project = copy_project(clean.root, tmp_path / "p")
    with Pipeline(project, now=available_at(HOURS)) as pipeline:
        pipeline.rollback(ROLLED_BACK)
        pipeline.run()
    plan = plan_of(project)
    assert id_pairs(project, plan) == id_pairs(clean, plan)
    assert snapshot(project) == snapshot(clean)


def test_rollback_refuses_an_unknown_load_in_one_line(clean: Project, tmp_path: Path) -> None:
    project = copy_project(clean.root, tmp_path / "p")
    before = snapshot(project)
    with Pipeline(project) as pipeline, pytest.raises(ConfigError) as raised:
        pipeline.rollback(99)
    assert raised.value.problems == ["rollback: there is no load 99 (see `anchorflow status`)"]
    assert snapshot(project) == before


# -- forget ---------------------------------------------------------------------------------------


def busiest_user(path: Project) -> str:
    """The user with the most events among ids no other id contains (user_100..user_299)."""
    found = rows(path, "SELECT user_id FROM staging.events WHERE length(user_id) = 8 "
                       "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")  # fmt: skip
    return str(found[0][0])


def tables_holding(path: Project, pattern: str) -> dict[str, int]:
    """Rows of every table and view of every schema where some column, as text, matches."""
    hits = {}
    with reading(path) as con:
        relations = con.query("SELECT table_schema, table_name FROM information_schema.tables "
                              "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') "
                              "ORDER BY 1, 2")  # fmt: skip
        assert len(relations) > 30
        for schema, name in relations:
            names = con.query(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                [schema, name],
            )
            matches = " OR ".join(f'regexp_matches(CAST("{c}" AS VARCHAR), ?)' for (c,) in names)
            found = con.query(f'SELECT count(*) FROM "{schema}"."{name}" WHERE {matches}',
                              [pattern] * len(names))  # fmt: skip
            if found and found[0][0]:
                hits[f"{schema}.{name}"] = int(found[0][0])
    return hits


def about_others(path: Project, plan: AnchorPlan, user_id: int) -> dict[str, list[tuple[Any, ...]]]:
    """Every anchor table without the rows about this User id."""
    kept = {}
    for name, table_rows in snapshot(path).items():
        table = name.split(".")[1]
        if table in ("User", "User_current"):
            kept[name] = [r for r in table_rows if r[0] != user_id]
        elif table in plan.targets:
            positions = [i for i, r in enumerate(plan.targets[table].roles) if r.entity == "User"]
            kept[name] = [r for r in table_rows if all(r[i] != user_id for i in positions)]
        elif name != "meta.anchor_transfers":
            kept[name] = table_rows
    return kept


def staged_per_user(path: Project) -> dict[Any, int]:
    return dict(rows(path, "SELECT user_id, count(*) FROM staging.events GROUP BY 1"))


def test_forget_erases_a_user_from_every_table_and_keeps_everyone_else(
    clean: Project, tmp_path: Path
) -> None:
    project = copy_project(clean.root, tmp_path / "p")
    path, plan = project, plan_of(project)
    key = busiest_user(path)
    (user_id,) = rows(path, 'SELECT id FROM anchor."User" WHERE user_id = ?', [key])[0]
    (amplitude_id,) = rows(path, "SELECT DISTINCT amplitude_id FROM staging.events "
                                 "WHERE user_id = ?", [key])[0]  # fmt: skip
    mentions = f"{re.escape(key)}([^0-9]|$)"
    identifies = f"(^|[^0-9]){amplitude_id}([^0-9]|$)"
    assert {"raw.amplitude_events", "staging.events", "anchor.User"} <= set(
        tables_holding(path, mentions)
    )
    events = count(path, "staging.events", "user_id = ?", [key])
    user_of = connect(path, lazy=True).sql.json_text("record", ["user_id"])
    records = count(path, "raw.amplitude_events", f"{user_of} = ?", [key])
    assert events >= 3 and records >= events
    raw_total = count(path, "raw.amplitude_events")
    staged = staged_per_user(path)
    others = about_others(path, plan, user_id)

    with Pipeline(project) as pipeline:
        counts = pipeline.forget("User", [key])

    assert tables_holding(path, mentions) == {}
    assert tables_holding(path, identifies) == {}
    assert count(path, "raw.amplitude_events") == raw_total - records
    assert staged_per_user(path) == {u: n for u, n in staged.items() if u != key}
    assert about_others(path, plan, user_id) == others
    assert rows(path, 'SELECT count(*) FROM anchor."User_latest" WHERE id = ?', [user_id]) == [(0,)]
    assert counts["anchor.User"] == 1
    assert counts["staging.events"] == events
    assert counts["raw.amplitude_events"] == records
    assert counts["anchor.Device_User"] >= 1 and counts["anchor.User_country"] >= 1

    audit = rows(path, "SELECT erasure_id, entity, counts FROM meta.erasures")
    assert [(e, entity) for e, entity, _ in audit] == [(1, "User")]
    assert json.loads(audit[0][2]) == counts
    assert rows(path, "SELECT command, status FROM meta.runs ORDER BY run_id DESC LIMIT 1") == [
        ("forget User", "ok")
    ]


def test_forget_on_the_command_line_exits_0_and_leaves_one_audit_row(
    clean: Project, tmp_path: Path
) -> None:
    project = copy_project(clean.root, tmp_path / "p")
    path = project
    key = busiest_user(path)
    events = count(path, "staging.events", "user_id = ?", [key])
    (ran,) = run_concurrently([["forget", "User", key, "--yes", "--project", str(project.root)]])
    assert ran.returncode == 0, ran.stderr
    assert f"erased {events:,} row(s) from staging.events" in ran.stdout
    assert key not in ran.stdout + ran.stderr
    assert count(path, "staging.events", "user_id = ?", [key]) == 0
    assert count(path, "anchor.User", "user_id = ?", [key]) == 0
    assert rows(path, "SELECT entity FROM meta.erasures") == [("User",)]
    assert tables_holding(path, f"{re.escape(key)}([^0-9]|$)") == {}


def with_exports(clean: Project, root: Path, **exports: Any) -> Project:
    """A copy of the clean project that publishes staging.events and anchor.User_latest."""
    copy_project(clean.root, root)
    data = yaml.safe_load((root / "anchorflow.yml").read_text())
    data["exports"] = {"tables": ["staging.events", "anchor.User_latest"], **exports}
    (root / "anchorflow.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    project = load_project(root, env=ENV)
    with Pipeline(project) as pipeline:
        pipeline.export()
    return project


def published(project: Project, name: str) -> pa.Table:
    schema, table = name.split(".")
    return pq.read_table(project.exports_path / schema / f"{table}.parquet")


def test_forget_erases_the_user_from_the_published_exports_too(
    clean: Project, tmp_path: Path
) -> None:
    project = with_exports(clean, tmp_path / "p", on_run=False)  # files the run never writes
    key = busiest_user(project)
    for name in ("staging.events", "anchor.User_latest"):
        assert key in published(project, name).column("user_id").to_pylist()

    with Pipeline(project) as pipeline:
        pipeline.forget("User", [key])

    for name in ("staging.events", "anchor.User_latest"):
        users = published(project, name).column("user_id").to_pylist()
        assert key not in users and len(users) > 0
    assert not any(p.name.startswith(".") for p in project.exports_path.rglob("*"))


def test_rollback_republishes_the_exports_when_the_runs_do(clean: Project, tmp_path: Path) -> None:
    project = with_exports(clean, tmp_path / "p")
    assert ROLLED_BACK in published(project, "staging.events").column("load_id").to_pylist()
    with Pipeline(project) as pipeline:
        pipeline.rollback(ROLLED_BACK)
    assert ROLLED_BACK not in published(project, "staging.events").column("load_id").to_pylist()
