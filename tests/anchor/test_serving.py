"""The serving tables (`anchor.<Entity>_current`): kept with the rows they serve, rebuildable.

After any delivery of observations in batches, anchored on one or two connections (attribute
and tie transactions updating their own columns of the same rows at once), each serving table
equals a rebuild from the attribute and tie tables; so it does after a rollback and a forget.
What the perspectives show from it is checked against the reference model in
test_properties.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from anchorflow.anchor.erase import remove_loads
from anchorflow.anchor.serving import rebuild
from tests.anchor.test_properties import (
    Scenario,
    for_examples,
    harness,
    obs,
    play,
    scenarios,
)

pytestmark = pytest.mark.integration


def serving_rows(h: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {
        entity: [
            tuple(r) for r in h.wh.query(f'SELECT * FROM anchor."{entity}_current" ORDER BY id')
        ]
        for entity in h.plan.entities
    }


def rebuilt(h: Any) -> dict[str, list[tuple[Any, ...]]]:
    rebuild(h.wh, h.plan)
    return serving_rows(h)


def check_serving(scenario: Scenario) -> None:
    with harness() as h:
        play(h, scenario)
        kept = serving_rows(h)
        again = rebuilt(h)
        columns = [c for (c,) in h.wh.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'User_current' "
            "ORDER BY ordinal_position")]  # fmt: skip
        differs = [
            {c: (x, y) for c, x, y in zip(columns, a, b, strict=True) if x != y}
            for a, b in zip(kept["User"], again["User"], strict=False)
            if a != b
        ]
        assert (differs, kept) == ([], again)
        assert len(kept["User"]) == h.wh.scalar('SELECT count(*) FROM anchor."User"')


def test_serving_tables_equal_a_rebuild(engine: str) -> None:
    for_examples(engine, scenarios(), check_serving, share=0.5)


def test_rollback_and_forget_keep_the_serving_tables_exact(engine: str) -> None:
    with harness() as h:
        h.deliver([obs("u1", 1, "d1", country="DE", plan="free", score=1, platform="ios"),
                   obs("u2", 2, "d1", country="FR")])  # fmt: skip
        late = h.deliver([obs("u1", 3, "d2", country="US", plan="pro", score=0),
                          obs("u3", 4, "d2", country="DE")])  # fmt: skip
        h.anchor()
        before = serving_rows(h)
        assert [r[:3] for r in before["User"]] == [
            (1, "u1", "US"),
            (2, "u2", "FR"),
            (3, "u3", "DE"),
        ]
        remove_loads(h.wh, h.plan, [late], reattribute=False)  # the anchor step's rollback
        after_rollback = serving_rows(h)
        assert after_rollback == rebuilt(h)
        assert [r[:3] for r in after_rollback["User"]] == [(1, "u1", "DE"), (2, "u2", "FR")]
        h.forget("User", ["u2"])
        assert serving_rows(h) == rebuilt(h)
        assert [r[1] for r in serving_rows(h)["User"]] == ["u1"]
