"""Stable surrogate ids: a natural key (and a knot value) keeps its id for the life of the
warehouse, through rollback, backfill and a rebuilt table (`meta.anchor_keys`); only `forget`
retires an id, and a retired id is never given again, not even to the same key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.anchor.ddl import ensure_tables
from anchorflow.journal.anchor import key_text
from anchorflow.warehouse import Warehouse
from tests.anchor.harness import Harness
from tests.anchor.pipeline_project import needs_pipeline
from tests.anchor.test_review_fixes import anchor_tables, anchored, deliver, obs

pytestmark = pytest.mark.integration

HOLDERS = ["User_country", "User_plan", "User_score", "User_platform", "Device_User", "User_Device"]


def pairs(wh: Warehouse) -> dict[str, set[tuple[Any, int]]]:
    """(natural key, id) of every entity and knot of the harness."""
    return {
        "User": set(wh.query('SELECT user_id, id FROM anchor."User"')),
        "Device": set(wh.query('SELECT device_id, id FROM anchor."Device"')),
        "Platform": set(wh.query('SELECT value, id FROM anchor."Platform"')),
    }


def registry(wh: Warehouse) -> dict[str, set[tuple[str, int]]]:
    found: dict[str, set[tuple[str, int]]] = {"User": set(), "Device": set(), "Platform": set()}
    for name, key, given in wh.query("SELECT table_name, key, id FROM meta.anchor_keys"):
        found[name].add((key, given))
    return found


def test_every_new_key_is_registered_with_its_id(tmp_path: Path, engine: str) -> None:
    h = Harness(tmp_path)
    deliver(h, [obs("u1", "d1", "DE", 1, platform="ios"), obs("u2", "d2", "US", 2)])
    deliver(h, [obs("u3", "d2", "FR", 3, platform="web")])
    anchored(h)
    assert registry(h.wh) == pairs(h.wh)
    h.close()


def test_rollback_of_the_only_load_that_knew_a_key_then_the_key_comes_back_with_its_id(
    tmp_path: Path, engine: str
) -> None:
    h = Harness(tmp_path)
    deliver(h, [obs("alice", "d1", "DE", 1, platform="ios")])
    deliver(h, [obs("zoe", "d9", "US", 2, platform="web")])  # alone knows zoe, d9 and web
    anchored(h)
    before = pairs(h.wh)
    h.rollback(2)
    assert ("zoe", 2) not in pairs(h.wh)["User"]
    deliver(h, [obs("bob", "d2", "FR", 3, platform="android")])  # new keys: new ids
    deliver(h, [obs("zoe", "d9", "US", 4, platform="web")])  # zoe again, in another load
    anchored(h)
    after = pairs(h.wh)
    for name, known in before.items():
        assert known <= after[name], name  # every key has its old id again
        new = after[name] - known
        assert len(new) == 1 and min(i for _, i in new) > max(i for _, i in known), name
    h.close()


def test_forget_retires_the_id_and_the_key_coming_back_gets_a_new_one(
    tmp_path: Path, engine: str
) -> None:
    needs_pipeline(engine)  # forget runs the land and stage erasures
    h = Harness(tmp_path)
    deliver(h, [obs("alice", "d1", "DE", 1), obs("zoe", "d9", "US", 1)])
    anchored(h)
    before = dict(h.wh.query('SELECT user_id, id FROM anchor."User"'))
    h.forget("User", ["alice"])  # not the highest id: the top alone does not protect it
    assert "alice" not in {k for k, _ in registry(h.wh)["User"]}  # the key is personal data
    deliver(h, [obs("alice", "d1", "DE", 2)])
    anchored(h)
    alice = h.wh.scalar("SELECT id FROM anchor.\"User\" WHERE user_id = 'alice'")
    assert alice not in before.values() and alice > max(before.values())
    assert registry(h.wh)["User"] == pairs(h.wh)["User"]
    h.close()


@pytest.mark.parametrize("holders_too", [False, True], ids=["entity", "entity-and-holders"])
def test_a_rebuilt_entity_table_gets_the_same_ids_from_staging(
    tmp_path: Path, engine: str, holders_too: bool
) -> None:
    h = Harness(tmp_path)
    deliver(h, [obs("u5", "d1", "DE", 1, plan="free", score=1, platform="ios")])
    deliver(h, [obs("u1", "d2", "US", 3, plan="pro", score=3, platform="android")])
    anchored(h)
    before, rows = pairs(h.wh), anchor_tables(h.wh)
    if engine == "postgres":  # where views, and the functions of their rows, depend on tables
        for view in ("latest", "history"):
            h.wh.execute(f'DROP VIEW IF EXISTS anchor."User_{view}" CASCADE')
    h.wh.execute('DROP VIEW IF EXISTS anchor."User_latest"')
    for name in [*(HOLDERS if holders_too else []), "User"]:
        h.wh.execute(f'DROP TABLE anchor."{name}"')
    created = ensure_tables(h.wh, h.plan)
    assert set(created) == {"User", *(HOLDERS if holders_too else [])}
    anchored(h)
    assert pairs(h.wh) == before
    after = anchor_tables(h.wh)
    for name in HOLDERS:  # attributes and ties: the same rows, ids included
        assert after[name] == rows[name], name
    h.close()


def test_a_warehouse_anchored_before_the_registry_fills_it_from_its_tables(
    tmp_path: Path, engine: str
) -> None:
    h = Harness(tmp_path)
    deliver(h, [obs("u1", "d1", "DE", 1, platform="ios"), obs("u2", "d2", "US", 2)])
    anchored(h)
    h.wh.execute("DELETE FROM meta.anchor_keys")
    for _ in range(2):  # idempotent
        assert ensure_tables(h.wh, h.plan) == []
        assert registry(h.wh) == pairs(h.wh)
        assert h.wh.scalar("SELECT count(*) FROM meta.anchor_keys") == 5
    h.close()


def test_the_key_text_of_a_composite_key_tells_every_key_apart(tmp_path: Path, engine: str) -> None:
    h = Harness(tmp_path)
    text = key_text(["k.a", "k.b"])
    found = {
        h.wh.scalar(
            f"SELECT {text} FROM (SELECT CAST(? AS VARCHAR) AS a, CAST(? AS VARCHAR) AS b) AS k",
            [a, b],
        )
        for a, b in [("a:b", "c"), ("a", "b:c"), ("1:a", "1:b"), ("", "1:a1:b"), ("ab", "c")]
    }
    assert len(found) == 5
    assert h.wh.scalar(f"SELECT {text} FROM (SELECT 12 AS a, 'x' AS b) AS k") == "2:121:x"
    h.close()
