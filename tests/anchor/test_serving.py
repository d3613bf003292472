"""The serving tables (`anchor.<Entity>_current`): derived, exact, rebuildable.

- After any delivery and anchoring, each serving table equals a rebuild from the attribute and
  tie tables (the incremental refresh reads only the rows since each id's mark).
- While ids are marked as lagging (a target committed, the refresh not yet run, or a crash
  between them), every perspective and the query builder still show exact values: marked ids
  are computed from the attribute tables, whatever their serving row holds.
"""

from __future__ import annotations

from typing import Any

import pytest

from anchorflow.anchor.query import query_sql, run_query
from anchorflow.anchor.serving import rebuild, refresh_all
from anchorflow.anchor.views import create_views
from tests.anchor.test_properties import (
    Reference,
    Scenario,
    for_examples,
    harness,
    obs,
    play,
    scenarios,
    snapshot,
    tie_instants,
)

pytestmark = pytest.mark.integration


def serving_rows(h: Any, entity: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in h.wh.query(f'SELECT * FROM anchor."{entity}_current" ORDER BY id')]


def corrupt_and_mark(h: Any) -> None:
    """Every serving row wrong (values swapped for NULL, known since forever), every id marked:
    what readers would meet if the refresh had not run."""
    with h.wh.transaction():
        for entity in h.plan.entities:
            columns = [c for c in h.wh.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'anchor' "
                "AND table_name = ? AND column_name NOT IN ('id', 'user_id', 'device_id')",
                [f"{entity}_current"],
            )]  # fmt: skip
            sets = ", ".join(f'"{c[0]}" = NULL' for c in columns)
            h.wh.execute(f'UPDATE anchor."{entity}_current" SET {sets}')
            h.wh.execute(
                f"INSERT INTO meta.anchor_dirty SELECT ?, id, '', NULL FROM anchor.\"{entity}\"",
                [entity],
            )


def check_serving(scenario: Scenario) -> None:
    ref = Reference(scenario.rows)
    instants = tie_instants(ref)
    with harness() as h:
        play(h, scenario)
        served = {e: serving_rows(h, e) for e in h.plan.entities}
        shown = snapshot(h, ref, instants)
        rebuild(h.wh, h.plan)
        assert {e: serving_rows(h, e) for e in h.plan.entities} == served
        corrupt_and_mark(h)
        assert snapshot(h, ref, instants) == shown  # the lagging branch computes them
        refresh_all(h.wh, h.plan)
        assert {e: serving_rows(h, e) for e in h.plan.entities} == served
        assert h.wh.scalar("SELECT count(*) FROM meta.anchor_dirty") == 0


def test_serving_tables_equal_a_rebuild_and_marked_ids_read_exactly(engine: str) -> None:
    for_examples(engine, scenarios(), check_serving, share=0.5)


def test_the_builder_reads_the_serving_table_alone_when_nothing_is_marked(engine: str) -> None:
    with harness() as h:
        h.deliver([obs("u1", 1, country="DE", plan="free"), obs("u1", 3, country="US")])
        h.anchor()
        create_views(h.wh, h.plan)
        fast = run_query(h.wh, h.plan, "User", ["country", "plan"]).to_pylist()
        assert [(r["user_id"], r["country"], r["plan"]) for r in fast] == [("u1", "US", "free")]
        corrupt_and_mark(h)
        # Marked: the builder adds the computed branch, and the values are the same.
        slow = run_query(h.wh, h.plan, "User", ["country", "plan"]).to_pylist()
        assert slow == fast
        sql, _ = query_sql(h.plan, "User", ["country"], lagging=False)
        assert "anchor_dirty" not in sql and "UNION" not in sql
