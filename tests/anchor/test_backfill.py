"""`backfill` of an hour replaces its load in the anchor model too: afterwards the model is the
one a clean run builds, with the new load in place of the replaced one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project, load_project
from anchorflow.project_types import format_hour
from anchorflow.run import Pipeline
from tests import engines
from tests.anchor.pipeline_project import (
    ENV,
    HOURS,
    anchored_project,
    built_once,
    copy_project,
    emulator_running,
    id_pairs,
    latest,
    needs_pipeline,
    plan_of,
    resolved,
    rows,
    snapshot,
)
from tests.conftest import available_at, hour

pytestmark = pytest.mark.e2e

REPLACED, REPLACEMENT = 2, HOURS + 1  # hour 1 was load 2; its backfill is load 5


@pytest.fixture
def clean(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Project:
    needs_pipeline(engine)
    return load_project(anchored_project(tmp_path_factory), env=ENV)


@pytest.fixture
def backfilled(clean: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The clean warehouse after `backfill amplitude --start <hour 1> --end <hour 1>` (made
    once per engine)."""

    def build(root: Path) -> None:
        with emulator_running() as emulator:
            project = copy_project(clean.root, root / "p", emulator.base_url)
            engines.keep_database(root / "p")
            with Pipeline(project, now=available_at(HOURS)) as pipeline:
                summary = pipeline.backfill("amplitude", format_hour(hour(1)), format_hour(hour(1)))
        assert [(w.load_id, w.replaced) for w in summary.windows] == [(REPLACEMENT, 1)]
        assert summary.anchor is not None and summary.anchor.inserted > 0

    return load_project(built_once(tmp_path_factory, "backfilled", build) / "p", env=ENV)


@pytest.fixture
def backfilled_every_hour(clean: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The clean warehouse after a backfill of every hour it holds (loads 1..4 replaced)."""

    def build(root: Path) -> None:
        with emulator_running() as emulator:
            project = copy_project(clean.root, root / "p", emulator.base_url)
            engines.keep_database(root / "p")
            with Pipeline(project, now=available_at(HOURS)) as pipeline:
                summary = pipeline.backfill(
                    "amplitude", format_hour(hour(0)), format_hour(hour(HOURS - 1))
                )
        assert [w.replaced for w in summary.windows] == [1] * HOURS

    return load_project(built_once(tmp_path_factory, "backfilled_all", build) / "p", env=ENV)


def test_a_backfill_of_every_hour_keeps_every_surrogate_id(
    clean: Project, backfilled_every_hour: Project
) -> None:
    plan = plan_of(clean)
    found, wanted = id_pairs(backfilled_every_hour, plan), id_pairs(clean, plan)
    for name in [*plan.entities, *plan.knots]:
        assert wanted[name] and found[name] == wanted[name], name
    for entity in plan.entities:
        assert latest(backfilled_every_hour, entity) == latest(clean, entity), entity


TRANSFER_COUNTS = "model, target, kind, observed, inserted, without_key, max_changed_at"


def by_load(where: Project, load_id: int, mapped: int | None = None) -> list[tuple[Any, ...]]:
    found = rows(where, f"SELECT {TRANSFER_COUNTS} FROM meta.anchor_transfers "
                        "WHERE load_id = ? ORDER BY 1, 2, 3", [load_id])  # fmt: skip
    return [(mapped or load_id, *r) for r in found]


def test_a_backfilled_hour_leaves_the_model_a_clean_run_builds(
    clean: Project, backfilled: Project
) -> None:
    plan = plan_of(clean)
    clean_path = clean
    # Attributes and ties hold the same rows, the replacement's where the replaced load's were.
    wanted = resolved(clean_path, plan, {REPLACED: REPLACEMENT})
    found = resolved(backfilled, plan)
    for name in plan.targets:
        assert found[name] == wanted[name], name
    # Entities and knots hold the same natural keys and values.
    for name in [*plan.entities, *plan.knots]:
        assert [r[:-1] for r in found[name]] == [r[:-1] for r in wanted[name]], name
    for entity in plan.entities:
        assert latest(backfilled, entity) == latest(clean_path, entity), entity
    # The anchor journal: the replaced load is gone, the replacement counts the same.
    assert by_load(backfilled, REPLACED) == []
    assert by_load(backfilled, REPLACEMENT) == by_load(clean_path, REPLACED, REPLACEMENT) != []
    for other in (1, 3, 4):
        assert by_load(backfilled, other) == by_load(clean_path, other)
    assert rows(backfilled, "SELECT load_id, status FROM meta.loads ORDER BY 1") == [
        (1, "committed"), (2, "replaced"), (3, "committed"), (4, "committed"),
        (5, "committed"),
    ]  # fmt: skip


def test_no_anchor_row_keeps_the_replaced_load_id(backfilled: Project) -> None:
    stale = {
        name: [r for r in table_rows if REPLACED in r]
        for name, table_rows in _load_ids(backfilled).items()
    }
    assert {name: found for name, found in stale.items() if found} == {}


def _load_ids(path: Project) -> dict[str, list[tuple[int]]]:
    names = [  # the serving tables are derived: they hold no load ids
        n for n in snapshot(path) if n.startswith("anchor.") and not n.endswith("_current")
    ]
    return {n: rows(path, f'SELECT load_id FROM anchor."{n.split(".")[1]}"') for n in names}
