"""The Source protocol's contract, run against every source kind through its kit.

plan (what is due), fetch (the records land as they were, with where they came from), cursor
(committed with the window, so a rerun loads nothing), replace (a window delivered again
replaces its load everywhere), and a crash between fetch and commit (the rerun equals a clean
run). Real parts only: the Amplitude emulator over HTTP, files on disk, S3 on moto's server.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anchorflow.crashpoints import CRASH_ENV
from anchorflow.journal.cursors import read_cursor
from anchorflow.land.step import journal_view
from anchorflow.run import Pipeline
from anchorflow.sources.registry import open_source
from tests.conftest import table_rows
from tests.sources.kits import AmplitudeKit, AsyncExportKit, FilesKit, Kit
from tests.sources.s3 import MotoS3

pytestmark = pytest.mark.integration

ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
CRASH_EXIT = 86


def records(window: int, count: int = 3, version: int = 1) -> list[dict[str, Any]]:
    return [{"id": f"w{window}-{i}", "v": i * version, "name": f"n{i}"} for i in range(count)]


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3]:
    with MotoS3() as server:
        yield server


@pytest.fixture(params=["amplitude", "files", "files-s3", "async_export"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kit]:
    made: Any
    if request.param == "amplitude":
        made = AmplitudeKit(tmp_path / "kit")
    elif request.param == "files":
        made = FilesKit(tmp_path / "kit")
    elif request.param == "async_export":
        made = AsyncExportKit(tmp_path / "kit")
    else:
        server = request.getfixturevalue("moto_s3")
        made = FilesKit(tmp_path / "kit", s3=server)
        # Each test gets its own prefix in the shared bucket.
        server.bucket = _fresh_bucket(server, tmp_path.name)
    yield made
    made.close()


def _fresh_bucket(server: MotoS3, name: str) -> str:
    bucket = "b-" + "".join(c for c in name.lower() if c.isalnum())[-40:]
    server.client().create_bucket(Bucket=bucket)
    return bucket


def planned(kit: Kit, root: Path, windows: int) -> list[str]:
    project = kit.project(root)
    with Pipeline(project, now=kit.now(windows)) as pipeline:
        source = open_source("src", project.sources["src"], project.root)
        stream = project.sources["src"].streams[0]
        cursor = read_cursor(pipeline.warehouse, "src", stream)
        found = source.plan(
            stream, cursor, kit.now(windows), journal_view(pipeline.warehouse, "src")
        )
        source.close()
    return [w.key for w in found]


def run(kit: Kit, root: Path, windows: int) -> Any:
    with Pipeline(kit.project(root), now=kit.now(windows)) as pipeline:
        return pipeline.run()


def raw(kit: Kit, root: Path) -> list[tuple[Any, ...]]:
    return table_rows(
        root / "warehouse.duckdb",
        f"SELECT load_id, origin, line_no, record->>'id', (record->>'v')::BIGINT "
        f"FROM {kit.raw_table} ORDER BY load_id, line_no",
    )


def staged(root: Path) -> list[tuple[Any, ...]]:
    return table_rows(
        root / "warehouse.duckdb", "SELECT id, v, load_id FROM staging.items ORDER BY id"
    )


def test_plan_names_the_due_windows_in_order_and_nothing_once_they_are_loaded(
    kit: Kit, tmp_path: Path
) -> None:
    root = tmp_path / "p"
    kit.write(0, records(0))
    kit.write(1, records(1))
    assert planned(kit, root, 2) == [kit.key(0), kit.key(1)]

    summary = run(kit, root, 2)
    assert [w.window_key for w in summary.windows] == [kit.key(0), kit.key(1)]
    assert planned(kit, root, 2) == []  # the cursor moved with the data
    assert run(kit, root, 2).windows == []  # a rerun loads nothing and changes nothing


def test_fetch_lands_every_record_as_it_was_with_its_origin_and_line(
    kit: Kit, tmp_path: Path
) -> None:
    root = tmp_path / "p"
    kit.write(0, records(0))
    kit.write(1, records(1, count=2))
    summary = run(kit, root, 2)

    assert [(w.load_id, w.rows, w.staged) for w in summary.windows] == [(1, 3, 3), (2, 2, 2)]
    found = raw(kit, root)
    assert [(r[0], r[2], r[3], r[4]) for r in found] == [
        (1, 1, "w0-0", 0), (1, 2, "w0-1", 1), (1, 3, "w0-2", 2), (2, 1, "w1-0", 0),
        (2, 2, "w1-1", 1),
    ]  # fmt: skip
    assert all(r[1] for r in found)  # every record names the file or request it came from
    assert staged(root) == [(f"w{w}-{i}", i, w + 1) for w in (0, 1) for i in range(3 - w)]
    loads = table_rows(root / "warehouse.duckdb",
                       "SELECT load_id, window_key, status FROM meta.loads ORDER BY 1")  # fmt: skip
    assert loads == [(1, kit.key(0), "committed"), (2, kit.key(1), "committed")]


def test_the_cursor_is_committed_with_the_window_and_resumes_from_it(
    kit: Kit, tmp_path: Path
) -> None:
    root = tmp_path / "p"
    kit.write(0, records(0))
    run(kit, root, 1)
    cursor = table_rows(root / "warehouse.duckdb", "SELECT cursor, load_id FROM meta.cursors")
    assert len(cursor) == 1 and cursor[0][1] == 1

    kit.write(1, records(1))
    summary = run(kit, root, 2)
    assert [w.window_key for w in summary.windows] == [kit.key(1)]  # only the new window
    assert table_rows(root / "warehouse.duckdb", "SELECT load_id FROM meta.cursors") == [(2,)]


def test_a_window_delivered_again_replaces_its_load_everywhere(kit: Kit, tmp_path: Path) -> None:
    root = tmp_path / "p"
    kit.write(0, records(0))
    kit.write(1, records(1))
    run(kit, root, 2)

    kit.write(0, records(0, count=2, version=10))  # window 0 changed at the source
    with Pipeline(kit.project(root), now=kit.now(2)) as pipeline:
        summary = pipeline.backfill("src", kit.key(0), kit.key(0))
    assert [(w.window_key, w.replaced) for w in summary.windows] == [(kit.key(0), 1)]

    path = root / "warehouse.duckdb"
    assert table_rows(path, "SELECT load_id, status FROM meta.loads ORDER BY 1") == [
        (1, "replaced"), (2, "committed"), (3, "committed"),
    ]  # fmt: skip
    assert [(r[0], r[3], r[4]) for r in raw(kit, root)] == [
        (2, "w1-0", 0), (2, "w1-1", 1), (2, "w1-2", 2), (3, "w0-0", 0), (3, "w0-1", 10),
    ]  # fmt: skip
    assert staged(root) == [
        ("w0-0", 0, 3), ("w0-1", 10, 3), ("w1-0", 0, 2), ("w1-1", 1, 2), ("w1-2", 2, 2),
    ]  # fmt: skip
    assert run(kit, root, 2).windows == []  # the cursor covers the replacement too


@pytest.mark.e2e
@pytest.mark.parametrize("point", ["after_land", "before_commit"])
def test_a_crash_between_fetch_and_commit_is_undone_and_the_rerun_equals_a_clean_run(
    kit: Kit, tmp_path: Path, point: str
) -> None:
    for window in range(3):
        kit.write(window, records(window))
    clean, crashed = kit.project(tmp_path / "clean"), kit.project(tmp_path / "crashed")
    assert cli_run(kit, clean.root).returncode == 0

    killed = cli_run(kit, crashed.root, crash_at=point)
    assert killed.returncode == CRASH_EXIT, killed.stderr
    assert table_rows(crashed.warehouse_path, "SELECT count(*) FROM meta.loads") == [(0,)]
    assert table_rows(crashed.warehouse_path, f"SELECT count(*) FROM {kit.raw_table}") == [(0,)]

    rerun = cli_run(kit, crashed.root)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(kit, crashed.root) == snapshot(kit, clean.root)


def cli_run(kit: Kit, root: Path, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    from tests.builders import ENV
    from tests.conftest import env_without_crash

    env = {**env_without_crash(), **ENV, "MAESTROQA_API_TOKEN": AsyncExportKit.token}
    if crash_at:
        env[CRASH_ENV] = crash_at
    now = kit.now(3).strftime("%Y%m%dT%H")
    return subprocess.run(
        [str(ANCHORFLOW), "run", "--project", str(root), "--now", now],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def snapshot(kit: Kit, root: Path) -> dict[str, list[tuple[Any, ...]]]:
    path = root / "warehouse.duckdb"
    queries = {
        "raw": f"SELECT load_id, source, stream, origin, line_no, record FROM {kit.raw_table} "
        "ORDER BY ALL",
        "staging": "SELECT * FROM staging.items ORDER BY ALL",
        "loads": "SELECT load_id, source, stream, window_key, rows, staged, status "
        "FROM meta.loads ORDER BY ALL",
        "cursors": "SELECT source, stream, cursor, load_id FROM meta.cursors ORDER BY ALL",
        "transfers": "SELECT load_id, model, staged FROM meta.transfers ORDER BY ALL",
    }
    return {name: table_rows(path, sql) for name, sql in queries.items()}
