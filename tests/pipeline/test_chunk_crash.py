"""The chunk loader killed (SIGKILL-like exit at a named point of the window commit), then run
again: raw holds every chunk's records exactly once, as after a run that never crashed, and
every chunk file is gone once committed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project
from anchorflow.sources import chunks
from tests.conftest import env_without_crash, table_rows
from tests.sources.chunk_kit import SOURCE, chunk_project, events, land_chunk, sealed, start_launch

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
CRASH_EXIT = 86
COMPARED = {
    "events": "SELECT load_id, source, stream, origin, line_no, record FROM raw.backend_events "
    "ORDER BY load_id, line_no",
    "payments": "SELECT load_id, origin, line_no, record FROM raw.backend_payments "
    "ORDER BY load_id, line_no",
    "loads": "SELECT load_id, stream, window_key, rows, quarantined, status FROM meta.loads "
    "ORDER BY load_id",
    "quarantine": "SELECT load_id, origin, line_no, reason FROM meta.quarantine ORDER BY ALL",
    "launches": "SELECT launch_id, queue, first_load_id FROM meta.launches ORDER BY ALL",
    "cursors": "SELECT stream, cursor, load_id FROM meta.cursors ORDER BY stream",
}


def run(project: Project, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = env_without_crash()
    if crash_at:
        env["ANCHORFLOW_CRASH_AT"] = crash_at
    return subprocess.run(
        [str(ANCHORFLOW), "run", SOURCE, "--project", str(project.root)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def landed_project(root: Path, big_first: bool) -> Project:
    """Chunks of two launches in two queues; the first one over `max_part_bytes` (it commits
    in parts) or small (it commits whole); one line is not JSON. The first launch's chunks are
    Arrow chunks (as the readers write), the second's line chunks."""
    project = chunk_project(root, max_part_bytes="1MiB")
    # Fixed launch ids: the crashed project and the clean one hold the same chunk ids.
    one = start_launch(project, launch="20260101T000000000000Z-00000a")
    two = start_launch(project, launch="20260101T000100000000Z-00000b")
    first = events(6000, pad=200) if big_first else events(40)
    land_chunk(project, "events", one, 1, first, chunks.ARROW)
    land_chunk(project, "events", one, 2, [*events(30, 10_000), b"{not json"], chunks.ARROW)
    land_chunk(project, "events", two, 1, events(25, 20_000))
    land_chunk(project, "payments", two, 1, events(9, 30_000))
    return project


def snapshot(project: Project) -> dict[str, Any]:
    return {name: table_rows(project, sql) for name, sql in COMPARED.items()}


_CLEAN: dict[tuple[str, bool], dict[str, Any]] = {}


def clean(engine: str, big_first: bool, root: Path) -> dict[str, Any]:
    """The warehouse of a run that never crashed (made once per engine and first chunk)."""
    if (engine, big_first) not in _CLEAN:
        project = landed_project(root, big_first)
        result = run(project)
        assert result.returncode == 0, result.stderr
        found = snapshot(project)
        assert len(found["loads"]) == 4 and found["quarantine"]
        _CLEAN[engine, big_first] = found
    return _CLEAN[engine, big_first]


# Every point with the first chunk committed in parts, and one with it whole; PostgreSQL runs
# the first and last point only (the window commit itself is tested at every point on both
# engines by tests/pipeline/test_crash.py; here it is the chunk loader's rerun that matters).
CASES = [("after_land", True), ("after_stage", True), ("before_commit", True),
         ("after_commit", True), ("before_commit", False)]  # fmt: skip
ON_POSTGRES = {("after_land", True), ("after_commit", True)}


@pytest.mark.parametrize(
    ("point", "big_first"), CASES, ids=[f"{p}-{'parts' if b else 'whole'}" for p, b in CASES]
)
def test_a_killed_loader_rerun_loads_every_chunk_once(
    point: str, big_first: bool, engine: str, tmp_path: Path
) -> None:
    if engine == "postgres" and (point, big_first) not in ON_POSTGRES:
        pytest.skip("on PostgreSQL: the first and last crash point only (see CASES)")
    expected = clean(engine, big_first, tmp_path / "clean")
    project = landed_project(tmp_path / "p", big_first)
    result = run(project, crash_at=point)
    assert result.returncode == CRASH_EXIT, result.stderr
    committed = 1 if point == "after_commit" else 0  # the crash hits the first chunk
    assert len(table_rows(project, "SELECT * FROM meta.loads")) == committed
    assert len(sealed(project)) == 3  # nothing deleted: the run did not end

    rerun = run(project)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(project) == expected
    assert sealed(project) == [] and sealed(project, "payments") == []
