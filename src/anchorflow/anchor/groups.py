"""A large batch split into groups of loads, anchored and committed one group after the other.

The anchor step's memory grows with the staged rows it takes at once (the entity and knot steps
read every pending load's keys; every attribute and tie builds temporary tables of its staged
rows; each table's transaction holds what it wrote). When the pending loads hold more staged
rows than `anchor.group_rows`, they are taken in groups of consecutive load ids, each under
that budget (a load bigger than it goes alone): the whole step (entities and knots, then
attributes and ties, each table in its own transaction with its transfer rows in the journal)
runs for the first group, then for the next. A crash between two groups leaves the earlier
groups committed and journaled; the rerun takes the rest.

A split batch gives the tables of an unsplit one: an entity or knot numbers its new keys by the
first load that brought each, then by key, so the groups in load order hand out the ids one
call would; attribute history merges late observations whatever the batching (the views, the
serving tables and the ids are the same; as with loads anchored in separate runs, a point that
a later group's earlier-dated observation made redundant stays stored, and the views drop it).
"""

from __future__ import annotations

from anchorflow.anchor.plan import AnchorPlan
from anchorflow.journal.anchor import anchored_loads
from anchorflow.journal.transfers import typed_loads
from anchorflow.warehouse import Warehouse, table

Group = frozenset[int] | None  # the loads of one group; None: every pending load

GROUP_ROWS = 10_000_000  # a larger batch is split (the 10M-event initial load is not)
GROUP_MEMORY_LIMIT = "2500MB"  # DuckDB's memory while a split batch is anchored (BENCHMARKS)


def _tables_of(plan: AnchorPlan) -> dict[str, set[str]]:
    """Per staging model, the anchor tables that read it."""
    readers: dict[str, set[str]] = {}
    for name, entity in plan.entities.items():
        for model in entity.sources:
            readers.setdefault(model, set()).add(name)
    for name, knot in plan.knots.items():
        for model, _ in knot.feeders:
            readers.setdefault(model, set()).add(name)
    for name, target in plan.targets.items():
        readers.setdefault(target.model, set()).add(name)
    return readers


def pending_loads(wh: Warehouse, plan: AnchorPlan) -> dict[str, list[int]]:
    """Per staging model, its typed loads that some anchor table reading it lacks."""
    found: dict[str, list[int]] = {}
    for model, names in _tables_of(plan).items():
        typed = set(typed_loads(wh, model))
        missing: set[int] = set()
        for name in names:
            missing |= typed - anchored_loads(wh, name, model)
        if missing:
            found[model] = sorted(missing)
    return found


def staged_rows(wh: Warehouse, model: str, loads: list[int]) -> dict[int, int]:
    """Rows per load in staging (a scan of load_id alone, the loads' row groups only)."""
    rows = wh.query(
        f"SELECT s.load_id, count(*) FROM {table('staging', model)} AS s "
        "WHERE s.load_id BETWEEN ? AND ? AND list_contains(?, s.load_id) GROUP BY s.load_id",
        [min(loads), max(loads), loads],
    )
    return {int(load): int(count) for load, count in rows}


def split(sizes: dict[int, int], budget: int) -> list[frozenset[int]]:
    """Consecutive loads (by id) in groups whose rows stay within `budget`; a load bigger than
    the budget is a group of its own."""
    groups: list[set[int]] = []
    total = 0
    for load in sorted(sizes):
        if not groups or (total + sizes[load] > budget and groups[-1]):
            groups.append(set())
            total = 0
        groups[-1].add(load)
        total += sizes[load]
    return [frozenset(g) for g in groups]


def load_groups(wh: Warehouse, plan: AnchorPlan, budget: int | None) -> list[Group]:
    """The pending loads in groups of at most `budget` staged rows (every model the anchor
    model reads counted), in load order; `[None]` (one group of all) when they fit or
    `budget` is None."""
    pending = pending_loads(wh, plan)
    if budget is None or sum(len(loads) for loads in pending.values()) <= 1:
        return [None]
    sizes = dict.fromkeys(set().union(*pending.values()), 0)  # empty loads too
    for model, loads in pending.items():
        for load, rows in staged_rows(wh, model, loads).items():
            sizes[load] += rows
    if sum(sizes.values()) <= budget:
        return [None]
    return list(split(sizes, budget))
