"""Property tests of the anchor loader against a plain-Python model of its semantics.

A scenario is a set of observations (a few users, each with its own change history, some
attributes NULL in some rows, sometimes two values at one instant), delivered in random batches
in random order, with batches delivered again as new loads and rows repeated within a batch, and
the anchor step run after some deliveries (on one or two connections) and always at the end.

The reference model (`Reference`) says what the perspectives must show (two values at one
instant: the largest is the observation, whatever loads brought them):

- scd2 (country, platform): the history is the observations in time order with restatements
  removed; the value as of T is that of the last observation at or before T.
- scd1 (plan): the latest value at any T; `_history` shows its changes like scd2.
- scd0 (score): the earliest observation's value, once it exists; `_history` shows that one row.
- Device_User (a device's user, scd2) like an scd2 attribute keyed by device; User_Device (all
  roles identify) the devices a user was seen with at or before T.
- Existence: an entity is listed as of T only if it was known at T: one of its attributes or
  ties held a value dated at or before T. `_latest` lists every entity, known or key-only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anchorflow.anchor.query import run_query
from anchorflow.anchor.views import create_views
from tests.anchor.harness import Harness

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1)
SCD2 = ("country", "platform")
ATTRIBUTES = ("country", "plan", "score", "platform")
TABLES = (
    "User", "Device", "Platform", "User_country", "User_plan", "User_score", "User_platform",
    "Device_User", "User_Device",
)  # fmt: skip

USERS = ("u1", "u2", "u3", "u4")
DEVICES = ("d1", "d2", "d3")
VALUES: dict[str, tuple[Any, ...]] = {
    "country": ("DE", "US"),
    "plan": ("free", "pro"),
    "score": (1, 2, 3),
    "platform": ("ios", "android"),
}

PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# -- the reference model --------------------------------------------------------------------------


def compress(points: list[tuple[datetime, Any]]) -> list[tuple[datetime, Any]]:
    """Observations in time order without restatements: the change points."""
    out: list[tuple[datetime, Any]] = []
    for t, value in sorted(points, key=lambda p: p[0]):
        if not out or out[-1][1] != value:
            out.append((t, value))
    return out


def last_at(points: list[tuple[datetime, Any]], when: datetime | None) -> Any:
    """The value of the last observation at or before `when` (any time when None)."""
    chosen = [p for p in points if when is None or p[0] <= when]
    return max(chosen, key=lambda p: p[0])[1] if chosen else None


def largest(points: set[tuple[datetime, Any]]) -> list[tuple[datetime, Any]]:
    """Per instant, the largest value (the conflict rule), in time order."""
    found: dict[datetime, Any] = {}
    for t, value in points:
        found[t] = value if t not in found else max(found[t], value)
    return sorted(found.items())


@dataclass
class Reference:
    rows: list[dict[str, Any]]
    users: set[str] = field(init=False)
    devices: set[str] = field(init=False)
    observed: dict[tuple[str, str], list[tuple[datetime, Any]]] = field(init=False)
    device_user: dict[str, list[tuple[datetime, str]]] = field(init=False)
    user_device: dict[tuple[str, str], datetime] = field(init=False)
    known: dict[str, datetime] = field(init=False)  # entity key → its first dated value

    def __post_init__(self) -> None:
        self.users = {r["user_id"] for r in self.rows if r["user_id"] is not None}
        self.devices = {r["device_id"] for r in self.rows if r["device_id"] is not None}
        observed: dict[tuple[str, str], set[tuple[datetime, Any]]] = {}
        device_user: dict[str, set[tuple[datetime, str]]] = {}
        self.user_device = {}
        for r in self.rows:
            if r["user_id"] is None or r["t"] is None:  # an entity's key, not an observation
                continue
            for a in ATTRIBUTES:
                if r[a] is not None:
                    observed.setdefault((r["user_id"], a), set()).add((r["t"], r[a]))
            if r["device_id"] is not None:
                device_user.setdefault(r["device_id"], set()).add((r["t"], r["user_id"]))
                pair = (r["user_id"], r["device_id"])
                self.user_device[pair] = min(self.user_device.get(pair, r["t"]), r["t"])
        self.observed = {k: largest(v) for k, v in observed.items()}
        self.device_user = {k: largest(v) for k, v in device_user.items()}
        self.known = {}
        for (user, _), points in self.observed.items():
            self.known[user] = min(self.known.get(user, points[0][0]), points[0][0])
        for (user, device), t in self.user_device.items():
            for key in (user, device):
                self.known[key] = min(self.known.get(key, t), t)

    def value(self, user: str, attribute: str, when: datetime | None) -> Any:
        points = self.observed.get((user, attribute), [])
        if not points:
            return None
        if attribute == "score":  # scd0: the first value, once it exists
            first_t, first = points[0]
            return first if when is None or first_t <= when else None
        if attribute == "plan":  # scd1: the latest value whatever the instant
            return last_at(points, None)
        return last_at(points, when)

    def known_at(self, key: str, when: datetime | None) -> bool:
        return when is None or (key in self.known and self.known[key] <= when)

    def users_at(self, when: datetime | None) -> dict[str, tuple[Any, ...]]:
        return {
            u: tuple(self.value(u, a, when) for a in ATTRIBUTES)
            for u in self.users
            if self.known_at(u, when)
        }

    def history(self) -> set[tuple[str, str, str, datetime]]:
        out = set()
        for (user, attribute), points in self.observed.items():
            kept = points[:1] if attribute == "score" else compress(points)
            out |= {(user, attribute, str(v), t) for t, v in kept}
        return out

    def device_users_at(self, when: datetime | None) -> dict[str, str | None]:
        return {
            d: last_at(self.device_user.get(d, []), when)
            for d in self.devices
            if self.known_at(d, when)
        }

    def user_devices_at(self, when: datetime | None) -> dict[str, list[str] | None]:
        out: dict[str, list[str] | None] = {}
        for user in self.users:
            if not self.known_at(user, when):
                continue
            seen = [d for (u, d), t in self.user_device.items() if u == user]
            seen = [d for d in seen if when is None or self.user_device[user, d] <= when]
            out[user] = sorted(seen) or None
        return out

    def instants(self) -> list[datetime]:
        """Before everything, at every observation, between observations, after everything."""
        times = sorted({r["t"] for r in self.rows if r["t"] is not None})
        if not times:
            return [at(0)]
        half = timedelta(minutes=30)
        return [times[0] - half, *times, *(t + half for t in times)]


# -- what the warehouse shows ---------------------------------------------------------------------


@contextmanager
def harness() -> Iterator[Harness]:
    with tempfile.TemporaryDirectory() as root:
        h = Harness(Path(root))
        try:
            yield h
        finally:
            h.close()


def anchor(h: Harness, parallel: int = 1) -> None:
    run = h.anchor(parallel=parallel)
    assert run.problems == []


def counts(h: Harness) -> dict[str, int]:
    return {name: h.wh.scalar(f'SELECT count(*) FROM anchor."{name}"') for name in TABLES}


def latest(h: Harness) -> dict[str, tuple[Any, ...]]:
    rows = h.wh.query(f'SELECT user_id, {", ".join(ATTRIBUTES)} FROM anchor."User_latest"')
    return {r[0]: tuple(r[1:]) for r in rows}


def as_of(h: Harness, instants: list[datetime]) -> dict[datetime, dict[str, tuple[Any, ...]]]:
    """Every instant in one statement: a UNION ALL of the table macro."""
    columns = ", ".join(ATTRIBUTES)
    sql = " UNION ALL ".join(
        f"SELECT {i} AS n, user_id, {columns} FROM anchor.\"User_as_of\"(TIMESTAMP '{t}')"
        for i, t in enumerate(instants)
    )
    out: dict[datetime, dict[str, tuple[Any, ...]]] = {t: {} for t in instants}
    for n, user, *values in h.wh.query(sql):
        out[instants[n]][user] = tuple(values)
    return out


def history(h: Harness) -> set[tuple[str, str, str, datetime]]:
    rows = h.wh.query(
        'SELECT u.user_id, h.attribute, h.value, h.changed_at FROM anchor."User_history" AS h '
        'JOIN anchor."User" AS u ON u.id = h.id'
    )
    found = [tuple(r) for r in rows]
    assert len(found) == len(set(found)), "a change shown twice"
    return set(found)


def natural(h: Harness, entity: str, key: str) -> dict[int, str]:
    return dict(h.wh.query(f'SELECT id, {key} FROM anchor."{entity}"'))


def device_users(h: Harness, when: datetime | None) -> dict[str, str | None]:
    users = natural(h, "User", "user_id")
    rows = run_query(h.wh, h.plan, "Device", [], ["Device_User"], as_of=when).to_pylist()
    return {
        r["device_id"]: None if r["Device_User"] is None else users[r["Device_User"]] for r in rows
    }


def user_devices(h: Harness, when: datetime | None) -> dict[str, list[str] | None]:
    devices = natural(h, "Device", "device_id")
    rows = run_query(h.wh, h.plan, "User", [], ["User_Device"], as_of=when).to_pylist()
    return {r["user_id"]: sorted_keys(devices, r["User_Device"]) for r in rows}


def sorted_keys(keys: dict[int, str], ids: list[int] | None) -> list[str] | None:
    return None if ids is None else sorted(keys[i] for i in ids)


def snapshot(h: Harness, ref: Reference, tie_instants: list[datetime]) -> dict[str, Any]:
    """Everything the perspectives show, by natural key (surrogate ids depend on load order)."""
    create_views(h.wh, h.plan)
    return {
        "latest": latest(h),
        "as_of": as_of(h, ref.instants()),
        "history": history(h),
        "device_user": {t: device_users(h, t) for t in [None, *tie_instants]},
        "user_device": {t: user_devices(h, t) for t in [None, *tie_instants]},
    }


def expected(ref: Reference, tie_instants: list[datetime]) -> dict[str, Any]:
    return {
        "latest": ref.users_at(None),
        "as_of": {t: ref.users_at(t) for t in ref.instants()},
        "history": ref.history(),
        "device_user": {t: ref.device_users_at(t) for t in [None, *tie_instants]},
        "user_device": {t: ref.user_devices_at(t) for t in [None, *tie_instants]},
    }


def assert_matches(found: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Part by part, so a failure names the perspective and the instant."""
    assert found["latest"] == wanted["latest"]
    for t, rows in wanted["as_of"].items():
        assert (t, found["as_of"][t]) == (t, rows)
    missing = wanted["history"] - found["history"]
    extra = found["history"] - wanted["history"]
    assert (missing, extra) == (set(), set())
    for part in ("device_user", "user_device"):
        for t, rows in wanted[part].items():
            assert (part, t, found[part][t]) == (part, t, rows)


# -- scenarios ------------------------------------------------------------------------------------


@dataclass
class Step:
    batch: int
    repeat: bool  # the batch was delivered before: this is the same rows as a new load
    anchor_after: int  # 0: not now, else the anchor step on this many connections
    check_idempotent: bool  # a repeat anchored alone: it must insert nothing


@dataclass
class Scenario:
    rows: list[dict[str, Any]]
    batches: list[list[dict[str, Any]]]
    steps: list[Step]
    final_parallel: int


def row(draw: st.DrawFn, user: str | None, hour: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"user_id": user, "t": None if hour is None else at(hour)}
    for name, choices in VALUES.items():
        out[name] = draw(st.sampled_from((None, *choices)))
    out["device_id"] = draw(st.sampled_from((None, *DEVICES)))
    return out


@st.composite
def observations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A few users, each with rows at distinct instants (hours 0..11), few values so that
    restatements and returns to an earlier value are common; and a little noise: rows without
    an instant or without a user (they bring entities, not observations); sometimes a second row
    of the same user and instant carrying some of the same values or other ones (a same-instant
    conflict: the largest value wins), and devices seen with two users at one instant (a
    conflict of the tie)."""
    users = draw(st.lists(st.sampled_from(USERS), min_size=2, max_size=4, unique=True))
    rows: list[dict[str, Any]] = []
    for user in users:
        hours = draw(st.lists(st.integers(0, 11), min_size=1, max_size=7, unique=True))
        for hour in hours:
            rows.append(row(draw, user, hour))
            if draw(st.integers(0, 4)) == 0:  # another row of the same instant
                again = row(draw, user, hour)
                rows.append(
                    {k: v if k in ("user_id", "t") or draw(st.booleans()) else again[k]
                     for k, v in rows[-1].items()}
                )  # fmt: skip
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            rows.append(row(draw, draw(st.sampled_from(USERS)), None))
        else:
            rows.append(row(draw, None, draw(st.integers(0, 11))))
    return rows


@st.composite
def deliveries(draw: st.DrawFn, rows: list[dict[str, Any]]) -> Scenario:
    shuffled = draw(st.permutations(rows))
    cuts = draw(st.lists(st.integers(1, max(1, len(rows) - 1)), max_size=3, unique=True))
    bounds = [0, *sorted(c for c in cuts if c < len(rows)), len(rows)]
    batches = []
    for low, high in pairwise(bounds):
        batch = list(shuffled[low:high])
        copies = draw(st.lists(st.integers(0, len(batch) - 1), max_size=2)) if batch else []
        batch += [dict(batch[i]) for i in copies]  # the same observation twice in one load
        batches.append(draw(st.permutations(batch)))
    order = draw(st.permutations(range(len(batches))))
    steps: list[Step] = []
    delivered: list[int] = []
    for index in order:
        steps.append(Step(index, False, draw(st.sampled_from([0, 1, 1, 2])), False))
        delivered.append(index)
        for again in draw(st.lists(st.sampled_from(delivered), max_size=1)):
            checked = draw(st.booleans())
            steps.append(Step(again, True, draw(st.sampled_from([0, 1, 2])), checked))
    return Scenario(rows, batches, steps, draw(st.sampled_from([1, 2])))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    return draw(deliveries(draw(observations())))


def play(h: Harness, scenario: Scenario) -> None:
    for step in scenario.steps:
        if step.check_idempotent:
            anchor(h)
            before = counts(h)
        h.deliver(scenario.batches[step.batch])
        if step.check_idempotent:
            anchor(h, step.anchor_after or 1)
            assert counts(h) == before, f"a repeat of batch {step.batch} inserted rows"
        elif step.anchor_after:
            anchor(h, step.anchor_after)
    anchor(h, scenario.final_parallel)


def tie_instants(ref: Reference) -> list[datetime]:
    """A few instants for the tie queries (one statement each): the ends and two between."""
    instants = ref.instants()
    return sorted({instants[0], instants[len(instants) // 3], instants[-len(instants) // 3],
                   instants[-1]})  # fmt: skip


# Examples per engine: a PostgreSQL example makes a database and many more round trips. (30 on
# DuckDB, not 40, since the anchor step runs on Spark too: CI time; hypothesis draws new ones
# every run.)
EXAMPLES = {"duckdb": 30, "postgres": 8}


def for_examples(engine: str, strategy: Any, check: Any, share: float = 1.0) -> None:
    """Run `check` over `strategy`'s examples, as many as the engine affords (times `share`)."""
    count = max(2, int(EXAMPLES.get(engine, 40) * share))
    settings(PROPERTY_SETTINGS, max_examples=count)(given(strategy)(check))()


def check_perspectives(scenario: Scenario) -> None:
    ref = Reference(scenario.rows)
    with harness() as h:
        play(h, scenario)
        assert_matches(snapshot(h, ref, tie_instants(ref)), expected(ref, tie_instants(ref)))


def test_perspectives_match_the_reference_model(engine: str) -> None:
    for_examples(engine, scenarios(), check_perspectives)


@st.composite
def two_deliveries(draw: st.DrawFn) -> tuple[Scenario, Scenario]:
    rows = draw(observations())
    return draw(deliveries(rows)), draw(deliveries(rows))


def check_arrival(pair: tuple[Scenario, Scenario]) -> None:
    first, second = pair
    ref = Reference(first.rows)
    instants = tie_instants(ref)
    found = []
    for scenario in (first, second):
        with harness() as h:
            play(h, scenario)
            found.append(snapshot(h, ref, instants))
    assert found[0] == found[1]
    assert_matches(found[0], expected(ref, instants))


def test_results_do_not_depend_on_how_observations_arrive(engine: str) -> None:
    """Two deliveries of the same observations (other batches, order, repeats, connections) give
    the same perspectives, and both match the reference model."""
    for_examples(engine, two_deliveries(), check_arrival, share=0.25)


# -- out-of-order examples ------------------------------------------------------------------------


def obs(user: str, hour: float, device: str | None = None, **values: Any) -> dict[str, Any]:
    return {"user_id": user, "device_id": device, "t": at(hour), **values}


def inserted_into(h: Harness, name: str) -> int:
    run = h.anchor()
    assert run.problems == []
    return int(next(t.inserted for t in run.targets if t.table == name))


def attribute_history(h: Harness, attribute: str) -> list[tuple[str, str, datetime]]:
    create_views(h.wh, h.plan)
    return [
        tuple(r)
        for r in h.wh.query(
            'SELECT u.user_id, h.value, h.changed_at FROM anchor."User_history" AS h '
            'JOIN anchor."User" AS u ON u.id = h.id WHERE h.attribute = ? '
            "ORDER BY u.user_id, h.changed_at",
            [attribute],
        )
    ]


def user_as_of(h: Harness, when: datetime) -> dict[str, tuple[Any, ...]]:
    create_views(h.wh, h.plan)
    return as_of(h, [when])[when]


def test_late_change_between_two_equal_values(engine: str) -> None:
    """DE@1, then DE@3 (a restatement, not stored), then a late US@2: DE is in force again at 3,
    so the history is DE@1, US@2, DE@3."""
    with harness() as h:
        h.deliver([obs("u1", 1, country="DE")])
        assert inserted_into(h, "User_country") == 1
        h.deliver([obs("u1", 3, country="DE")])
        assert inserted_into(h, "User_country") == 0
        h.deliver([obs("u1", 2, country="US")])
        anchor(h)
        assert attribute_history(h, "country") == [
            ("u1", "DE", at(1)), ("u1", "US", at(2)), ("u1", "DE", at(3))
        ]  # fmt: skip
        assert latest(h)["u1"][0] == "DE"
        assert user_as_of(h, at(2.5))["u1"][0] == "US"
        assert user_as_of(h, at(3))["u1"][0] == "DE"


def test_late_first_value_replaces_the_scd0_value(engine: str) -> None:
    """score 5@3 is stored; a later-loaded 7@1 is the first value from then on."""
    with harness() as h:
        h.deliver([obs("u1", 3, score=5)])
        anchor(h)
        create_views(h.wh, h.plan)
        assert latest(h)["u1"][2] == 5
        h.deliver([obs("u1", 1, score=7), obs("u1", 4, score=9)])
        assert inserted_into(h, "User_score") == 1
        assert latest(h)["u1"][2] == 7
        assert user_as_of(h, at(2))["u1"][2] == 7
        assert "u1" not in user_as_of(h, at(0.5))  # not known yet at 0.5
        assert attribute_history(h, "score") == [("u1", "7", at(1))]


def test_late_restatement_adds_nothing(engine: str) -> None:
    """DE@1, US@3 stored; a late DE@2 restates the value in force at 2."""
    with harness() as h:
        h.deliver([obs("u1", 1, country="DE"), obs("u1", 3, country="US")])
        assert inserted_into(h, "User_country") == 2
        before = counts(h)
        h.deliver([obs("u1", 2, country="DE")])
        assert inserted_into(h, "User_country") == 0
        assert counts(h) == before
        assert attribute_history(h, "country") == [("u1", "DE", at(1)), ("u1", "US", at(3))]
        assert user_as_of(h, at(2.5))["u1"][0] == "DE"


def test_scd1_as_of_is_the_latest_value(engine: str) -> None:
    with harness() as h:
        h.deliver([obs("u1", 3, plan="pro")])
        anchor(h)
        h.deliver([obs("u1", 1, plan="free")])  # late: a change before the stored one
        anchor(h)
        create_views(h.wh, h.plan)
        assert latest(h)["u1"][1] == "pro"
        assert "u1" not in user_as_of(h, at(0))  # not known yet
        for hour in (1, 2, 3, 4):
            assert user_as_of(h, at(hour))["u1"][1] == "pro"
        assert attribute_history(h, "plan") == [("u1", "free", at(1)), ("u1", "pro", at(3))]


def test_late_device_move_between_users(engine: str) -> None:
    """d1 is u1's at 1 and at 5 (a restatement); a late sighting with u2 at 3 makes u1 its user
    again from 5 on."""
    with harness() as h:
        h.deliver([obs("u1", 1, "d1"), obs("u1", 5, "d1")])
        anchor(h)
        h.deliver([obs("u2", 3, "d1")])
        anchor(h)
        assert device_users(h, at(2)) == {"d1": "u1"}
        assert device_users(h, at(4)) == {"d1": "u2"}
        assert device_users(h, at(6)) == {"d1": "u1"}
        assert device_users(h, None) == {"d1": "u1"}
        assert user_devices(h, at(2)) == {"u1": ["d1"]}  # u2 is known from 3 on
        assert user_devices(h, at(3)) == {"u1": ["d1"], "u2": ["d1"]}


def test_a_batch_delivered_again_inserts_nothing(engine: str) -> None:
    batch = [
        obs("u1", 2, "d1", country="DE", plan="free", score=1, platform="ios"),
        obs("u1", 1, "d2", country="US", plan="pro", score=2, platform="android"),
        obs("u2", 1, "d1", country="DE"),
    ]
    with harness() as h:
        h.deliver(batch)
        anchor(h)
        before = counts(h)
        h.deliver(batch)
        run = h.anchor(parallel=2)
        assert run.problems == []
        assert run.inserted == 0
        assert counts(h) == before
