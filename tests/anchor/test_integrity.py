"""A table whose integrity check fails after a load is rolled back alone: its rows and transfer
log stay as they were, every other table still loads, the run names it, an `anchor_integrity`
alert goes out over real HTTP, and the command exits 1 with one line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from anchorflow.errors import IntegrityError
from anchorflow.run import Pipeline
from anchorflow.warehouse import Warehouse
from tests.anchor.harness import Harness
from tests.anchor.pipeline_project import rows, snapshot
from tests.receiver import Receiver, running_receiver
from tests.test_cli import cli

pytestmark = pytest.mark.integration

receiver = pytest.fixture(running_receiver)

T0 = datetime(2024, 3, 1)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


FIRST = [
    {"user_id": "u1", "device_id": "d1", "country": "DE", "plan": "free", "score": 1,
     "platform": "iOS", "t": at(0)},
    {"user_id": "u2", "device_id": "d2", "country": "FR", "plan": "free", "score": 2,
     "platform": "Web", "t": at(1)},
]  # fmt: skip
SECOND = [  # touches u1 and d1 again, and brings u3
    {"user_id": "u1", "device_id": "d1", "country": "AT", "plan": "pro", "score": 3,
     "platform": "iOS", "t": at(30)},
    {"user_id": "u3", "device_id": "d3", "country": "DE", "plan": "free", "score": 4,
     "platform": "Android", "t": at(31)},
]  # fmt: skip


def entity_id(wh: Warehouse, entity: str, key_column: str, key: str) -> int:
    return int(wh.scalar(f'SELECT id FROM anchor."{entity}" WHERE "{key_column}" = ?', [key]))


def duplicate_country(wh: Warehouse) -> tuple[str, str]:
    """A second User_country row for u1 at the instant it already has one."""
    u1 = entity_id(wh, "User", "user_id", "u1")
    wh.execute("INSERT INTO anchor.\"User_country\" VALUES (?, 'XX', ?, 1)", [u1, at(0)])
    return "User_country", "anchor.User_country: 1 duplicate (id, changed_at)"


def orphan_partner(wh: Warehouse) -> tuple[str, str]:
    """A Device_User row for d1 whose user is in no anchor.User row."""
    d1 = entity_id(wh, "Device", "device_id", "d1")
    wh.execute('INSERT INTO anchor."Device_User" VALUES (?, 999, ?, 1)', [d1, at(-5)])
    return "Device_User", "anchor.Device_User: 1 row(s) point at no User"


def repair_country(wh: Warehouse) -> None:
    wh.execute("DELETE FROM anchor.\"User_country\" WHERE value = 'XX'")


def repair_partner(wh: Warehouse) -> None:
    wh.execute('DELETE FROM anchor."Device_User" WHERE user_id = 999')


TAMPERS = [  # one serial, one on three worker connections
    pytest.param(duplicate_country, repair_country, 1, id="duplicate-id-changed_at"),
    pytest.param(orphan_partner, repair_partner, 3, id="id-not-in-the-anchor-parallel"),
]


def clean_model(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    root.mkdir()
    h = Harness(root)
    for batch in (FIRST, SECOND):
        h.deliver(batch)
        assert not h.anchor().problems
    h.close()
    return snapshot(h.project)


def transfers(h: Harness, load_id: int) -> set[str]:
    found = h.wh.query("SELECT target FROM meta.anchor_transfers WHERE load_id = ?", [load_id])
    return {str(r[0]) for r in found}


def anchor_rows(h: Harness, name: str) -> list[tuple[Any, ...]]:
    return sorted(h.wh.query(f'SELECT * FROM anchor."{name}"'), key=repr)


@pytest.mark.parametrize(("tamper", "repair", "parallel"), TAMPERS)
def test_a_table_failing_its_check_is_rolled_back_alone_and_loads_once_repaired(
    tmp_path: Path,
    engine: str,
    tamper: Callable[[Warehouse], tuple[str, str]],
    repair: Callable[[Warehouse], None],
    parallel: int,
) -> None:
    clean = clean_model(tmp_path / "clean")
    (tmp_path / "p").mkdir()
    h = Harness(tmp_path / "p")
    try:
        h.deliver(FIRST)
        assert not h.anchor(parallel).problems
        every = transfers(h, 1)
        broken, problem = tamper(h.wh)
        tampered = anchor_rows(h, broken)

        h.deliver(SECOND)
        run = h.anchor(parallel)
        assert run.problems == [problem]
        assert [t.table for t in run.targets if t.problem] == [broken]
        assert anchor_rows(h, broken) == tampered  # the new load's rows are not there
        assert transfers(h, 2) == every - {broken}  # every other table took the load
        loaded = {t.table for t in run.targets if t.loads}
        assert loaded == every - {broken}
        plan = h.wh.query('SELECT e.user_id, a.value FROM anchor."User_plan" AS a '
                          'JOIN anchor."User" AS e USING (id) ORDER BY 1, 2')  # fmt: skip
        assert plan == [("u1", "free"), ("u1", "pro"), ("u2", "free"), ("u3", "free")]

        # Nothing repaired: the load stays pending for that table and fails the same way.
        again = h.anchor(parallel)
        assert again.problems == [problem]
        assert {t.table for t in again.targets if t.loads} == set()
        assert anchor_rows(h, broken) == tampered

        repair(h.wh)
        fixed = h.anchor(parallel)
        assert not fixed.problems
        assert {t.table for t in fixed.targets if t.loads} == {broken}
    finally:
        h.close()
    assert snapshot(h.project) == clean


def test_the_pipeline_alerts_over_http_and_the_cli_exits_1_with_one_line(
    tmp_path: Path, engine: str, receiver: Receiver
) -> None:
    h = Harness(tmp_path, alerts=[{"kind": "webhook", "url": receiver.url}])
    try:
        h.deliver(FIRST)
        assert not h.anchor().problems
        _, problem = duplicate_country(h.wh)
        h.deliver(SECOND)
    finally:
        h.close()
    path = h.project

    with Pipeline(h.project) as pipeline, pytest.raises(IntegrityError) as raised:
        pipeline.anchor()
    message = str(raised.value)
    assert "\n" not in message and message.startswith(problem + " (")
    bodies = {b["kind"]: b for b in receiver.delivered}
    assert set(bodies) == {"anchor_integrity", "run_failed"}
    assert bodies["anchor_integrity"]["details"]["problems"] == [problem]
    assert bodies["anchor_integrity"]["project"] == "anchor_test"
    assert rows(path, "SELECT command, status FROM meta.runs") == [("anchor", "failed")]
    assert rows(path, "SELECT kind, status FROM meta.alerts ORDER BY 1, 2") == [
        ("anchor_integrity", "delivered"), ("run_failed", "delivered")
    ]  # fmt: skip
    assert rows(path, "SELECT count(*) FROM meta.anchor_transfers WHERE load_id = 2 "
                      "AND target = 'User_country'") == [(0,)]  # fmt: skip
    assert rows(path, "SELECT count(*) FROM meta.anchor_transfers WHERE load_id = 2 "
                      "AND target = 'User_plan'") == [(1,)]  # fmt: skip

    ran = cli("anchor", "--project", str(tmp_path))
    assert ran.returncode == 1, ran.stdout + ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {problem} ("), ran.stderr
    assert "Traceback" not in ran.stdout + ran.stderr
    kinds = [b["kind"] for b in receiver.delivered]
    assert kinds.count("anchor_integrity") == 2  # one from the subprocess too
    assert rows(path, "SELECT count(*) FROM meta.anchor_transfers WHERE load_id = 2 "
                      "AND target = 'User_country'") == [(0,)]  # fmt: skip

    # Repaired by hand, the same step goes through.
    with Pipeline(h.project) as pipeline:
        repair_country(pipeline.warehouse)
        fixed = pipeline.anchor()
    assert [t.table for t in fixed.targets if t.loads] == ["User_country"]
    assert rows(path, "SELECT kind FROM meta.alerts ORDER BY 1") == [
        ("anchor_integrity",), ("anchor_integrity",), ("run_failed",), ("run_failed",)
    ]  # fmt: skip
