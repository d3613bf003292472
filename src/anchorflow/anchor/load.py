"""Loading the anchor model from staging: insert-only, idempotent, order-independent.

A load reaches the anchor model per (load, staging model, table), recorded in the journal
(`journal.anchor`) in the same transaction as the rows, so a rerun skips what is done and a
crash loses nothing. Entities and knots go first (a natural key keeps its id for the life of the
warehouse, kept in the journal's key registry; a new key gets the next id, numbered in key
order), then every attribute and tie, each in its own transaction, on parallel connections
where the engine gives them.

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
- Two different values for one key at the same instant (a conflict): the largest value wins
  (`TargetSQL.ordered`: a knot's value, a tie's natural keys), with the earliest load that
  brought it, whatever the batching. A stored loser is deleted and replaced (the one delete:
  a correction of a conflict, never of history). Every conflict is recorded in
  the journal (`journal.anchor.record_conflicts`), once.
- More staged rows than `batch_rows` are loaded in passes by key, in the one transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from anchorflow import journal
from anchorflow.anchor import serving
from anchorflow.anchor.check import check_target
from anchorflow.anchor.groups import GROUP_MEMORY_LIMIT, GROUP_ROWS, Group, load_groups
from anchorflow.anchor.plan import AnchorPlan, EntityPlan, KnotPlan, TargetPlan, anchor_table
from anchorflow.anchor.target_sql import TargetSQL
from anchorflow.crashpoints import crash_point
from anchorflow.errors import IntegrityError
from anchorflow.journal.anchor import (
    anchored_loads,
    key_text,
    log_anchor_transfers,
    record_conflicts,
    record_top_id,
    register_keys,
    registered_ids,
    top_id,
)
from anchorflow.journal.anchor import high_water as high_water_of
from anchorflow.journal.transfers import typed_loads as journal_typed_loads
from anchorflow.project_types import smaller_size
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
    serving_rows: int = 0  # serving rows updated in the table's transaction
    serving_seconds: float = 0.0


@dataclass
class AnchorRun:
    targets: list[TargetRun] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def serving_rows(self) -> int:
        """Serving rows updated (`anchor.serving`), in the tables' transactions."""
        return sum(t.serving_rows for t in self.targets)

    @property
    def serving_seconds(self) -> float:
        return sum(t.serving_seconds for t in self.targets)

    @property
    def inserted(self) -> int:
        return sum(t.inserted for t in self.targets)

    @property
    def problems(self) -> list[str]:
        return [f"anchor.{t.table}: {t.problem}" for t in self.targets if t.problem]


def _loads_filter(alias: str, loads: list[int]) -> str:
    """Rows of these loads: the BETWEEN lets the engine skip row groups by their min/max."""
    low, high = min(loads), max(loads)
    return (
        f"{alias}.load_id BETWEEN {int(low)} AND {int(high)} AND list_contains(?, {alias}.load_id)"
    )


def typed_loads(wh: Warehouse, model: str) -> set[int]:
    return set(journal_typed_loads(wh, model))


# -- entities and knots ---------------------------------------------------------------------------


def _top_id(target: str) -> str:
    """The highest id ever given (its table's, or the journal's: rows erased or rolled back
    never give their ids to someone else). One parameter: the journal's top id."""
    return f"SELECT greatest((SELECT coalesce(max(id), 0) FROM {target}), ?) AS top"


def _give_ids(
    wh: Warehouse, name: str, keys: list[str], new: str, params: list[Any], now: datetime
) -> int:
    """Insert a row per key of `new` (the key columns and load_id) that the entity or knot
    `name` lacks. A key the registry knows gets its id back (a backfill, a rollback, a table
    rebuilt); another gets the next id after the top, in the order of the first load that
    brought it, then of the key, so a rerun numbers them the same, and so does a batch split
    into groups of loads (`anchor.groups`); it is registered in this transaction. Returns the
    rows inserted."""
    target = anchor_table(name)
    top = int(wh.scalar(_top_id(target), [top_id(wh, name)]))
    listed = ", ".join(f"n.{k}" for k in keys)
    same = " AND ".join(f"e.{k} = n.{k}" for k in keys)
    inserted = wh.insert(
        f"INSERT INTO {target} (id, {', '.join(keys)}, load_id, loaded_at) "
        f"SELECT coalesce(r.id, CAST(? AS BIGINT) + row_number() OVER "
        f"(PARTITION BY r.id IS NULL ORDER BY n.load_id, {listed})), {listed}, n.load_id, ? "
        f"FROM ({new}) AS n LEFT JOIN ({registered_ids()}) AS r "
        f"ON r.key = {key_text([f'n.{k}' for k in keys])} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS e WHERE {same})",
        [top, now, *params, name],
    )
    if inserted:
        register_keys(
            wh, name,
            f"SELECT {key_text([f'e.{k}' for k in keys])} AS key, e.id FROM {target} AS e "
            "WHERE e.id > ?",
            [top],
        )  # fmt: skip
        record_top_id(wh, name, int(wh.scalar(f"SELECT max(id) FROM {target}")))
    return inserted


def _pending(wh: Warehouse, name: str, model: str, only: Group) -> list[int]:
    """The model's typed loads that the table `name` lacks, of the group `only` (None: all)."""
    loads = typed_loads(wh, model) - anchored_loads(wh, name, model)
    return sorted(loads if only is None else loads & only)


def load_entity(wh: Warehouse, entity: EntityPlan, now: datetime, only: Group = None) -> TargetRun:
    run = TargetRun(entity.name, "entity")
    pending = {m: _pending(wh, entity.name, m, only) for m in entity.sources}
    pending = {m: loads for m, loads in pending.items() if loads}
    if not pending:
        return run
    keys = [ident(k) for k in entity.key]
    selects, params = [], []
    for model, model_loads in pending.items():
        for source_keys in entity.sources[model]:
            casts = ", ".join(
                f"CAST(s.{ident(c)} AS {t}) AS {k}"
                for c, t, k in zip(source_keys, entity.key_types, keys, strict=True)
            )
            not_null = " AND ".join(f"s.{ident(c)} IS NOT NULL" for c in source_keys)
            selects.append(
                f"SELECT {casts}, s.load_id FROM {table('staging', model)} AS s "
                f"WHERE {_loads_filter('s', model_loads)} AND {not_null}"
            )
            params.append(model_loads)
    target = anchor_table(entity.name)
    with wh.transaction():
        run.inserted = _give_ids(
            wh, entity.name, keys,
            f"SELECT {', '.join(keys)}, min(load_id) AS load_id "
            f"FROM ({' UNION ALL '.join(selects)}) AS u GROUP BY {', '.join(keys)}",
            params, now,
        )  # fmt: skip
        if run.inserted:
            serving.add_entities(
                wh, entity.name, entity.key, now, sorted(set().union(*pending.values()))
            )
        for model, loads in pending.items():
            counts = _entity_counts(wh, entity, model, loads)
            log_anchor_transfers(wh, entity.name, "entity", model, [r[:5] for r in counts], now)
            run.observed += sum(int(r[1]) for r in counts)
            run.loads += len(loads)
            missing = sum(int(r[5]) for r in counts)
            if missing:
                raise IntegrityError(f"{missing} key(s) of staging.{model} have no anchor row")
        twice = wh.scalar(
            f"SELECT count(*) FROM {target} AS n JOIN {target} AS o ON "
            f"{' AND '.join(f'o.{k} = n.{k}' for k in keys)} AND o.id <> n.id "
            f"WHERE n.loaded_at = ?",
            [now],
        )
        if twice:
            raise IntegrityError(f"{twice} natural key(s) appear more than once")
        crash_point("anchor_entity_before_commit")
    crash_point("anchor_after_entity")
    return run


def _entity_counts(
    wh: Warehouse, entity: EntityPlan, model: str, loads: list[int]
) -> list[tuple[Any, ...]]:
    """Per load: keys read, 0, keys missing (NULL), NULL, and keys with no anchor row (the
    reconciliation with staging), one pass per column set of the model."""
    totals: dict[int, list[int]] = {load: [0, 0, 0] for load in loads}
    keys = [ident(k) for k in entity.key]
    for columns in entity.sources[model]:
        source_keys = [ident(c) for c in columns]
        same = " AND ".join(f"e.{k} = s.{c}" for k, c in zip(keys, source_keys, strict=True))
        has_key = " AND ".join(f"s.{c} IS NOT NULL" for c in source_keys)
        for load, present, absent, missing in wh.query(
            f"SELECT s.load_id, count(*) FILTER (WHERE {has_key}), "
            f"count(*) FILTER (WHERE NOT ({has_key})), "
            f"count(*) FILTER (WHERE {has_key} AND e.id IS NULL) "
            f"FROM {table('staging', model)} AS s LEFT JOIN {anchor_table(entity.name)} AS e "
            f"ON {same} WHERE {_loads_filter('s', loads)} GROUP BY s.load_id",
            [loads],
        ):
            counts = totals[int(load)]
            counts[0] += int(present)
            counts[1] += int(absent)
            counts[2] += int(missing)
    return [(load, c[0], 0, c[1], None, c[2]) for load, c in totals.items()]


def load_knot(wh: Warehouse, knot: KnotPlan, now: datetime, only: Group = None) -> TargetRun:
    run = TargetRun(knot.name, "knot")
    selects, params, pending = [], [], {}
    for model, column in knot.feeders:
        loads = _pending(wh, knot.name, model, only)
        if loads and model not in pending:
            pending[model] = loads
        if loads:
            selects.append(
                f"SELECT CAST(s.{ident(column)} AS {knot.type}) AS value, s.load_id "
                f"FROM {table('staging', model)} AS s "
                f"WHERE {_loads_filter('s', loads)} AND s.{ident(column)} IS NOT NULL"
            )
            params.append(loads)
    if not selects:
        return run
    with wh.transaction():
        run.inserted = _give_ids(
            wh, knot.name, [ident("value")],
            f"SELECT value, min(load_id) AS load_id FROM ({' UNION ALL '.join(selects)}) AS u "
            "GROUP BY value",
            params, now,
        )  # fmt: skip
        for model, loads in pending.items():
            empty = [(x, 0, 0, 0, None) for x in loads]
            log_anchor_transfers(wh, knot.name, "knot", model, empty, now)
            run.loads += len(loads)
    return run


# -- attributes and ties --------------------------------------------------------------------------


def pending_for(
    wh: Warehouse, plan: AnchorPlan, target: TargetPlan, only: Group = None
) -> list[int]:
    """Typed loads of the target's model not in it yet (of the group `only`: None, all),
    whose entities (and knot) are loaded."""
    loads = set(_pending(wh, target.table, target.model, only))
    for entity in {r.entity for r in target.roles}:
        loads &= anchored_loads(wh, entity, target.model)
    if target.knot:
        loads &= anchored_loads(wh, target.knot, target.model)
    return sorted(loads)


BATCH_ROWS = 8_000_000


def load_target(
    wh: Warehouse,
    plan: AnchorPlan,
    target: TargetPlan,
    index: int,
    now: datetime,
    verify_history: bool = True,
    batch_rows: int = BATCH_ROWS,
    only: Group = None,
) -> TargetRun:
    """Load the target's pending loads (of the group `only`) in one transaction. More staged
    rows than `batch_rows` are taken in passes by a hash of the first role's natural key: every
    key's rows are in one pass, so each pass is the whole history merge of its keys, with a
    bounded memory."""
    run = TargetRun(target.table, target.kind)
    loads = pending_for(wh, plan, target, only)
    if not loads:
        return run
    sql = TargetSQL(plan, target, str(index))
    seen = sorted(anchored_loads(wh, target.table, target.model))
    high_water = high_water_of(wh, target.table, target.model)
    with wh.transaction():
        staged = int(
            wh.scalar(
                f"SELECT count(*) FROM {table('staging', target.model)} AS s "
                f"WHERE {_loads_filter('s', loads)}"
                + (f" AND s.{ident(target.value)} IS NOT NULL" if target.value else ""),
                [loads],
            )
        )
        passes = max(1, -(-staged // max(1, batch_rows)))
        sql.first_load = not seen and not wh.scalar(
            f"SELECT count(*) FROM (SELECT 1 FROM {sql.table} LIMIT 1) AS a"
        )
        sql.whole_table = sql.first_load and passes == 1
        counts: list[tuple[Any, ...]] = []
        serving_time = [0.0, 0.0]
        for part in range(passes):
            found, inserted = _load_pass(
                wh, plan, target, sql, loads, (seen, high_water), (part, passes), now,
                verify_history, serving_time,
            )  # fmt: skip
            counts += found
            run.inserted += inserted
        run.serving_rows, run.serving_seconds = int(serving_time[0]), serving_time[1]
        resolved = sum(int(r[1]) + int(r[2]) + int(r[4]) for r in counts)
        if resolved != staged:  # a join multiplied rows: some natural key has two anchor rows
            raise IntegrityError(
                f"{staged} row(s) of staging.{target.model} became {resolved} after resolving "
                "ids: a natural key has more than one anchor row"
            )
        _log_target(wh, target, sql, loads, counts, now, run)
        crash_point("anchor_target_before_commit")
    crash_point("anchor_after_target")
    return run


def _partition(wh: Warehouse, target: TargetPlan, part: tuple[int, int]) -> str:
    """The staging rows of one pass: a hash of the first role's natural key columns."""
    number, passes = part
    if passes == 1:
        return ""
    columns = [f"s.{ident(c)}" for c in target.roles[0].model_key]
    hashed = wh.sql.sample_hash(*columns)
    return f" AND (({hashed}) % {int(passes)} + {int(passes)}) % {int(passes)} = {int(number)}"


def _load_pass(
    wh: Warehouse,
    plan: AnchorPlan,
    target: TargetPlan,
    sql: TargetSQL,
    loads: list[int],
    history: tuple[list[int], datetime | None],
    part: tuple[int, int],
    now: datetime,
    verify_history: bool,
    serving_time: list[float],
) -> tuple[list[tuple[Any, ...]], int]:
    """One pass: its staged rows placed, conflicts recorded, the history merged, the serving
    rows of its keys updated (`serving_time` gains their count and seconds). Returns its
    counts per load (load, observed, without key, max changed_at, missing) and the rows it
    inserted."""
    seen, high_water = history
    where = _loads_filter("s", loads) + _partition(wh, target, part)
    # Two statements: one with parameters (PostgreSQL prepares it) cannot replace a table.
    wh.execute(f"DROP TABLE IF EXISTS {sql.rows}")
    wh.execute(f"CREATE TEMP TABLE {sql.rows} AS {sql.staged_rows(where)}", [loads])
    counts = wh.query(
        "SELECT load_id, count(*) FILTER (WHERE __placeable AND NOT __missing), "
        "count(*) FILTER (WHERE NOT __placeable), "
        "max(changed_at) FILTER (WHERE __placeable AND NOT __missing), "
        f"count(*) FILTER (WHERE __placeable AND __missing) FROM {sql.rows} GROUP BY load_id"
    )
    missing = sum(int(r[4]) for r in counts)
    if missing:
        raise IntegrityError(
            f"{missing} row(s) of staging.{target.model} have no "
            + ("anchor or knot row" if target.knot else "anchor row")
        )
    flagged = bool(sql.values)  # (a tie whose roles all identify has no value to conflict)
    wh.execute(f"CREATE OR REPLACE TEMP TABLE {sql.obs} AS {sql.deduped(sql.placed(), flagged)}")
    if not sql.first_load:
        wh.execute(sql.create_bounds())
    scd0 = target.effective_history == "scd0"
    late = False
    wh.execute(sql.create_recent())
    if not scd0:
        earliest = wh.scalar(f"SELECT min(changed_at) FROM {sql.obs}")
        if seen and high_water is not None and earliest is not None and earliest <= high_water:
            # Only rows from the earliest new observation on: with staging in load order
            # and times close to it, the engine skips older row groups by their min/max.
            since = f"{_loads_filter('s', seen)} AND s.{ident(target.changed_at)} >= ?"
            wh.execute("DROP TABLE IF EXISTS " + sql.late)
            wh.execute(
                f"CREATE TEMP TABLE {sql.late} AS SELECT * FROM ({sql.late_observations(since)}) "
                "AS l",
                [seen, earliest, high_water],
            )
            late = True
    if flagged and (late or wh.scalar(sql.has_conflicts())):
        record_conflicts(wh, target.table, sql.conflicts(late), now)
    wh.execute(f"DROP TABLE {sql.rows}")
    sql.fresh = sql.obs
    if late:
        wh.execute(sql.create_fresh())
    losers = False
    if sql.values:
        # A stored conflict loser is among the recent rows: the table is searched for it
        # only when there is one.
        wh.execute(sql.create_losers(sql.recent_rows))
        losers = bool(wh.scalar(f"SELECT count(*) FROM {sql.losers}"))
        if losers:
            serving.collect_losers(wh, plan, target, sql)
            wh.execute(sql.delete_losers(sql.table))
            wh.execute(sql.delete_losers(sql.recent_rows))
        wh.execute(f"DROP TABLE {sql.losers}")
    wh.execute(sql.create_inserted(scd0))
    inserted = wh.insert(sql.insert_inserted())
    began = time.perf_counter()
    served = serving.apply(wh, plan, target, sql)
    if losers:
        serving.refresh_losers(wh, plan, target, sql)
    serving_time[0] += served
    serving_time[1] += time.perf_counter() - began
    check_target(wh, target, sql, verify_history)
    temps = [sql.obs, sql.recent_rows, sql.inserted, *([] if sql.first_load else [sql.bounds])]
    for temp in temps + ([sql.late, sql.merged] if late else []):
        wh.execute(f"DROP TABLE {temp}")
    return list(counts), inserted


def _log_target(
    wh: Warehouse,
    target: TargetPlan,
    sql: TargetSQL,
    loads: list[int],
    counts: list[tuple[Any, ...]],
    now: datetime,
    run: TargetRun,
) -> None:
    """The transfers of the target's loads, once for all passes."""
    inserted = dict(
        wh.query(
            f"SELECT load_id, count(*) FROM {sql.table} AS a "
            f"WHERE {_loads_filter('a', loads)} GROUP BY load_id",
            [loads],
        )
    )
    by_load: dict[int, list[Any]] = {}
    for load, observed, without, latest, _ in counts:
        found = by_load.setdefault(int(load), [0, 0, None])
        found[0] += int(observed)
        found[1] += int(without)
        if latest is not None and (found[2] is None or latest > found[2]):
            found[2] = latest
    rows = []
    for load in loads:
        observed, without, latest = by_load.get(load, [0, 0, None])
        rows.append((load, observed, int(inserted.get(load, 0)), without, latest))
    log_anchor_transfers(wh, target.table, target.kind, target.model, rows, now)
    run.loads, run.observed = len(loads), sum(r[1] for r in rows)


# -- the step -------------------------------------------------------------------------------------


def workers(wh: Warehouse, configured: int | None) -> int:
    if configured:
        return configured
    # Not capped by the cores: on 2 cores, 4 connections loaded about 1.1x faster than 1
    # (medians of quiet runs; 1.8x the memory), one table's sorts overlapping another's scans.
    return max(1, wh.capabilities.parallel_writers)


def load_anchor(
    wh: Warehouse,
    plan: AnchorPlan,
    now: datetime | None = None,
    parallel: int = 1,
    on_target: Callable[[TargetRun], None] | None = None,
    verify_history: bool = True,
    batch_rows: int = BATCH_ROWS,
    memory_limit: str | None = None,
    group_rows: int | None = GROUP_ROWS,
    group_memory_limit: str | None = GROUP_MEMORY_LIMIT,
) -> AnchorRun:
    """Load every pending (load, model) into the anchor model, in groups of loads of at most
    `group_rows` staged rows (`anchor.groups`; None: one group), each committed before the
    next. A table whose integrity check fails is rolled back alone and named in `problems`;
    the others still load (the later groups skip it). The engine's memory is capped by
    `memory_limit` meanwhile (`Warehouse.memory_capped`), and by `group_memory_limit` too
    when the batch is split."""
    started = time.perf_counter()
    groups = load_groups(wh, plan, group_rows)
    if len(groups) > 1:
        memory_limit = smaller_size(memory_limit, group_memory_limit)
        log.info("%d groups of at most %s staged rows, memory capped at %s", len(groups),
                 group_rows, memory_limit or "the warehouse's limit")  # fmt: skip
    with wh.memory_capped(memory_limit):
        at = now or journal.utcnow()
        options = _Options(at, parallel, on_target, verify_history, batch_rows)
        runs: dict[str, TargetRun] = {}
        for number, group in enumerate(groups):
            if number:
                crash_point("anchor_between_groups")
                log.info("anchoring group %d of %d (%d loads)", number + 1, len(groups),
                         len(group or ()))  # fmt: skip
            failed = {name for name, run in runs.items() if run.problem}
            for run in _load_group(wh, plan, options, group, failed):
                runs[run.table] = _merged(runs.get(run.table), run)
        return AnchorRun(list(runs.values()), time.perf_counter() - started)


def _merged(before: TargetRun | None, run: TargetRun) -> TargetRun:
    """A table's runs of two groups as one."""
    if before is None:
        return run
    return TargetRun(
        run.table, run.kind, before.loads + run.loads, before.observed + run.observed,
        before.inserted + run.inserted, before.seconds + run.seconds, run.problem,
        before.serving_rows + run.serving_rows, before.serving_seconds + run.serving_seconds,
    )  # fmt: skip


@dataclass
class _Options:
    at: datetime
    parallel: int
    on_target: Callable[[TargetRun], None] | None
    verify_history: bool
    batch_rows: int


def _load_group(
    wh: Warehouse, plan: AnchorPlan, options: _Options, group: Group, failed: set[str]
) -> list[TargetRun]:
    """Entities and knots, then attributes and ties, for the pending loads of `group`; the
    tables in `failed` are skipped."""
    result: list[TargetRun] = []

    def step(
        name: str, kind: str, action: Callable[[Warehouse], TargetRun], con: Warehouse
    ) -> TargetRun:
        began = time.perf_counter()
        try:
            run = action(con)
        except IntegrityError as error:  # its transaction was rolled back
            run = TargetRun(name, kind, problem=str(error))
        run.seconds = time.perf_counter() - began
        if options.on_target:
            options.on_target(run)
        return run

    at, parallel = options.at, options.parallel
    # Entities and knots first: attributes and ties resolve their ids through them.
    for entity in plan.entities.values():
        if entity.name not in failed:
            action = partial(load_entity, entity=entity, now=at, only=group)
            result.append(step(entity.name, "entity", action, wh))
    for knot in plan.knots.values():
        if knot.name not in failed:
            action = partial(load_knot, knot=knot, now=at, only=group)
            result.append(step(knot.name, "knot", action, wh))
    targets = [t for t in plan.targets.values() if t.table not in failed]
    load = partial(
        load_target, plan=plan, now=at, verify_history=options.verify_history,
        batch_rows=options.batch_rows, only=group,
    )  # fmt: skip
    index = {name: i for i, name in enumerate(plan.targets)}  # temp table names per target
    actions = [partial(load, target=t, index=index[t.table]) for t in targets]
    if parallel <= 1 or len(targets) <= 1:
        result += [step(t.table, t.kind, a, wh) for t, a in zip(targets, actions, strict=True)]
    else:
        # One connection per worker; a connection runs one transaction at a time.
        connections = [wh.worker() for _ in range(parallel)]
        try:
            with ThreadPoolExecutor(parallel) as pool:
                futures = [
                    pool.submit(step, t.table, t.kind, a, connections[i % parallel])
                    for i, (t, a) in enumerate(zip(targets, actions, strict=True))
                ]
                result += [f.result() for f in futures]
        finally:
            for con in connections:
                if con is not wh:
                    con.close()
    return result
