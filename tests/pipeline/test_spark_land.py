"""Land and stage on Spark: raw and staging as Parquet partitions by load id in the lake, the
journal in its DuckDB file beside it, the same rows as on DuckDB; re-deliveries replace
partitions; a crash between the lake's renames and the journal's commit leaves debris that the
next run removes."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, Fault
from anchorflow.run import Pipeline
from tests import engines
from tests.builders import amplitude_source, build_project
from tests.conftest import (
    API_KEY,
    NEXT_HOUR,
    SECRET_KEY,
    SMALL,
    START,
    available_at,
    env_without_crash,
    hour,
    table_rows,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
HOURS = 4
NOW = available_at(HOURS)
RAW = (
    "SELECT load_id, source, stream, origin, line_no, record FROM raw.amplitude_events "
    "ORDER BY load_id, origin, line_no"
)
BY_FILE = "SELECT origin, count(*) FROM raw.src_records GROUP BY 1 ORDER BY 1"
STAGED = {
    "staging": "SELECT * FROM staging.events ORDER BY load_id, event_uuid",
    "transfers": "SELECT load_id, model, batch_id, staged, quarantined, type_errors "
    "FROM meta.transfers ORDER BY load_id, model",
    # Statistics are sampled with each engine's own hash (docs/spark.md): which mapped columns
    # of which loads have them is the same, the counts are not.
    "field_stats": "SELECT DISTINCT model, column_name, load_ids FROM meta.field_stats "
    "WHERE column_name IS NOT NULL ORDER BY model, column_name, load_ids",
    # (the detail counts the sampled records: each engine samples with its own hash)
    "schema_events": "SELECT kind, model, field, first_load_id FROM meta.schema_events "
    "ORDER BY kind, model, field",
}
JOURNAL = {
    "loads": "SELECT load_id, window_key, rows, quarantined, status FROM meta.loads "
    "ORDER BY load_id",
    "cursors": "SELECT source, stream, cursor, load_id FROM meta.cursors",
    "quarantine": "SELECT load_id, stage, origin, line_no, reason FROM meta.quarantine "
    "ORDER BY load_id, origin, line_no",
}


@pytest.fixture(autouse=True)
def on_spark(request: pytest.FixtureRequest) -> Iterator[None]:
    """The projects these tests build run on Spark (when it is enabled and installed)."""
    if "spark" not in engines.enabled():
        pytest.skip("spark is not among ANCHORFLOW_TEST_ENGINES, or pyspark or java is missing")
    request.getfixturevalue("spark_jvm")
    engines.current = "spark"
    try:
        yield
    finally:
        engines.current = "duckdb"


@pytest.fixture(scope="module")
def faulty() -> Iterator[AmplitudeEmulator]:
    store = ExportStore(START, hour(48), spec=SMALL)
    faults = [Fault("malformed_line", hours={hour(1)})]
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY, faults) as running:
        yield running


def amplitude_project(
    root: Path, base_url: str, engine: str = "spark", staged: bool = False
) -> Project:
    """The test project (with `staging.events` when `staged`) on `engine`."""
    engines.current = engine
    try:
        source = amplitude_source(base_url, hours_per_request=2)
        return build_project(root, sources={"amplitude": source}, staging=None if staged else {})
    finally:
        engines.current = "spark"


def run(project: Project, now: datetime = NOW) -> Any:
    with Pipeline(project, now=now) as pipeline:
        return pipeline.run()


def snapshot(project: Project, staged: bool = False) -> dict[str, Any]:
    queries = {"raw": RAW, **JOURNAL, **(STAGED if staged else {})}
    return {name: normalised(table_rows(project, sql)) for name, sql in queries.items()}


def normalised(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows as every engine gives them: a UUID as its text, a JSON object as its value (Spark's
    VARIANT sorts keys and writes 3.0 as 3; tests/checksums compares JSON the same way)."""
    return [tuple(_normal(v) for v in row) for row in rows]


def _normal(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)  # (3.0 and 3 are one JSON number: Spark writes 3)
        except ValueError:
            return value
    return value


def test_land_and_stage_write_parquet_partitions_with_the_rows_duckdb_writes(
    faulty: AmplitudeEmulator, tmp_path: Path
) -> None:
    spark = amplitude_project(tmp_path / "spark", faulty.base_url, staged=True)
    duck = amplitude_project(tmp_path / "duck", faulty.base_url, engine="duckdb", staged=True)
    run(spark)
    run(duck)
    assert snapshot(spark, staged=True) == snapshot(duck, staged=True)
    assert len(snapshot(spark, staged=True)["staging"]) > 300
    assert table_rows(spark, "SELECT count(*) FROM meta.quarantine") == [(1,)]
    assert table_rows(spark, NEXT_HOUR) == [(hour(HOURS),)]
    # The lake is a Hive-style dataset any Parquet reader takes, one partition per load.
    for table in (
        spark.lake_path / "raw" / "amplitude_events",
        spark.lake_path / "staging" / "events",
    ):
        assert sorted(p.name for p in table.iterdir()) == [f"load_id={n}" for n in range(1, 5)]
    assert not (spark.lake_path / "_txn").exists()
    table = spark.lake_path / "raw" / "amplitude_events"
    read = ds.dataset(table, format="parquet", partitioning="hive").to_table()
    assert read.num_rows == table_rows(spark, "SELECT count(*) FROM raw.amplitude_events")[0][0]
    assert spark.journal_path.exists() and not spark.warehouse_path.exists()


def test_a_redelivered_window_replaces_its_partition(
    faulty: AmplitudeEmulator, tmp_path: Path
) -> None:
    project = amplitude_project(tmp_path / "p", faulty.base_url)
    run(project)
    with Pipeline(project, now=NOW) as pipeline:
        pipeline.backfill("amplitude", hour(1).strftime("%Y%m%dT%H"), hour(1).strftime("%Y%m%dT%H"))
    loads = table_rows(project, "SELECT load_id, window_key, status FROM meta.loads ORDER BY 1")
    assert [(s, k) for _, k, s in loads].count(("replaced", hour(1).strftime("%Y%m%dT%H"))) == 1
    table = project.lake_path / "raw" / "amplitude_events"
    assert sorted(p.name for p in table.iterdir()) == [
        f"load_id={n}" for n in (1, 3, 4, 5)
    ]  # load 2 (hour 1) gone from the lake, load 5 in its place
    assert table_rows(project, "SELECT DISTINCT load_id FROM raw.amplitude_events ORDER BY 1") == [
        (1,), (3,), (4,), (5,),
    ]  # fmt: skip


def test_the_files_source_lands_on_spark(tmp_path: Path) -> None:
    root = tmp_path / "files"
    landing = root / "landing"
    landing.mkdir(parents=True)
    (landing / "a.jsonl").write_text("\n".join(json.dumps({"id": i}) for i in range(5)) + "\n")
    (landing / "b.jsonl").write_text('{"id": 9}\nnot json\n')
    project = build_project(
        root, sources={"src": {"kind": "files", "path": "landing/*"}}, staging={}
    )
    run(project, datetime(2030, 1, 1))
    assert table_rows(project, BY_FILE) == [
        ("a.jsonl", 5), ("b.jsonl", 1),
    ]  # fmt: skip
    assert table_rows(project, "SELECT reason FROM meta.quarantine") == [
        ("not valid JSON: Expecting value at column 1",)
    ]
    (landing / "a.jsonl").write_text(json.dumps({"id": 0}) + "\n")  # changed: replaces its load
    run(project, datetime(2030, 1, 2))
    assert table_rows(project, BY_FILE) == [
        ("a.jsonl", 1), ("b.jsonl", 1),
    ]  # fmt: skip


def cli_run(project: Project, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**env_without_crash(), "AMPLITUDE_API_KEY": API_KEY, "AMPLITUDE_SECRET_KEY": SECRET_KEY}
    if crash_at:
        env["ANCHORFLOW_CRASH_AT"] = crash_at
    return subprocess.run(
        [str(ANCHORFLOW), "run", "--project", str(project.root), "--now",
         NOW.strftime("%Y%m%dT%H")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_crash_after_the_renames_leaves_debris_the_rerun_removes(
    faulty: AmplitudeEmulator, tmp_path: Path
) -> None:
    """Killed with the first window's partition renamed into place but the journal not
    committed: the partition is debris (no load id in the journal), removed at the next start;
    the rerun then equals a clean run."""
    clean = amplitude_project(tmp_path / "clean", faulty.base_url, staged=True)
    run(clean)
    crashed = amplitude_project(tmp_path / "crashed", faulty.base_url, staged=True)
    result = cli_run(crashed, crash_at="lake_renamed")  # (its own process: it dies there)
    assert result.returncode == 86, result.stderr
    table = crashed.lake_path / "raw" / "amplitude_events"
    assert [p.name for p in table.iterdir()] == ["load_id=1"]  # renamed, not committed
    assert [p.name for p in (crashed.lake_path / "staging" / "events").iterdir()] == ["load_id=1"]
    assert table_rows(crashed, "SELECT count(*) FROM meta.loads") == [(0,)]
    assert table_rows(crashed, "SELECT count(*) FROM raw.amplitude_events") == [(0,)]
    assert table_rows(crashed, "SELECT count(*) FROM staging.events") == [(0,)]

    run(crashed)
    assert snapshot(crashed, staged=True) == snapshot(clean, staged=True)
    # The debris went: one file per load, as in the clean lake, nothing staged left behind.
    assert [p.parent.name for p in sorted(table.rglob("*.parquet"))] == [
        f"load_id={n}" for n in range(1, HOURS + 1)
    ]
    assert not (crashed.lake_path / "_txn").exists()
