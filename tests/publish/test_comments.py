"""Descriptions of the project file become the warehouse's own comments (`COMMENT ON`), which
BI tools and `duckdb_columns()` show: for staging, the anchor model and the marts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from anchorflow.config import Project
from anchorflow.config.descriptions import staging_docs
from anchorflow.stage.tables import prepare_tables
from anchorflow.warehouse.comments import apply_comments
from tests.builders import build_project, events_model, open_warehouse

pytestmark = pytest.mark.integration


def comment(path: Path, sql: str, params: list[str]) -> str | None:
    """What a reader of the file sees (a separate, read-only connection)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(sql, params).fetchall()
    finally:
        con.close()
    assert len(rows) == 1, f"no such table or column: {params}"
    return rows[0][0]  # type: ignore[no-any-return]


def column_comment(path: Path, schema: str, name: str, column: str) -> str | None:
    return comment(
        path,
        "SELECT comment FROM duckdb_columns() "
        "WHERE schema_name = ? AND table_name = ? AND column_name = ?",
        [schema, name, column],
    )


def table_comment(path: Path, schema: str, name: str) -> str | None:
    return comment(
        path,
        "SELECT TABLE_COMMENT FROM information_schema.tables "
        "WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    )


def test_column_descriptions_become_comments_in_every_layer(demo: Project) -> None:
    path = demo.warehouse_path
    events = demo.staging["events"]
    assert table_comment(path, "staging", "events") == events.description
    assert column_comment(path, "staging", "events", "event_type") == (
        events.columns["event_type"].description
    )
    assert column_comment(path, "staging", "events", "load_id") is not None
    assert column_comment(path, "staging", "events", "insert_id") is None  # not described
    assert table_comment(path, "anchor", "User") == demo.anchor.entities["User"].description
    # An attribute without a description of its own is described by its staging column.
    assert column_comment(path, "anchor", "User_latest", "country") == (
        "the User's country: " + events.columns["country"].description  # type: ignore[operator]
    )
    assert table_comment(path, "marts", "daily_active_users") == (
        "Daily active users by platform: a user is their user_id, or the device before sign-up."
    )


def test_comments_follow_the_project_file_and_change_only_when_it_does(tmp_path: Path) -> None:
    described = events_model(description="every event")
    described["columns"]["platform"] = {"type": "VARCHAR", "description": "iOS, Android or Web"}
    project = build_project(tmp_path, staging={"events": described})
    with open_warehouse(project) as warehouse:
        prepare_tables(warehouse, project, "amplitude", "events")
        again = apply_comments(warehouse, "staging", staging_docs(project))
    assert again == 0  # already as the file says: no catalog write at all
    assert column_comment(project.warehouse_path, "staging", "events", "platform") == (
        "iOS, Android or Web"
    )
    described["columns"]["platform"] = "VARCHAR"  # the description is gone from the file
    described["description"] = "all events"
    project = build_project(tmp_path, staging={"events": described})
    with open_warehouse(project) as warehouse:
        prepare_tables(warehouse, project, "amplitude", "events")
    assert column_comment(project.warehouse_path, "staging", "events", "platform") is None
    assert table_comment(project.warehouse_path, "staging", "events") == "all events"
