"""Regression tests for the anchor-model review fixes, each one a failing case of the code before
them: a missing entity or knot table is never numbered anew under rows holding its ids; rollback
and backfill read the stream's other loads again; a second key column of one model for the same
entity (a referrer) and a column added later to an existing entity or knot get their ids; ids are
never given twice; forget scrubs whole JSON values only and deletes no one else's rows.

(The review's history re-read fix only changes how much is read, not what is stored; its
correctness is covered by the history tests, and timings are not asserted anywhere.)
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from anchorflow.anchor.ddl import ensure_tables
from anchorflow.anchor.describe import describe
from anchorflow.anchor.erase import remove_loads
from anchorflow.anchor.views import create_views
from anchorflow.errors import ModelError
from anchorflow.run import Pipeline
from anchorflow.warehouse import Warehouse
from tests.anchor import harness as harness_module
from tests.anchor.harness import ANCHOR, Harness
from tests.anchor.pipeline_project import needs_pipeline

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1)
STREAM = ("app", "events")  # the harness's staging.obs reads this source and stream


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def obs(user: str, device: str, country: str, hours: int, **more: Any) -> dict[str, Any]:
    return {"user_id": user, "device_id": device, "country": country, "t": at(hours), **more}


def deliver(h: Harness, rows: list[dict[str, Any]]) -> int:
    """A typed load, recorded as a committed load of the stream (so it can be rolled back)."""
    load_id = h.deliver(rows)
    h.wh.execute(
        "INSERT INTO meta.loads (load_id, source, stream, status) VALUES (?, ?, ?, 'committed')",
        [load_id, *STREAM],
    )
    return load_id


def restage(wh: Warehouse, load_id: int, rows: list[dict[str, Any]]) -> None:
    """Staging rows typed again under an existing load id, as restaging from raw leaves them."""
    names = list(harness_module.OBS_COLUMNS)
    with wh.transaction():
        for row in rows:
            wh.execute(
                f"INSERT INTO staging.obs (load_id, {', '.join(names)}) "
                f"VALUES (?, {', '.join('?' for _ in names)})",
                [load_id, *(row.get(n) for n in names)],
            )
        if not wh.scalar("SELECT count(*) FROM meta.transfers WHERE load_id = ?", [load_id]):
            wh.execute(
                "INSERT INTO meta.transfers VALUES (?, 'obs', ?, 0, 0, 0, ?)",
                [load_id, load_id, datetime(2024, 1, 1)],
            )


def anchored(h: Harness) -> None:
    run = h.anchor()
    assert not run.problems, run.problems


def users(wh: Warehouse, plan: Any) -> list[tuple[Any, ...]]:
    """User_latest without surrogate ids."""
    create_views(wh, plan)
    return wh.query(
        'SELECT user_id, country, plan, score, platform FROM anchor."User_latest" '
        "ORDER BY 1, 2, 3, 4, 5"
    )


def clean_run(root: Path, loads: list[list[dict[str, Any]]]) -> list[tuple[Any, ...]]:
    """User_latest of a fresh warehouse that anchored these loads and nothing else."""
    root.mkdir(parents=True)
    h = Harness(root)
    try:
        for rows in loads:
            h.deliver(rows)
        anchored(h)
        return users(h.wh, h.plan)
    finally:
        h.close()


def nothing_pending(h: Harness) -> None:
    pending = {i.table: i.pending_loads for i in describe(h.wh, h.plan) if i.pending_loads}
    assert pending == {}


def anchor_tables(wh: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    names = wh.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'anchor' "
        "AND table_type = 'BASE TABLE' ORDER BY 1"
    )
    return {n: sorted(wh.query(f'SELECT * FROM anchor."{n}"'), key=repr) for (n,) in names}


# -- B1: a missing entity or knot table ---------------------------------------------------------


FULL = [
    [
        obs("u5", "d1", "DE", 1, plan="free", score=1, platform="ios"),
        obs("u5", "d1", "AT", 2, plan="pro", score=2, platform="web"),
    ],
    [obs("u1", "d2", "US", 3, plan="free", score=3, platform="android")],
]
USER_HOLDERS = ["User_country", "User_plan", "User_score", "User_platform", "Device_User",
                "User_Device"]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "how", "holders"),
    [
        ("User", 'ALTER TABLE anchor."User" RENAME TO "User_old"', USER_HOLDERS),
        ("User", 'DROP TABLE anchor."User"', USER_HOLDERS),
        ("Platform", 'ALTER TABLE anchor."Platform" RENAME TO "Platform_old"', ["User_platform"]),
        ("Platform", 'DROP TABLE anchor."Platform"', ["User_platform"]),
    ],
)
def test_a_missing_table_whose_held_ids_are_unregistered_stops_instead_of_numbering_anew(
    tmp_path: Path, engine: str, name: str, how: str, holders: list[str]
) -> None:
    h = Harness(tmp_path)
    for rows in FULL:  # two loads: u5 is numbered first, u1 second
        h.deliver(rows)
        anchored(h)
    wanted = users(h.wh, h.plan)
    if engine == "postgres":  # where views, and the functions of their rows, depend on tables
        for entity in h.plan.entities:
            for view in ("latest", "history"):
                h.wh.execute(f'DROP VIEW IF EXISTS anchor."{entity}_{view}" CASCADE')
    h.wh.execute(f'DROP VIEW IF EXISTS anchor."{name}_latest"')  # so the table can be dropped
    h.wh.execute(how)
    # A registry that does not know the ids the holders hold (the table went missing before
    # the registry existed); with the ids registered, the table is rebuilt (test_stable_ids).
    h.wh.execute("DELETE FROM meta.anchor_keys WHERE table_name = ?", [name])
    before = anchor_tables(h.wh)

    for _ in range(2):  # every attempt stops the same way, and creates nothing
        with pytest.raises(ModelError) as stopped:
            ensure_tables(h.wh, h.plan)
        message = str(stopped.value)
        assert re.search(rf"anchor\.{name}(?!\w)", message), message  # the missing table
        for holder in holders:
            assert f"anchor.{holder}" in message, holder
        assert anchor_tables(h.wh) == before
        assert not h.wh.table_exists("anchor", name)

    # Restored under its name, the model is as it was.
    if "RENAME" in how:
        h.wh.execute(f'ALTER TABLE anchor."{name}_old" RENAME TO "{name}"')
        assert ensure_tables(h.wh, h.plan) == []
        anchored(h)
        assert users(h.wh, h.plan) == wanted
    h.close()


# -- B2, B3: loads removed, the stream's other loads read again ----------------------------------


def test_rollback_brings_back_an_entity_whose_other_loads_only_restated_it(
    tmp_path: Path,
    engine: str,
) -> None:
    first = [obs("u1", "d1", "DE", 1, plan="free", score=1, platform="ios")]
    second = [
        obs("u1", "d1", "DE", 5, plan="free", score=2, platform="ios"),  # restates u1
        obs("u2", "d2", "US", 5, plan="pro", score=7, platform="web"),
    ]
    root = tmp_path / "p"
    root.mkdir()
    h = Harness(root)
    deliver(h, first)
    deliver(h, second)
    anchored(h)
    h.close()

    with Pipeline(h.project) as pipeline:
        pipeline.rollback(1)
        pipeline.anchor()
        found = users(pipeline.warehouse, pipeline.plan)
        # u1's rows in load 2 were never stored (restatements): they are read again.
        assert found == [("u1", "DE", "free", 2, "ios"), ("u2", "US", "pro", 7, "web")]

        # The next run types load 1 again from raw: the model is the first one again.
        restage(pipeline.warehouse, 1, first)
        pipeline.anchor()
        assert users(pipeline.warehouse, pipeline.plan) == [
            ("u1", "DE", "free", 1, "ios"), ("u2", "US", "pro", 7, "web"),
        ]  # fmt: skip


def test_a_replaced_load_whose_observation_hid_a_restatement_leaves_the_clean_model(
    tmp_path: Path,
    engine: str,
) -> None:
    """Backfill (run.removal.replace_loads) removes the replaced load with reopen=[its models]."""
    first = [obs("u1", "d1", "DE", 1, score=1)]
    second = [obs("u1", "d1", "DE", 5, score=2), obs("u2", "d2", "US", 5, score=7)]
    replacement = [obs("u3", "d3", "FR", 1, score=3)]  # the new export lacks u1's event
    root = tmp_path / "p"
    root.mkdir()
    h = Harness(root)
    replaced = h.deliver(first)
    h.deliver(second)
    anchored(h)
    with h.wh.transaction():
        remove_loads(h.wh, h.plan, [replaced], reopen=["obs"])
        for log in ("staging.obs", "meta.transfers"):
            h.wh.execute(f"DELETE FROM {log} WHERE load_id = ?", [replaced])
    h.deliver(replacement)
    anchored(h)
    found = users(h.wh, h.plan)
    assert ("u1", "DE", None, 2, None) in found
    assert found == clean_run(tmp_path / "clean", [second, replacement])
    nothing_pending(h)
    h.close()


def test_rows_restored_into_an_anchored_load_by_a_backfill_are_anchored(
    tmp_path: Path, engine: str
) -> None:
    """Hours 1 and 2 both exported event E of u1; staging kept hour 1's copy. The backfill of
    hour 1 stages E again under load 2, which the anchor model already holds."""
    event = obs("u1", "d1", "DE", 1)
    root = tmp_path / "p"
    root.mkdir()
    h = Harness(root)
    replaced = h.deliver([event])
    h.deliver([obs("u2", "d2", "US", 2)])
    anchored(h)
    with h.wh.transaction():
        remove_loads(h.wh, h.plan, [replaced], reopen=["obs"])
        for log in ("staging.obs", "meta.transfers"):
            h.wh.execute(f"DELETE FROM {log} WHERE load_id = ?", [replaced])
        restage(h.wh, 2, [event])  # what _restore_orphans does
    h.deliver([])  # the replacement, without E
    anchored(h)
    assert users(h.wh, h.plan) == [("u1", "DE", None, None, None), ("u2", "US", None, None, None)]
    nothing_pending(h)
    h.close()


# -- B4, B5: more key columns for an entity, new columns for an entity or a knot -----------------


def with_referrer(anchor: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(anchor)
    changed["ties"]["User_Referrer"] = {
        "model": "obs",
        "roles": {"User": "user_id", "Referrer": {"entity": "User", "key": "referrer_id"}},
        "identifier": ["User"],
        "history": "scd2",
        "changed_at": "t",
    }
    return changed


def referrals(wh: Warehouse) -> list[tuple[Any, ...]]:
    return wh.query(
        'SELECT u.user_id, r.user_id FROM anchor."User_Referrer" AS t '
        'JOIN anchor."User" AS u ON u.id = t.user_id '
        'JOIN anchor."User" AS r ON r.id = t.referrer_id ORDER BY 1, 2'
    )


def user_keys(wh: Warehouse) -> list[str]:
    return [r[0] for r in wh.query('SELECT user_id FROM anchor."User" ORDER BY 1')]


def test_a_second_role_of_the_same_entity_from_the_same_model_gets_entity_rows(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(harness_module.OBS_COLUMNS, "referrer_id", "VARCHAR")
    h = Harness(tmp_path, anchor=with_referrer(ANCHOR))
    h.deliver([obs("u1", "d1", "DE", 1, referrer_id="u9")])  # u9 is only ever a referrer
    h.deliver([obs("u2", "d2", "US", 2, referrer_id="u1")])
    anchored(h)
    assert user_keys(h.wh) == ["u1", "u2", "u9"]
    assert referrals(h.wh) == [("u1", "u9"), ("u2", "u1")]
    again = h.anchor()
    assert not again.problems and again.inserted == 0
    nothing_pending(h)
    h.close()


def test_a_tie_added_later_reads_its_new_key_column_in_every_load(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(harness_module.OBS_COLUMNS, "referrer_id", "VARCHAR")
    h = Harness(tmp_path)
    h.deliver([obs("u1", "d1", "DE", 1, referrer_id="u9")])
    anchored(h)
    ids = h.wh.query('SELECT id, user_id FROM anchor."User" ORDER BY 1')
    h.close()

    h = Harness(tmp_path, anchor=with_referrer(ANCHOR))
    h.next_load = 2
    anchored(h)
    assert user_keys(h.wh) == ["u1", "u9"]
    assert referrals(h.wh) == [("u1", "u9")]
    assert h.wh.query('SELECT id, user_id FROM anchor."User" WHERE id <= 1') == ids  # kept
    nothing_pending(h)
    h.close()


def test_a_knotted_attribute_added_later_to_an_existing_knot_gets_its_values(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(harness_module.OBS_COLUMNS, "os", "VARCHAR")
    h = Harness(tmp_path)
    h.deliver([obs("u1", "d1", "DE", 1, platform="ios", os="web")])
    anchored(h)
    knot = h.wh.query('SELECT id, value FROM anchor."Platform" ORDER BY 1')
    assert [v for _, v in knot] == ["ios"]
    h.close()

    changed = copy.deepcopy(ANCHOR)
    changed["entities"]["User"]["attributes"]["os"] = {
        "model": "obs", "knot": "Platform", "history": "scd2",
    }  # fmt: skip
    h = Harness(tmp_path, anchor=changed)
    h.next_load = 2
    anchored(h)  # the already-anchored load, read again for the knot
    values = h.wh.query('SELECT id, value FROM anchor."Platform" ORDER BY 1')
    assert values[: len(knot)] == knot  # existing ids stay
    assert sorted(v for _, v in values) == ["ios", "web"]
    h.deliver([obs("u2", "d2", "US", 2, platform="web", os="android")])
    anchored(h)
    create_views(h.wh, h.plan)
    assert h.wh.query(
        'SELECT user_id, platform, os FROM anchor."User_latest" ORDER BY 1, 2, 3'
    ) == [
        ("u1", "ios", "web"),
        ("u2", "web", "android"),
    ]
    nothing_pending(h)
    h.close()


# -- B9: ids are never given twice ---------------------------------------------------------------


def given_ids(wh: Warehouse) -> dict[str, set[int]]:
    return {
        name: {r[0] for r in wh.query(f'SELECT id FROM anchor."{name}"')}
        for name in ("User", "Device", "Platform")
    }


def test_after_forget_of_the_highest_id_a_new_key_gets_a_new_id(
    tmp_path: Path, engine: str
) -> None:
    needs_pipeline(engine)  # forget runs the land and stage erasures
    h = Harness(tmp_path)
    h.deliver([obs("alice", "d1", "DE", 1), obs("zoe", "d9", "US", 1)])
    anchored(h)
    before = dict(h.wh.query('SELECT user_id, id FROM anchor."User"'))
    assert before["zoe"] == max(before.values())
    h.forget("User", ["zoe"])
    h.deliver([obs("bob", "d2", "FR", 2)])
    anchored(h)
    bob = h.wh.scalar("SELECT id FROM anchor.\"User\" WHERE user_id = 'bob'")
    assert bob not in before.values()
    assert bob > max(before.values())
    h.close()


def test_after_rollback_of_the_newest_keys_new_keys_get_new_ids(
    tmp_path: Path, engine: str
) -> None:
    h = Harness(tmp_path)
    deliver(h, [obs("alice", "d1", "DE", 1, platform="ios")])
    deliver(h, [obs("zoe", "d9", "US", 2, platform="web")])  # the highest ids of all three
    anchored(h)
    before = given_ids(h.wh)
    h.rollback(2)
    assert given_ids(h.wh) == {"User": {1}, "Device": {1}, "Platform": {1}}
    deliver(h, [obs("bob", "d2", "FR", 3, platform="android")])
    anchored(h)
    for name, ids in given_ids(h.wh).items():
        new = ids - {1}
        assert len(new) == 1 and not new & before[name], (name, new, before[name])
    h.close()


# -- B7: forget scrubs whole values only ---------------------------------------------------------


def test_forget_scrubs_whole_json_values_and_deletes_no_one_elses_rows(
    tmp_path: Path, engine: str
) -> None:
    needs_pipeline(engine)  # forget runs the land and stage erasures
    h = Harness(tmp_path)
    h.deliver([
        obs("1", "d1", "DE", 1, plan="free"),
        obs("josé", "d2", "US", 1, plan="pro"),
        obs("u21", "d3", "FR", 2, plan="free"),
    ])  # fmt: skip
    anchored(h)
    now = datetime(2024, 1, 1)
    details = {
        "ascii": json.dumps({"user": "josé", "note": "bad event"}),  # "jos\u00e9"
        "utf8": json.dumps({"user": "josé", "note": "x"}, ensure_ascii=False),
        "numbers": json.dumps({"load": 41, "rows": 1000, "other_user": "u21"}),
        "key_1": json.dumps({"user": "1", "text": "user 1 of 10"}),
    }
    for kind, detail in details.items():
        h.wh.execute(
            "INSERT INTO meta.alerts VALUES (?, ?, 'subject 1', ?, 'log', 'sent', 1, NULL)",
            [now, kind, detail],
        )
        h.wh.execute(
            "INSERT INTO meta.schema_events (event_id, kind, stream, model, field, detail, "
            "first_load_id, seen_at, status, alerted_at) VALUES "
            "((SELECT count(*) + 1 FROM meta.schema_events), ?, 'events', 'obs', 'f', ?, 1, ?, "
            "'new', NULL)",
            [kind, detail, now],
        )
    # u21's type error holds "free", an attribute value the forgotten user "1" shares with it.
    h.wh.execute(
        "INSERT INTO meta.type_errors VALUES (1, 'obs', 'score', 'f.json', 3, 'free', 'BIGINT')"
    )

    h.forget("User", ["1"])
    h.forget("User", ["josé"])

    wanted = {
        "ascii": {"user": "[erased]", "note": "bad event"},
        "utf8": {"user": "[erased]", "note": "x"},
        "numbers": {"load": 41, "rows": 1000, "other_user": "u21"},
        "key_1": {"user": "[erased]", "text": "user 1 of 10"},
    }
    wanted_text = {
        kind: json.dumps(value, ensure_ascii=kind != "utf8") for kind, value in wanted.items()
    }
    for log, column in (("meta.alerts", "details"), ("meta.schema_events", "detail")):
        found = dict(h.wh.query(f"SELECT kind, {column} FROM {log}"))
        assert found == wanted_text, log  # other text exactly as it was
    assert h.wh.query("SELECT value FROM meta.type_errors") == [("free",)]
    assert users(h.wh, h.plan) == [("u21", "FR", "free", None, None)]
    h.close()
