"""A run killed while it builds the marts (between deleting an incremental mart's periods and
inserting them again, before a mart's commit, after it), then run again, leaves the same marts
as a clean run; the run after that builds nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project
from tests.conftest import table_rows
from tests.test_cli import cli
from tests.test_mart_builds import MARTS, deliver, event, make

pytestmark = pytest.mark.e2e


def run(project: Project, **env: str) -> int:
    done = cli("run", "--project", str(project.root), env=env or None)
    assert done.returncode in (0, 86), done.stderr
    return done.returncode


def marts(project: Project) -> dict[str, list[tuple[Any, ...]]]:
    return {name: sorted(table_rows(project, f"SELECT * FROM marts.{name}"), key=str)
            for name in MARTS}  # fmt: skip


def twice(project: Project, **env: str) -> int:
    deliver(project, "a.jsonl", [event(n, 1 + n % 2) for n in range(10)])
    assert run(project) == 0
    deliver(project, "b.jsonl", [event(n, 2, "FR") for n in range(10, 14)] + [event(20, 3)])
    return run(project, **env)


@pytest.mark.parametrize(
    "point", ["mart_periods_deleted", "mart_before_commit", "mart_after_commit"]
)
def test_a_run_killed_in_the_marts_reruns_to_the_clean_marts(
    engine: str, tmp_path: Path, point: str
) -> None:
    clean = make(tmp_path / "clean")
    assert twice(clean) == 0
    crashed = make(tmp_path / "crashed")
    assert twice(crashed, ANCHORFLOW_CRASH_AT=point) == 86
    assert run(crashed) == 0
    assert marts(crashed) == marts(clean)
    before = table_rows(crashed, "SELECT count(*) FROM meta.mart_builds")
    assert run(crashed) == 0
    assert table_rows(crashed, "SELECT count(*) FROM meta.mart_builds") == before
