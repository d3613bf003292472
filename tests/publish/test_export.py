"""`anchorflow export`: tables published as Parquet files by the engine, each whole or not at
all, for readers that cannot open the warehouse while anchorflow loads."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anchorflow.config import Project
from anchorflow.crashpoints import CRASH_ENV
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.errors import ConfigError
from anchorflow.publish.export import export_tables
from anchorflow.warehouse import connect
from tests.builders import ENV, amplitude_source, build_project
from tests.conftest import available_at, run_pipeline, table_rows
from tests.test_cli import cli

DAILY = "SELECT platform, count(*) AS events FROM staging.events GROUP BY ALL"


def hidden_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob(".*") if p.is_file()]


@pytest.mark.integration
def test_exports_are_parquet_files_with_the_warehouse_types(demo: Project, tmp_path: Path) -> None:
    with connect(demo) as warehouse:
        done = export_tables(
            warehouse, demo, ["staging.events", "marts.*", "anchor.User_latest"], tmp_path
        )
    assert [d.table for d in done] == [
        "staging.events", "marts.cost_per_user", "marts.daily_active_users",
        "marts.funnel_events", "marts.grading", "marts.revenue_by_country", "marts.user_days",
        "marts.user_first_days", "anchor.User_latest",
    ]  # fmt: skip
    events = pq.read_table(tmp_path / "staging" / "events.parquet")
    assert (
        events.num_rows
        == table_rows(demo.warehouse_path, "SELECT count(*) FROM staging.events")[0][0]
    )
    types = {f.name: f.type for f in events.schema}
    assert types["event_time"] == pa.timestamp("us")
    assert types["amount"] == pa.float64()
    assert types["amplitude_id"] == pa.int64()
    assert types["paying"] == pa.bool_()
    assert types["event_uuid"].storage_type == pa.binary(16)  # a UUID, not its text
    assert pa.types.is_string(types["event_properties"].storage_type)  # JSON text
    daily = pq.read_table(tmp_path / "marts" / "daily_active_users.parquet")
    assert daily.schema.field("day").type == pa.date32()
    assert sorted(daily.to_pylist(), key=str) == sorted(
        (dict(zip(["day", "platform", "active_users", "events"], row, strict=True))
         for row in table_rows(demo.warehouse_path, "SELECT * FROM marts.daily_active_users")),
        key=str,
    )  # fmt: skip
    costs = pq.read_table(tmp_path / "marts" / "cost_per_user.parquet")
    assert pa.types.is_decimal(costs.schema.field("cost").type)
    assert pq.read_table(tmp_path / "anchor" / "User_latest.parquet").num_rows > 0
    assert hidden_files(tmp_path) == []  # no temporary file left behind


@pytest.mark.integration
def test_run_exports_the_configured_tables_after_the_marts(
    emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    project = build_project(
        tmp_path / "project",
        sources={"amplitude": amplitude_source(emulator.base_url)},
        marts={"daily": DAILY},
        exports={"tables": ["staging.events", "marts.daily"]},
    )
    first = run_pipeline(project, available_at(2))
    assert [e.table for e in first.exports] == ["staging.events", "marts.daily"]
    events = project.root / "exports" / "staging" / "events.parquet"
    rows_after_two = pq.read_metadata(events).num_rows
    run_pipeline(project, available_at(4))  # every run leaves fresh files
    assert (
        pq.read_metadata(events).num_rows
        == table_rows(project.warehouse_path, "SELECT count(*) FROM staging.events")[0][0]
        > rows_after_two
    )
    assert pq.read_table(project.root / "exports" / "marts" / "daily.parquet").num_rows > 0


@pytest.mark.integration
def test_on_run_false_leaves_exports_to_the_command(
    emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    project = build_project(
        tmp_path, sources={"amplitude": amplitude_source(emulator.base_url)},
        exports={"tables": ["staging.events"], "on_run": False, "path": "out"},
    )  # fmt: skip
    assert run_pipeline(project, available_at(1)).exports == []
    with connect(project) as warehouse:
        (done,) = export_tables(warehouse, project)
    assert done.path == project.root / "out" / "staging" / "events.parquet"


@pytest.mark.integration
def test_a_name_that_matches_no_table_is_one_line(demo: Project, tmp_path: Path) -> None:
    with connect(demo) as warehouse, pytest.raises(ConfigError) as raised:
        export_tables(warehouse, demo, ["marts.nope_*", "staging.events", "meta.loads"], tmp_path)
    assert raised.value.problems == [
        "export: 'marts.nope_*' matches no table in the warehouse (marts has: cost_per_user, "
        "daily_active_users, funnel_events, grading, revenue_by_country, user_days, "
        "user_first_days)",
        "export: 'meta.loads': exports come from raw, staging, anchor, marts",
    ]
    assert not any(tmp_path.iterdir())  # nothing exported when any name is wrong


@pytest.mark.unit
@pytest.mark.parametrize(
    ("tables", "problem"),
    [
        (["marts.dayly"], "'marts.dayly' matches no table the project makes (did you mean "
                          "marts.daily?)"),
        (["staging.evnts"], "did you mean staging.events?"),
        (["meta.loads"], "exports come from raw, staging, anchor, marts"),
        (["events"], "expected <schema>.<table>"),
        (["anchor.User_as_of"], "matches no table"),  # a macro, not a table
    ],
)  # fmt: skip
def test_exports_in_the_project_file_name_tables_it_makes(
    tmp_path: Path, tables: list[str], problem: str
) -> None:
    anchor = {"entities": {"User": {"key": "user_id", "sources": ["events"]}}}
    with pytest.raises(ConfigError) as raised:
        build_project(tmp_path, marts={"daily": DAILY}, anchor=anchor, exports={"tables": tables})
    (line,) = raised.value.problems
    assert "exports.tables" in line and problem in line


@pytest.mark.e2e
def test_a_killed_export_leaves_the_previous_file_whole(
    emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    project = build_project(
        tmp_path, sources={"amplitude": amplitude_source(emulator.base_url)},
        exports={"tables": ["staging.events"], "on_run": False},
    )  # fmt: skip
    run_pipeline(project, available_at(1))
    assert cli("export", "--project", str(tmp_path)).returncode == 0
    published = tmp_path / "exports" / "staging" / "events.parquet"
    before = pq.read_table(published)
    run_pipeline(project, available_at(3))  # more rows: the next file would differ
    killed = cli(
        "export", "--project", str(tmp_path), env={**ENV, CRASH_ENV: "publish_before_rename"}
    )
    assert killed.returncode == 86, killed.stderr
    assert pq.read_table(published).equals(before)
    assert len(hidden_files(tmp_path / "exports")) == 1  # the cut-off file, beside it
    done = cli("export", "--project", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "exported staging.events" in done.stdout
    assert pq.read_metadata(published).num_rows > before.num_rows
    assert hidden_files(tmp_path / "exports") == []


@pytest.mark.e2e
def test_export_without_tables_says_how_to_name_them(tmp_path: Path) -> None:
    build_project(tmp_path)
    done = cli("export", "--project", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: nothing to export: name tables (`anchorflow export marts.*`) or list them under "
        "exports.tables in anchorflow.yml"
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("command", "explains"),
    [
        ("export", "Publish tables as Parquet files"),
        ("dbt-sources", "Print (or write) a dbt sources.yml for the warehouse"),
    ],
)
def test_help_of_the_publishing_commands(command: str, explains: str) -> None:
    result = cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert explains in " ".join(result.stdout.replace("│", " ").split())


@pytest.mark.e2e
def test_an_export_directory_that_cannot_be_written_is_one_line(
    demo: Project, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    done = cli("export", "staging.events", "--project", str(demo.root), "--to", str(blocked))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: cannot write {blocked / 'staging' / 'events.parquet'}: Not a directory"
    ]
