"""Loading the anchor model from staging: insert-only, idempotent, order-independent.

A load reaches the anchor model per (load, staging model, table), recorded in
`meta.anchor_transfers` in the same transaction as the rows, so a rerun skips what is done and a
crash loses nothing. Entities and knots go first (new natural keys get new ids, numbered in key
order so a rerun numbers them the same), then every attribute and tie, each in its own
transaction, on parallel connections where the engine gives them.

History is one algorithm for attributes and ties: a target maps identifier ids to value(s) over
`changed_at`.

- **scd0** stores a key's earliest value; a later-loaded earlier value is stored too, and the
  views show the earliest.
- **scd1 / scd2** store change points: an observation whose value differs from the value in force
  just before it. Restatements (the same value again) are not inserted. A late observation
  (older than what the table has already seen) is placed by merging the key's stored points with
  every observation from that time on, read back from staging, so the change it causes *after*
  itself is stored too. The stored rows then always give the true history; views drop the
  points that a later, earlier-dated change made redundant.
- Two values for one key at the same instant: the first loaded is kept (within one batch, the
  smallest); the integrity check reports it as a conflict, not as an error.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from anchorflow import journal
from anchorflow.anchor.plan import SCHEMA, AnchorPlan, EntityPlan, KnotPlan, TargetPlan
from anchorflow.crashpoints import crash_point
from anchorflow.errors import IntegrityError
from anchorflow.warehouse import Warehouse, ident, table

log = logging.getLogger(__name__)


@dataclass
class TargetRun:
    table: str
    kind: str
    loads: int = 0
    observed: int = 0
    inserted: int = 0
    seconds: float = 0.0
    problem: str | None = None


@dataclass
class AnchorRun:
    targets: list[TargetRun] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def inserted(self) -> int:
        return sum(t.inserted for t in self.targets)

    @property
    def problems(self) -> list[str]:
        return [f"anchor.{t.table}: {t.problem}" for t in self.targets if t.problem]


def _q(name: str) -> str:
    return ident(name)


def _anchor(name: str) -> str:
    return table(SCHEMA, name)


def _loads_filter(alias: str, loads: list[int]) -> str:
    """Rows of these loads: the BETWEEN lets the engine skip row groups by their min/max."""
    low, high = min(loads), max(loads)
    return (
        f"{alias}.load_id BETWEEN {int(low)} AND {int(high)} AND list_contains(?, {alias}.load_id)"
    )


def typed_loads(wh: Warehouse, model: str) -> set[int]:
    rows = wh.query("SELECT load_id FROM meta.transfers WHERE model = ?", [model])
    return {int(r[0]) for r in rows}


def anchored_loads(wh: Warehouse, target: str, model: str) -> set[int]:
    rows = wh.query(
        "SELECT load_id FROM meta.anchor_transfers WHERE target = ? AND model = ?",
        [target, model],
    )
    return {int(r[0]) for r in rows}


def _log(
    wh: Warehouse,
    target: str,
    kind: str,
    model: str,
    counts: Iterable[tuple[Any, ...]],
    now: datetime,
) -> None:
    """One row per load: (load_id, observed, inserted, without_key, max_changed_at)."""
    for load_id, observed, inserted, without_key, max_changed_at in counts:
        wh.execute(
            "INSERT INTO meta.anchor_transfers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [load_id, model, target, kind, observed, inserted, without_key, max_changed_at, now],
        )


# -- entities and knots ---------------------------------------------------------------------------


def load_entity(wh: Warehouse, entity: EntityPlan, now: datetime) -> TargetRun:
    run = TargetRun(entity.name, "entity")
    pending = {
        m: sorted(typed_loads(wh, m) - anchored_loads(wh, entity.name, m)) for m in entity.sources
    }
    pending = {m: loads for m, loads in pending.items() if loads}
    if not pending:
        return run
    keys = [_q(k) for k in entity.key]
    selects, params = [], []
    for model, columns in pending.items():
        source_keys = entity.sources[model]
        casts = ", ".join(
            f"CAST(s.{_q(c)} AS {t}) AS {k}"
            for c, t, k in zip(source_keys, entity.key_types, keys, strict=True)
        )
        not_null = " AND ".join(f"s.{_q(c)} IS NOT NULL" for c in source_keys)
        selects.append(
            f"SELECT {casts}, s.load_id FROM {table('staging', model)} AS s "
            f"WHERE {_loads_filter('s', columns)} AND {not_null}"
        )
        params.append(columns)
    same = " AND ".join(f"e.{k} = n.{k}" for k in keys)
    target = _anchor(entity.name)
    with wh.transaction():
        run.inserted = wh.insert(
            f"INSERT INTO {target} (id, {', '.join(keys)}, load_id, loaded_at) "
            f"SELECT base.top + row_number() OVER (ORDER BY {', '.join('n.' + k for k in keys)}), "
            f"{', '.join('n.' + k for k in keys)}, n.load_id, ? "
            f"FROM (SELECT {', '.join(keys)}, min(load_id) AS load_id "
            f"FROM ({' UNION ALL '.join(selects)}) AS u GROUP BY {', '.join(keys)}) AS n "
            f"CROSS JOIN (SELECT coalesce(max(id), 0) AS top FROM {target}) AS base "
            f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS e WHERE {same})",
            [now, *params],
        )
        for model, loads in pending.items():
            source_keys = entity.sources[model]
            has_key = " AND ".join(f"{_q(c)} IS NOT NULL" for c in source_keys)
            counts = wh.query(
                f"SELECT load_id, count(*) FILTER (WHERE {has_key}), 0, "
                f"count(*) FILTER (WHERE NOT ({has_key})), NULL "
                f"FROM {table('staging', model)} AS s WHERE {_loads_filter('s', loads)} "
                "GROUP BY load_id",
                [loads],
            )
            found = {int(r[0]) for r in counts}
            counts += [(load, 0, 0, 0, None) for load in loads if load not in found]
            _log(wh, entity.name, "entity", model, counts, now)
            run.observed += sum(int(r[1]) for r in counts)
            run.loads += len(loads)
            _check_entity(wh, entity, model, loads)
        crash_point("anchor_entity_before_commit")
    crash_point("anchor_after_entity")
    return run


def _check_entity(wh: Warehouse, entity: EntityPlan, model: str, loads: list[int]) -> None:
    keys = [_q(k) for k in entity.key]
    source_keys = [_q(c) for c in entity.sources[model]]
    same = " AND ".join(f"e.{k} = s.{c}" for k, c in zip(keys, source_keys, strict=True))
    has_key = " AND ".join(f"s.{c} IS NOT NULL" for c in source_keys)
    missing = wh.scalar(
        f"SELECT count(*) FROM {table('staging', model)} AS s "
        f"WHERE {_loads_filter('s', loads)} AND {has_key} "
        f"AND NOT EXISTS (SELECT 1 FROM {_anchor(entity.name)} AS e WHERE {same})",
        [loads],
    )
    if missing:
        raise IntegrityError(f"{missing} key(s) of staging.{model} have no row in the anchor")
    twice = wh.scalar(
        f"SELECT count(*) FROM (SELECT {', '.join(keys)} FROM {_anchor(entity.name)} "
        f"GROUP BY {', '.join(keys)} HAVING count(*) > 1) AS d"
    )
    if twice:
        raise IntegrityError(f"{twice} natural key(s) appear more than once")


def load_knot(wh: Warehouse, knot: KnotPlan, now: datetime) -> TargetRun:
    run = TargetRun(knot.name, "knot")
    target = _anchor(knot.name)
    selects, params, pending = [], [], {}
    for model, column in knot.feeders:
        loads = sorted(typed_loads(wh, model) - anchored_loads(wh, knot.name, model))
        if loads and model not in pending:
            pending[model] = loads
        if loads:
            selects.append(
                f"SELECT CAST(s.{_q(column)} AS {knot.type}) AS value, s.load_id "
                f"FROM {table('staging', model)} AS s "
                f"WHERE {_loads_filter('s', loads)} AND s.{_q(column)} IS NOT NULL"
            )
            params.append(loads)
    if not selects:
        return run
    with wh.transaction():
        run.inserted = wh.insert(
            f"INSERT INTO {target} (id, value, load_id, loaded_at) "
            "SELECT base.top + row_number() OVER (ORDER BY n.value), n.value, n.load_id, ? "
            f"FROM (SELECT value, min(load_id) AS load_id FROM ({' UNION ALL '.join(selects)}) "
            "AS u GROUP BY value) AS n "
            f"CROSS JOIN (SELECT coalesce(max(id), 0) AS top FROM {target}) AS base "
            f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS k WHERE k.value = n.value)",
            [now, *params],
        )
        for model, loads in pending.items():
            _log(wh, knot.name, "knot", model, [(x, 0, 0, 0, None) for x in loads], now)
            run.loads += len(loads)
    return run


# -- attributes and ties --------------------------------------------------------------------------


def pending_for(wh: Warehouse, plan: AnchorPlan, target: TargetPlan) -> list[int]:
    """Typed loads of the target's model not in it yet, whose entities (and knot) are loaded."""
    loads = typed_loads(wh, target.model) - anchored_loads(wh, target.table, target.model)
    for entity in {r.entity for r in target.roles}:
        loads &= anchored_loads(wh, entity, target.model)
    if target.knot:
        loads &= anchored_loads(wh, target.knot, target.model)
    return sorted(loads)


class _TargetSQL:
    """The SQL of one target: its observations in a batch of loads, and its history insert."""

    def __init__(self, plan: AnchorPlan, target: TargetPlan, name_suffix: str) -> None:
        self.plan = plan
        self.t = target
        self.keys = [_q(c) for c in target.key_columns]
        self.values = [_q(c) for c in target.value_columns]
        self.obs = _q(f"__obs_{name_suffix}")
        self.table = _anchor(target.table)

    def observations(self, loads_param_filter: str) -> str:
        """Projected rows of staging with ids resolved: K..., V..., changed_at, load_id."""
        t = self.t
        joins, projections = [], []
        for index, role in enumerate(t.roles):
            alias = f"e{index}"
            same = " AND ".join(
                f"{alias}.{_q(k)} = s.{_q(c)}"
                for k, c in zip(self.plan.entities[role.entity].key, role.model_key, strict=True)
            )
            joins.append(f"JOIN {_anchor(role.entity)} AS {alias} ON {same}")
            projections.append(f"{alias}.id AS {_q(role.column)}")
        conditions = [f"s.{_q(t.changed_at)} IS NOT NULL"]
        if t.kind == "attribute":
            value = f"s.{_q(t.value or '')}"
            conditions.append(f"{value} IS NOT NULL")
            if t.knot:
                joins.append(f"JOIN {_anchor(t.knot)} AS k ON k.value = {value}")
                projections.append("k.id AS value")
            else:
                projections.append(f"CAST({value} AS {t.value_type}) AS value")
        return (
            f"SELECT {', '.join(projections)}, CAST(s.{_q(t.changed_at)} AS TIMESTAMP) "
            f"AS changed_at, s.load_id FROM {table('staging', t.model)} AS s {' '.join(joins)} "
            f"WHERE {loads_param_filter} AND {' AND '.join(conditions)}"
        )

    def deduped(self, rows: str) -> str:
        """One observation per (key, instant): the smallest value, then the earliest load."""
        order = ", ".join([*self.values, "load_id"])
        return (
            f"SELECT * EXCLUDE (__rn) FROM (SELECT *, row_number() OVER (PARTITION BY "
            f"{', '.join(self.keys)}, changed_at ORDER BY {order}) AS __rn FROM ({rows}) AS r) "
            "AS d WHERE __rn = 1"
        )

    def insert_first_values(self) -> str:
        """scd0: a key's earliest observation, when it is earlier than anything stored."""
        keys = ", ".join(self.keys)
        order = ", ".join(["changed_at", *self.values, "load_id"])
        columns = [*self.keys, *self.values, "changed_at", "load_id"]
        stored_keys = ", ".join(f"a.{k}" for k in self.keys)
        touched = " AND ".join(f"o.{k} = a.{k}" for k in self.keys)
        return (
            f"INSERT INTO {self.table} ({', '.join(columns)}) "
            f"SELECT {', '.join('f.' + c for c in columns)} "
            f"FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) AS __rn "
            f"FROM {self.obs}) AS f "
            f"LEFT JOIN (SELECT {stored_keys}, min(a.changed_at) AS first FROM {self.table} AS a "
            f"WHERE EXISTS (SELECT 1 FROM {self.obs} AS o WHERE {touched}) "
            f"GROUP BY {stored_keys}) AS s "
            f"ON {' AND '.join(f'f.{k} = s.{k}' for k in self.keys)} "
            "WHERE f.__rn = 1 AND (s.first IS NULL OR f.changed_at < s.first)"
        )

    def insert_changes(self, late: str | None) -> str:
        """scd1/scd2: the change points among stored rows and new observations, merged."""
        keys = ", ".join(self.keys)
        columns = [*self.keys, *self.values, "changed_at", "load_id"]
        listed = ", ".join(columns)
        touched_on = " AND ".join(f"a.{k} = t.{k}" for k in self.keys)
        parts = [
            f"SELECT {listed}, 1 AS fresh FROM {self.obs}",
            f"SELECT {', '.join('a.' + c for c in columns)}, 0 AS fresh FROM {self.table} AS a "
            f"JOIN touched AS t ON {touched_on}",
        ]
        if late:
            parts.append(f"SELECT {listed}, 1 AS fresh FROM ({late}) AS l")
        order = ", ".join(["fresh", *self.values, "load_id"])
        changed = " OR ".join(
            f"p.__prev_{i} IS DISTINCT FROM p.{v}" for i, v in enumerate(self.values)
        )
        lags = ", ".join(
            f"lag({v}) OVER (PARTITION BY {keys} ORDER BY changed_at) AS __prev_{i}"
            for i, v in enumerate(self.values)
        )
        return (
            f"INSERT INTO {self.table} ({listed}) "
            f"WITH touched AS (SELECT {keys} FROM {self.obs} GROUP BY {keys}), "
            f"merged AS ({' UNION ALL '.join(parts)}), "
            f"one AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {keys}, changed_at "
            f"ORDER BY {order}) AS __rn FROM merged) AS m WHERE __rn = 1), "
            f"points AS (SELECT *, {lags}, row_number() OVER (PARTITION BY {keys} "
            f"ORDER BY changed_at) AS __pos FROM one) "
            f"SELECT {', '.join('p.' + c for c in columns)} FROM points AS p "
            f"WHERE p.fresh = 1 AND (p.__pos = 1 OR {changed})"
        )

    def late_observations(self, loads_filter: str) -> str:
        """Observations from the loads already in the table, for keys whose new observations
        reach back into what the table has seen, from the earliest of them on."""
        same = " AND ".join(f"x.{k} = t.{k}" for k in self.keys)
        return (
            f"SELECT x.* FROM ({self.observations(loads_filter)}) AS x "
            f"JOIN (SELECT {', '.join(self.keys)}, min(changed_at) AS t0 FROM {self.obs} "
            f"GROUP BY {', '.join(self.keys)} HAVING min(changed_at) <= ?) AS t "
            f"ON {same} WHERE x.changed_at >= t.t0"
        )


def load_target(
    wh: Warehouse, plan: AnchorPlan, target: TargetPlan, index: int, now: datetime
) -> TargetRun:
    run = TargetRun(target.table, target.kind)
    loads = pending_for(wh, plan, target)
    if not loads:
        return run
    sql = _TargetSQL(plan, target, str(index))
    seen = sorted(anchored_loads(wh, target.table, target.model))
    high_water = wh.scalar(
        "SELECT max(max_changed_at) FROM meta.anchor_transfers WHERE target = ? AND model = ?",
        [target.table, target.model],
    )
    with wh.transaction():
        wh.execute(
            f"CREATE OR REPLACE TEMP TABLE {sql.obs} AS "
            f"{sql.deduped(sql.observations(_loads_filter('s', loads)))}",
            [loads],
        )
        if target.effective_history == "scd0":
            run.inserted = wh.insert(sql.insert_first_values())
        else:
            earliest = wh.scalar(f"SELECT min(changed_at) FROM {sql.obs}")
            late = None
            params: list[Any] = []
            if seen and high_water is not None and earliest is not None and earliest <= high_water:
                # Only rows from the earliest new observation on: with staging in load order
                # and times close to it, the engine skips older row groups by their min/max.
                since = f"{_loads_filter('s', seen)} AND s.{_q(target.changed_at)} >= ?"
                late = sql.late_observations(since)
                params = [seen, earliest, high_water]
            run.inserted = wh.insert(sql.insert_changes(late), params)
        counts = wh.query(
            f"SELECT load_id, count(*), 0, 0, max(changed_at) FROM {sql.obs} GROUP BY load_id"
        )
        inserted = dict(
            wh.query(
                f"SELECT load_id, count(*) FROM {sql.table} AS a "
                f"WHERE {_loads_filter('a', loads)} GROUP BY load_id",
                [loads],
            )
        )
        without = dict(wh.query(_without_key_sql(target, loads), [loads]))
        by_load = {int(r[0]): r for r in counts}
        rows = []
        for load in loads:
            found = by_load.get(load)
            rows.append(
                (load, int(found[1]) if found else 0, int(inserted.get(load, 0)),
                 int(without.get(load, 0)), found[4] if found else None)
            )  # fmt: skip
        _log(wh, target.table, target.kind, target.model, rows, now)
        run.loads, run.observed = len(loads), sum(r[1] for r in rows)
        check_target(wh, target, sql)
        wh.execute(f"DROP TABLE {sql.obs}")
        crash_point("anchor_target_before_commit")
    crash_point("anchor_after_target")
    return run


def _without_key_sql(target: TargetPlan, loads: list[int]) -> str:
    """Rows that carry a value but cannot be placed: a NULL key or a NULL changed_at."""
    key_null = " OR ".join(f"s.{_q(c)} IS NULL" for r in target.roles for c in r.model_key)
    has_value = f"s.{_q(target.value or '')} IS NOT NULL" if target.value else "TRUE"
    return (
        f"SELECT load_id, count(*) FROM {table('staging', target.model)} AS s "
        f"WHERE {_loads_filter('s', loads)} AND {has_value} AND "
        f"({key_null} OR s.{_q(target.changed_at)} IS NULL) GROUP BY load_id"
    )


def check_target(wh: Warehouse, target: TargetPlan, sql: _TargetSQL) -> None:
    """After the insert, in its transaction: ids exist, (key, changed_at) is unique, and every
    observation of the batch is what the table says was in force at its time."""
    on_keys = " AND ".join(f"a.{k} = o.{k}" for k in sql.keys)
    touched = f"EXISTS (SELECT 1 FROM {sql.obs} AS o WHERE {on_keys})"
    for role in target.roles:
        orphans = wh.scalar(
            f"SELECT count(*) FROM {sql.table} AS a WHERE {touched} AND NOT EXISTS "
            f"(SELECT 1 FROM {_anchor(role.entity)} AS e WHERE e.id = a.{_q(role.column)})"
        )
        if orphans:
            raise IntegrityError(f"{orphans} row(s) point at no {role.entity}")
    if target.knot:
        orphans = wh.scalar(
            f"SELECT count(*) FROM {sql.table} AS a WHERE {touched} AND NOT EXISTS "
            f"(SELECT 1 FROM {_anchor(target.knot)} AS k WHERE k.id = a.value)"
        )
        if orphans:
            raise IntegrityError(f"{orphans} value(s) point at no {target.knot}")
    twice = wh.scalar(
        f"SELECT count(*) FROM (SELECT {', '.join('a.' + k for k in sql.keys)}, a.changed_at "
        f"FROM {sql.table} AS a WHERE {touched} GROUP BY ALL HAVING count(*) > 1) AS d"
    )
    if twice:
        raise IntegrityError(f"{twice} duplicate ({', '.join(target.key_columns)}, changed_at)")
    if target.effective_history == "scd0":
        unexplained = wh.scalar(
            f"SELECT count(*) FROM {sql.obs} AS o WHERE NOT EXISTS (SELECT 1 FROM {sql.table} "
            f"AS a WHERE {on_keys} AND a.changed_at <= o.changed_at)"
        )
    else:
        differs = " OR ".join(f"a.{v} IS DISTINCT FROM o.{v}" for v in sql.values)
        unexplained = wh.scalar(
            f"SELECT count(*) FROM {sql.obs} AS o ASOF LEFT JOIN (SELECT * FROM {sql.table} AS a "
            f"WHERE {touched}) AS a "
            f"ON {on_keys} AND o.changed_at >= a.changed_at "
            f"WHERE a.changed_at IS NULL OR (a.changed_at < o.changed_at AND ({differs}))"
        )
    if unexplained:
        raise IntegrityError(
            f"{unexplained} observation(s) of staging.{target.model} do not match the history"
        )


# -- the step -------------------------------------------------------------------------------------


def workers(wh: Warehouse, configured: int | None) -> int:
    if configured:
        return configured
    return max(1, min(4, wh.capabilities.parallel_writers, os.cpu_count() or 1))


def load_anchor(
    wh: Warehouse,
    plan: AnchorPlan,
    now: datetime | None = None,
    parallel: int = 1,
    on_target: Callable[[TargetRun], None] | None = None,
) -> AnchorRun:
    """Load every pending (load, model) into the anchor model. A table whose integrity check
    fails is rolled back alone and named in `problems`; the others still load."""
    started = time.perf_counter()
    at = now or journal.utcnow()
    result = AnchorRun()

    def step(
        name: str, kind: str, action: Callable[[Warehouse], TargetRun], con: Warehouse
    ) -> TargetRun:
        began = time.perf_counter()
        try:
            run = action(con)
        except IntegrityError as error:  # its transaction was rolled back
            run = TargetRun(name, kind, problem=str(error))
        run.seconds = time.perf_counter() - began
        if on_target:
            on_target(run)
        return run

    # Entities and knots first: attributes and ties resolve their ids through them.
    for entity in plan.entities.values():
        result.targets.append(
            step(entity.name, "entity", partial(load_entity, entity=entity, now=at), wh)
        )
    for knot in plan.knots.values():
        result.targets.append(step(knot.name, "knot", partial(load_knot, knot=knot, now=at), wh))
    targets = list(plan.targets.values())
    actions = [
        partial(load_target, plan=plan, target=t, index=i, now=at) for i, t in enumerate(targets)
    ]
    if parallel <= 1 or len(targets) <= 1:
        result.targets += [
            step(t.table, t.kind, a, wh) for t, a in zip(targets, actions, strict=True)
        ]
    else:
        # One connection per worker; a connection runs one transaction at a time.
        connections = [wh.worker() for _ in range(parallel)]
        try:
            with ThreadPoolExecutor(parallel) as pool:
                futures = [
                    pool.submit(step, t.table, t.kind, a, connections[i % parallel])
                    for i, (t, a) in enumerate(zip(targets, actions, strict=True))
                ]
                result.targets += [f.result() for f in futures]
        finally:
            for con in connections:
                if con is not wh:
                    con.close()
    result.seconds = time.perf_counter() - started
    return result
