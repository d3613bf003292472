"""A batch split into groups of loads (`anchor.group_rows`) gives what one call over all of them
gives: the same ids for every natural key and knot value, the same serving tables, perspectives
and conflicts; and, where no load reaches back before a stored point, the same rows in every
table. The property test plays the scenarios of test_properties twice."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchorflow.anchor.groups import split
from anchorflow.anchor.load import TargetRun, load_anchor
from anchorflow.anchor.views import create_views
from anchorflow.project_types import smaller_size
from anchorflow.warehouse.duckdb.adapter import memory_bytes
from tests.anchor.harness import Harness
from tests.anchor.test_properties import (
    PROPERTY_SETTINGS,
    TABLES,
    Scenario,
    at,
    obs,
    scenarios,
    snapshot,
    tie_instants,
)
from tests.anchor.test_properties import Reference as ReferenceModel

pytestmark = pytest.mark.integration

EXAMPLES = {"duckdb": 20, "postgres": 6}  # (30 before: CI time)


@contextmanager
def harness() -> Iterator[Harness]:
    with tempfile.TemporaryDirectory() as root:
        h = Harness(Path(root))
        try:
            yield h
        finally:
            h.close()


def anchored(h: Harness, group_rows: int | None, parallel: int = 1) -> list[TargetRun]:
    """One anchor step; the runs it reported table by table (once per group)."""
    heard: list[TargetRun] = []
    run = load_anchor(h.wh, h.plan, parallel=parallel, on_target=heard.append,
                      group_rows=group_rows)  # fmt: skip
    assert run.problems == []
    return heard


def ids(h: Harness) -> dict[str, Any]:
    """Every (id, natural key or knot value, first load) and the conflicts found: each
    instant's values and which was kept. Not those of the scd0 attribute (score), nor every
    load that brought a loser: a later group meets a stored value only at the instants stored
    (an scd0 attribute's first), as a later run would."""
    return {
        "User": h.wh.query('SELECT id, user_id, load_id FROM anchor."User" ORDER BY id'),
        "Device": h.wh.query('SELECT id, device_id, load_id FROM anchor."Device" ORDER BY id'),
        "Platform": h.wh.query('SELECT id, value, load_id FROM anchor."Platform" ORDER BY id'),
        "conflicts": sorted(
            h.wh.query(
                "SELECT DISTINCT target, key, changed_at, value, kept FROM meta.anchor_conflicts "
                "WHERE target <> 'User_score'"
            )
        ),
    }


def serving(h: Harness) -> dict[str, Any]:
    return {
        entity: h.wh.query(f'SELECT * FROM anchor."{entity}_current" ORDER BY id')
        for entity in ("User", "Device")
    }


def tables(h: Harness) -> dict[str, list[tuple[Any, ...]]]:
    """Every anchor table's rows, without the time they were written."""
    found = {}
    for name in TABLES:
        columns = [
            str(c)
            for (c,) in h.wh.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "'anchor' AND table_name = ? ORDER BY ordinal_position",
                [name],
            )
            if c != "loaded_at"
        ]
        listed = ", ".join(f'"{c}"' for c in columns)
        found[name] = sorted(tuple(r) for r in h.wh.query(f'SELECT {listed} FROM anchor."{name}"'))
    return found


def deliver_all(h: Harness, scenario: Scenario) -> None:
    """Every delivery of the scenario, the anchor step on none of them."""
    for step in scenario.steps:
        h.deliver(scenario.batches[step.batch])


def check_split(scenario: Scenario, group_rows: int) -> None:
    ref = ReferenceModel(scenario.rows)
    instants = tie_instants(ref)
    found = []
    for budget in (None, group_rows):
        with harness() as h:
            deliver_all(h, scenario)
            anchored(h, budget, scenario.final_parallel)
            found.append((ids(h), snapshot(h, ref, instants)))
    whole, split_up = found
    assert split_up[0] == whole[0]  # ids, conflicts
    assert split_up[1] == whole[1]  # every perspective (they read the serving tables)


def test_a_split_batch_gives_the_ids_serving_tables_and_perspectives_of_one_call(
    engine: str,
) -> None:
    count = EXAMPLES.get(engine, 30)
    check = given(scenarios(), st.integers(1, 12))(check_split)
    settings(PROPERTY_SETTINGS, max_examples=count)(check)()


def test_loads_in_time_order_give_the_same_rows_in_every_table(engine: str) -> None:
    """Loads of later hours only (nothing reaches back before a stored point): split into one
    group per load, every table holds exactly the rows of one call, ids included."""
    loads = [
        [obs("u2", 0, "d1", country="DE", plan="free", score=1, platform="ios"),
         obs("u1", 1, "d2", country="US", platform="android")],
        [obs("u3", 2, "d1", country="DE", plan="pro", platform="ios"),
         obs("u1", 3, "d2", country="DE", plan="pro", score=2)],
        [obs("u2", 4, "d3", country="US", platform="android"),
         obs("u4", 5, "d2", score=3, plan="free")],
    ]  # fmt: skip
    found = []
    for budget in (None, 1):
        with harness() as h:
            for rows in loads:
                h.deliver(rows)
            heard = anchored(h, budget)
            found.append((tables(h), ids(h), serving(h)))
            users = [r for r in heard if r.table == "User"]
            assert len(users) == (1 if budget is None else 3)  # one group per load
    assert found[1] == found[0]
    # New keys are numbered by the first load that brought them, then by key.
    assert [r[1] for r in found[0][1]["User"]] == ["u1", "u2", "u3", "u4"]


def test_a_later_load_that_reaches_back_is_placed_as_in_one_call() -> None:
    """(DuckDB) A group that brings an earlier-dated observation of a stored value: the
    perspectives, ids and serving rows are those of one call."""
    loads = [[obs("u1", 5, country="DE"), obs("u1", 8, country="US")],
             [obs("u1", 2, country="DE"), obs("u1", 6, country="FR")]]  # fmt: skip
    found = []
    for budget in (None, 1):
        with harness() as h:
            for rows in loads:
                h.deliver(rows)
            anchored(h, budget)
            create_views(h.wh, h.plan)
            history = h.wh.query(
                'SELECT value, changed_at FROM anchor."User_history" '
                "WHERE attribute = 'country' ORDER BY changed_at"
            )
            found.append((history, ids(h)))
    assert found[1] == found[0]
    assert [(v, t) for v, t in found[0][0]] == [("DE", at(2)), ("FR", at(6)), ("US", at(8))]


def test_a_split_batch_is_anchored_under_the_group_memory_cap() -> None:
    """(DuckDB) A batch over `group_rows` runs with DuckDB's memory at the lower of
    `group_memory_limit` and `memory_limit`; one that fits runs under `memory_limit` alone;
    the limit is restored after either."""
    loads = [[obs("u1", 0, country="DE")], [obs("u2", 1, country="US")]]

    def limits(group_rows: int | None, memory_limit: str | None) -> tuple[set[int], int, int]:
        with harness() as h:
            for rows in loads:
                h.deliver(rows)
            before = memory_bytes(str(h.wh.scalar("SELECT current_setting('memory_limit')")))
            seen: set[int] = set()
            load_anchor(
                h.wh, h.plan, group_rows=group_rows, group_memory_limit="700MB",
                memory_limit=memory_limit,
                on_target=lambda _: seen.add(memory_bytes(
                    str(h.wh.scalar("SELECT current_setting('memory_limit')")))),
            )  # fmt: skip
            after = memory_bytes(str(h.wh.scalar("SELECT current_setting('memory_limit')")))
            return seen, before, after

    def near(size: int, mb: int) -> bool:
        return abs(size - mb * 10**6) < 0.05 * mb * 10**6

    seen, before, after = limits(1, None)  # two groups
    assert len(seen) == 1 and near(seen.pop(), 700) and after == before > 10**9
    seen, before, after = limits(1, "500MB")  # the lower cap wins
    assert len(seen) == 1 and near(seen.pop(), 500) and after == before
    seen, before, after = limits(None, None)  # one group: no cap
    assert seen == {before} and after == before


@pytest.mark.unit
def test_the_smaller_memory_size_is_chosen() -> None:
    assert smaller_size("3GB", "700MB") == "700MB"
    assert smaller_size("1GiB", "1GB") == "1GB"
    assert smaller_size(None, "3GB") == "3GB" and smaller_size("2GB", None) == "2GB"
    assert smaller_size(None, None) is None


@pytest.mark.unit
def test_loads_are_grouped_in_order_under_the_budget() -> None:
    sizes = {1: 3, 2: 3, 3: 5, 4: 0, 5: 1, 7: 9, 8: 2}
    assert split(sizes, 6) == [
        frozenset({1, 2}), frozenset({3, 4, 5}), frozenset({7}), frozenset({8}),
    ]  # fmt: skip
    assert split(sizes, 100) == [frozenset(sizes)]
