"""`anchorflow anchor` killed inside the anchor step (before or after an entity's or a table's
commit), then run again, leaves the anchor model and its journal exactly as a run that never
crashed. The step anchors loads 3 and 4 on top of loads 1 and 2, so late events reach back into
history that is already stored."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from anchorflow.config import load_project
from anchorflow.run import Pipeline
from tests.anchor.pipeline_project import (
    ENV,
    built_once,
    emulator_running,
    plan_of,
    rows,
    run_concurrently,
    run_hours,
    snapshot,
    write_project,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CRASH_EXIT = 86
NEW_LOADS = [3, 4]


def build(root: Path) -> None:
    """Loads 1, 2 staged and anchored; loads 3, 4 staged, waiting for the anchor step."""
    with emulator_running() as emulator:
        run_hours(write_project(root, emulator.base_url, anchor=False), 2)
        with Pipeline(write_project(root, emulator.base_url)) as pipeline:
            assert not pipeline.anchor().problems
        run_hours(write_project(root, emulator.base_url, anchor=False), 4)
        write_project(root, emulator.base_url)
    late = rows(root / "warehouse.duckdb", "SELECT count(*) FROM staging.events WHERE load_id "
                "IN (3, 4) AND event_time < (SELECT max(event_time) FROM staging.events "
                "WHERE load_id <= 2)")  # fmt: skip
    assert late[0][0] > 0  # the new loads hold events older than stored history


@pytest.fixture(scope="module")
def pending(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_once(tmp_path_factory, "anchor_pending", build)


def copy(pending: Path, root: Path) -> Path:
    shutil.copytree(pending, root)
    return root


def anchor_in_process(root: Path) -> Any:
    with Pipeline(load_project(root, env=ENV)) as pipeline:
        return pipeline.anchor()


@pytest.fixture(scope="module")
def clean(pending: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = copy(pending, tmp_path_factory.mktemp("clean") / "p")
    run = anchor_in_process(root)
    assert not run.problems and run.inserted > 0
    return snapshot(root / "warehouse.duckdb")


def anchored_new_loads(root: Path) -> set[str]:
    found = rows(root / "warehouse.duckdb", "SELECT DISTINCT target FROM meta.anchor_transfers "
                 "WHERE list_contains(?, load_id)", [NEW_LOADS])  # fmt: skip
    return {str(r[0]) for r in found}


POINTS = ["anchor_entity_before_commit", "anchor_after_entity", "anchor_target_before_commit",
          "anchor_after_target"]  # fmt: skip


@pytest.fixture(scope="module")
def crashed(pending: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each crash point on its own copy, the processes run at once."""
    base = tmp_path_factory.mktemp("crashed")
    roots = [copy(pending, base / point) for point in POINTS]
    results = run_concurrently([["anchor", "--project", str(r)] for r in roots], POINTS)
    for point, result in zip(POINTS, results, strict=True):
        assert result.returncode == CRASH_EXIT, (point, result.stdout, result.stderr)
    return dict(zip(POINTS, roots, strict=True))


@pytest.mark.parametrize("point", POINTS)
def test_a_crashed_anchor_step_rerun_equals_a_clean_one(
    point: str, crashed: dict[str, Path], clean: dict[str, Any]
) -> None:
    root = crashed[point]
    plan = plan_of(load_project(root, env=ENV))
    entities_and_knots = {*plan.entities, *plan.knots}
    first_entity = next(iter(plan.entities))
    committed = anchored_new_loads(root)
    # The crash hit where it was meant to. Entities and knots load one after the other; the
    # attributes and ties on parallel connections, so which of them committed before the
    # crash is a race: some (after a commit) or none to all but one (before a commit).
    targets = committed - entities_and_knots
    if point == "anchor_entity_before_commit":
        assert committed == set()
    elif point == "anchor_after_entity":
        assert committed == {first_entity}
    else:
        assert entities_and_knots <= committed
        assert targets < set(plan.targets)
        assert targets if point == "anchor_after_target" else True

    rerun = anchor_in_process(root)
    assert not rerun.problems
    redone = {t.table for t in rerun.targets if t.loads}
    assert redone == {*entities_and_knots, *plan.targets} - committed
    assert anchored_new_loads(root) == {*entities_and_knots, *plan.targets}
    assert snapshot(root / "warehouse.duckdb") == clean  # the serving tables too


def split_copy(pending: Path, root: Path) -> Path:
    """A copy whose anchor step takes loads 3 and 4 in two groups (`anchor.group_rows: 1`)."""
    copy(pending, root)
    data = yaml.safe_load((root / "anchorflow.yml").read_text())
    data["anchor"]["group_rows"] = 1
    (root / "anchorflow.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def loads_held(root: Path) -> dict[int, set[str]]:
    found = rows(root / "warehouse.duckdb", "SELECT load_id, target FROM meta.anchor_transfers "
                 "WHERE list_contains(?, load_id)", [NEW_LOADS])  # fmt: skip
    held: dict[int, set[str]] = {load: set() for load in NEW_LOADS}
    for load, target in found:
        held[int(load)].add(str(target))
    return held


def test_a_crash_between_two_groups_of_loads_rerun_equals_a_clean_split_run(
    pending: Path, tmp_path: Path
) -> None:
    clean_root = split_copy(pending, tmp_path / "clean")
    with Pipeline(load_project(clean_root, env=ENV)) as pipeline:
        first = pipeline.anchor()
    assert not first.problems
    clean_split = snapshot(clean_root / "warehouse.duckdb")

    root = split_copy(pending, tmp_path / "crashed")
    [result] = run_concurrently([["anchor", "--project", str(root)]], ["anchor_between_groups"])
    assert result.returncode == CRASH_EXIT, (result.stdout, result.stderr)
    plan = plan_of(load_project(root, env=ENV))
    every_table = {*plan.entities, *plan.knots, *plan.targets}
    assert loads_held(root) == {3: every_table, 4: set()}  # the first group, whole

    rerun = anchor_in_process(root)
    assert not rerun.problems
    assert loads_held(root) == {3: every_table, 4: every_table}
    assert snapshot(root / "warehouse.duckdb") == clean_split
