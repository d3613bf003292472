"""The anchor step gives the same model on every engine: the same deliveries of observations
(first values, changes, a late row before a stored first value and, not on Spark, one between
two stored values, a knot, a tie, an scd1 value), anchored on each engine, then a load removed
and an entity forgotten, leave every anchor table, serving table and perspective as DuckDB
leaves them; so they do when the anchor step of the second delivery is killed once (on Spark:
between the lake's renames and the journal's commit) and run again.

This is the test of the anchor step on Spark (with ANCHORFLOW_SPARK_ALL=1: tests/engines.py says
why the suite does not run it there by default): each
statement is one or more Spark jobs there, so the model is small (the scd0 path and the serving
tables' rebuild are checked on DuckDB and PostgreSQL by test_properties and test_serving)."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from anchorflow.anchor.erase import erase_entity, remove_loads
from anchorflow.anchor.views import create_views
from tests import engines
from tests.anchor.harness import ANCHOR, ENV, Harness
from tests.anchor.pipeline_project import ANCHORFLOW
from tests.anchor.test_crash import CRASH_EXIT
from tests.conftest import env_without_crash

pytestmark = pytest.mark.integration


def _model() -> dict[str, Any]:
    """The harness's model without its scd0 attribute and its second tie (fewer statements)."""
    model = copy.deepcopy(ANCHOR)
    del model["entities"]["User"]["attributes"]["score"]
    del model["ties"]["User_Device"]
    return model


MODEL = _model()


def at(hour: int) -> datetime:
    return datetime(2024, 3, 1, hour)


FIRST = [
    {"user_id": "u1", "t": at(2), "country": "US", "plan": "free", "platform": "ios",
     "device_id": "d1"},
    {"user_id": "u2", "t": at(3), "country": "DE", "plan": "pro", "platform": "android",
     "device_id": "d2"},
]  # fmt: skip
SECOND = [
    # u1 changes country, plan and platform, and moves to d2; u2 gets a row older than its
    # first (a late value before it), u3 is new
    {"user_id": "u1", "t": at(5), "country": "FR", "plan": "pro", "platform": "android",
     "device_id": "d2"},
    {"user_id": "u2", "t": at(1), "country": "SE"},
    {"user_id": "u3", "t": at(4), "country": "US", "device_id": "d3"},
]  # fmt: skip
THIRD = [
    # a late row for u1 between its two values: the history takes it in the middle
    {"user_id": "u1", "t": at(4), "country": "IT", "platform": "web", "device_id": "d1"},
]


def tables(h: Harness) -> dict[str, list[tuple[Any, ...]]]:
    """Every anchor table, serving table and perspective (latest, history), rows sorted (not
    when they were loaded)."""
    views = [f"{e}_{kind}" for e in h.plan.entities for kind in ("current", "latest", "history")]
    names = [*h.plan.entities, *h.plan.knots, *h.plan.targets, *views]
    found = {}
    for name in names:
        data = h.wh.query_arrow(f'SELECT * FROM anchor."{name}"')
        data = data.drop_columns([c for c in data.column_names if c == "loaded_at"])
        rows = zip(*(c.to_pylist() for c in data.columns), strict=True)
        found[name] = sorted((tuple(_plain(v) for v in r) for r in rows), key=repr)
    return found


def _plain(value: Any) -> Any:
    return value.replace(tzinfo=None) if isinstance(value, datetime) else value


# Where `anchorflow anchor` is killed on each engine: on Spark, between the lake's renames of
# a table's new files and the journal's commit (the debris the next start removes); elsewhere,
# after an attribute's or tie's commit, before the others'.
CRASH_AT = {"spark": "lake_renamed"}


def killed_anchor_step(root: Path, point: str) -> None:
    """`anchorflow anchor` in its own process, killed (os._exit) at the crash point."""
    env = {**env_without_crash(), **ENV, "ANCHORFLOW_CRASH_AT": point}
    result = subprocess.run(
        [str(ANCHORFLOW), "anchor", "--project", str(root)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == CRASH_EXIT, (result.stdout, result.stderr)


def deliveries(engine: str) -> list[list[dict[str, Any]]]:
    """On Spark, not the third: an anchor step there costs about 30 s of a JVM's CPU whatever
    its size (docs/spark.md), and CI's 30 minutes hold two."""
    return [FIRST, SECOND] if engine == "spark" else [FIRST, SECOND, THIRD]


def played(
    root: Path, engine: str, crash: bool, batches: list[list[dict[str, Any]]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The scenario's steps on `engine`: (step, every table after it). With `crash`, the
    anchor step of the second delivery is killed once, then run again."""
    engines.current = engine
    h = Harness(root, MODEL)
    try:
        create_views(h.wh, h.plan)
        for rows in batches:
            load = h.deliver(rows)
            if crash and load == 2:
                h.close()
                killed_anchor_step(root, CRASH_AT.get(engine, "anchor_after_target"))
                h = Harness(root, MODEL)
                h.next_load = load + 1
            assert h.anchor().problems == []
        yield "anchored", tables(h)
        remove_loads(h.wh, h.plan, [2])
        yield "load 2 removed", tables(h)
        with h.wh.transaction():
            erase_entity(h.wh, h.plan, "User", ["u1"])
        yield "u1 forgotten", tables(h)
    finally:
        h.close()
        engines.current = "duckdb"


@pytest.mark.timeout(900)  # on Spark: about 2 min alone, twice that beside the other tests
def test_the_anchor_model_is_the_same_on_every_engine_and_after_a_kill(
    engine: str, tmp_path: Path
) -> None:
    batches = deliveries(engine)
    expected = dict(played(tmp_path / "expected", "duckdb", crash=False, batches=batches))
    got = dict(played(tmp_path / engine, engine, crash=True, batches=batches))
    assert list(got) == list(expected)
    for step, tables_then in got.items():
        for name, rows in tables_then.items():
            assert (step, name, rows) == (step, name, expected[step][name])
    # the scenario is not trivial: u2's older value is its previous one, the late row (not on
    # Spark) sits between u1's two countries, and the forget took u1 out of everything
    history = expected["anchored"]["User_country"]
    assert [(r[1], r[2]) for r in history if r[0] == 2] == [("DE", at(3)), ("SE", at(1))]
    if len(batches) == 3:
        assert [(r[1], r[2]) for r in history if r[0] == 1] == [("FR", at(5)), ("IT", at(4)),
                                                              ("US", at(2))]  # fmt: skip
    assert all(r[1] != "u1" for r in expected["u1 forgotten"]["User"])
