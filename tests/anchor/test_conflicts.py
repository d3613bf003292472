"""Same-instant conflicts (two values for one key at one instant): the largest value wins
whatever the batching, every conflict is in `meta.anchor_conflicts` once, alerted once, and
scrubbed by forget and rollback; and a batch larger than `anchor.batch_rows` loads in passes
to exactly the same tables."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from anchorflow import journal
from anchorflow.anchor.step import AnchorStep
from anchorflow.anchor.views import create_views
from anchorflow.run import Pipeline
from tests.anchor.harness import ANCHOR, Harness
from tests.anchor.test_properties import TABLES, at, device_users, latest, obs
from tests.receiver import Receiver, running_receiver

pytestmark = pytest.mark.integration

receiver = pytest.fixture(running_receiver)


@contextmanager
def harness(**anchor: Any) -> Iterator[Harness]:
    with tempfile.TemporaryDirectory() as root:
        h = Harness(Path(root), {**ANCHOR, **anchor} if anchor else None)
        try:
            yield h
        finally:
            h.close()


def anchored(h: Harness) -> None:
    run = h.anchor()
    assert run.problems == []


def country_rows(h: Harness) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in h.wh.query(
            'SELECT u.user_id, a.value, a.changed_at, a.load_id FROM anchor."User_country" AS a '
            'JOIN anchor."User" AS u ON u.id = a.id ORDER BY 1, 3'
        )
    ]


def conflicts(h: Harness, target: str = "User_country") -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in h.wh.query(
            "SELECT value, changed_at, load_id, kept, alerted FROM meta.anchor_conflicts "
            "WHERE target = ? ORDER BY value, load_id",
            [target],
        )
    ]


@pytest.mark.parametrize("batching", ["one load", "smaller first", "larger first"])
def test_the_largest_value_wins_whatever_the_batching(engine: str, batching: str) -> None:
    de, us = obs("u1", 1, country="DE"), obs("u1", 1, country="US")
    with harness() as h:
        if batching == "one load":
            h.deliver([us, de])
        else:
            h.deliver([de] if batching == "smaller first" else [us])
            anchored(h)
            h.deliver([us] if batching == "smaller first" else [de])
        anchored(h)
        us_load = 1 if batching != "smaller first" else 2
        assert country_rows(h) == [("u1", "US", at(1), us_load)]
        found = conflicts(h)
        assert [(v, t, kept) for v, t, _, kept, _ in found] == [
            ("DE", at(1), False), ("US", at(1), True)
        ]  # fmt: skip
        assert next(r[2] for r in found if r[0] == "US") == us_load


def test_a_larger_unstored_restatement_from_an_older_load_still_wins(engine: str) -> None:
    """US@1 and US@3 (a restatement, not stored); a later DE@3 loses to the re-read US@3."""
    with harness() as h:
        h.deliver([obs("u1", 1, country="US"), obs("u1", 3, country="US")])
        anchored(h)
        h.deliver([obs("u1", 3, country="DE")])
        anchored(h)
        assert country_rows(h) == [("u1", "US", at(1), 1)]
        create_views(h.wh, h.plan)
        assert latest(h)["u1"][0] == "US"
        assert [(v, load, kept) for v, _, load, kept, _ in conflicts(h)] == [
            ("DE", 2, False), ("US", 1, True)
        ]  # fmt: skip


def test_a_stored_loser_is_replaced_and_the_history_after_it_kept(engine: str) -> None:
    with harness() as h:
        h.deliver([obs("u1", 1, country="FR"), obs("u1", 2, country="DE"),
                   obs("u1", 3, country="FR")])  # fmt: skip
        anchored(h)
        h.deliver([obs("u1", 2, country="US")])
        anchored(h)
        assert country_rows(h) == [
            ("u1", "FR", at(1), 1), ("u1", "US", at(2), 2), ("u1", "FR", at(3), 1)
        ]  # fmt: skip


def test_knot_and_tie_conflicts_order_by_natural_value_not_by_id(engine: str) -> None:
    """ios gets the knot's id 1 and u2 the entity id 1; they win by their value (ios > android,
    u2 > u1), whichever ids they got."""
    with harness() as h:
        h.deliver([obs("u2", 1, "d1", platform="ios")])
        anchored(h)
        h.deliver([obs("u1", 1, "d1", platform="android"), obs("u2", 1, platform="android")])
        anchored(h)
        create_views(h.wh, h.plan)
        assert latest(h)["u2"][3] == "ios"
        assert device_users(h, None) == {"d1": "u2"}
        assert [kept for *_, kept, _ in conflicts(h, "Device_User")] == [True, False]


def test_conflicts_are_recorded_once_and_alerted_once(engine: str) -> None:
    heard: list[dict[str, int]] = []
    with harness() as h:
        step = AnchorStep(h.project, h.plan, journal.utcnow, on_conflicts=heard.append)
        h.deliver([obs("u1", 1, country="DE"), obs("u1", 1, country="US")])
        step.run(h.wh)
        assert heard == [{"User_country": 1}]
        h.deliver([obs("u1", 0, country="FR")])  # late: re-reads load 1's conflict
        step.run(h.wh)
        assert heard == [{"User_country": 1}]
        assert len(conflicts(h)) == 2
        assert all(alerted for *_, alerted in conflicts(h))
        h.deliver([obs("u2", 5, country="DE"), obs("u2", 5, country="FR")])
        step.run(h.wh)
        assert heard == [{"User_country": 1}, {"User_country": 1}]


def test_forget_and_rollback_scrub_the_conflicts(engine: str) -> None:
    with harness() as h:
        h.deliver([obs("u1", 1, "d1", country="DE"), obs("u2", 1, "d1", country="DE")])
        h.deliver([obs("u1", 1, country="US"), obs("u2", 1, country="US")])
        anchored(h)
        assert len(conflicts(h)) == 4
        assert len(conflicts(h, "Device_User")) == 2
        h.forget("User", ["u1"])
        assert len(conflicts(h)) == 2
        users = [value for value, *_ in conflicts(h, "Device_User")]  # the users' ids
        u2 = h.wh.scalar("SELECT id FROM anchor.\"User\" WHERE user_id = 'u2'")
        assert users == [str(u2)]  # u1's row is gone
        AnchorStep(h.project, h.plan, journal.utcnow).remove(h.wh, [2], reattribute=False)
        assert [load for _, _, load, *_ in conflicts(h)] == [1]


def snapshot(h: Harness) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for name in TABLES:
        rows = h.wh.query(f'SELECT * FROM anchor."{name}"')
        audit = name in ("User", "Device", "Platform")  # (loaded_at, last: the run's time)
        found[name] = sorted(tuple(r[:-1] if audit else r) for r in rows)
    return found


def test_a_batch_over_batch_rows_loads_in_passes_to_the_same_tables(engine: str) -> None:
    users = [f"u{i}" for i in range(12)]
    first = [
        obs(u, h, f"d{(i + h) % 4}", country=("DE", "US", "FR")[(i * h) % 3],
            plan=("free", "pro")[h % 2], score=i + h, platform=("ios", "android")[i % 2])
        for i, u in enumerate(users) for h in range(0, 8, 2)
    ]  # fmt: skip
    late = [obs(u, 3, country="US") for u in users[::2]] + [obs("u1", 2, country="ZZ")]
    found = []
    for batch_rows in (None, 7):
        with harness(**({"batch_rows": batch_rows} if batch_rows else {})) as h:
            h.deliver(first)
            h.deliver(first[:10])
            anchored(h)
            h.deliver(late)
            anchored(h)
            found.append((snapshot(h), conflicts(h)))
    assert found[0] == found[1]
    assert found[0][0]["User_country"]


def test_the_pipeline_alerts_new_conflicts_once_without_their_values(
    tmp_path: Path, engine: str, receiver: Receiver
) -> None:
    h = Harness(tmp_path, alerts=[{"kind": "webhook", "url": receiver.url}])
    try:
        h.deliver([obs("u1", 1, country="DE"), obs("u1", 1, country="US")])
    finally:
        h.close()
    for _ in range(2):
        with Pipeline(h.project) as pipeline:
            pipeline.anchor()
    bodies = [b for b in receiver.delivered if b["kind"] == "anchor_conflicts"]
    assert len(bodies) == 1
    assert bodies[0]["details"]["tables"] == {"User_country": 1}
    assert "DE" not in str(bodies[0]) and "US" not in str(bodies[0])
