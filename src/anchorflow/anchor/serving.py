"""Serving tables: the anchor model made fast to read.

`anchor.<Entity>_current` holds one row per entity: its id and natural key; per attribute the
value a reader sees now (a knot's value, not its id) and `__at_<attribute>`, the instant of that
value (the latest change; for scd0 the first value's); for scd2 also the value before it and its
instant (`__prev_<attribute>`, `__prev_at_<attribute>`), so that a perspective as of T reads the
history only for the ids that changed twice after T; and per attribute or tie role of the
entity, `__first_<table>`, the earliest instant that table holds a value of it. The least of
those is when the entity became known (`first_seen_sql`).

It is derived and kept in the same transactions as the rows it serves, so it is never behind:

- the entity step inserts the row of every new entity (`add_entities`);
- each attribute or tie transaction, after its insert, updates its own columns for the ids it
  inserted rows of (`apply`), from the served row and the inserted rows alone: the cost
  follows the rows inserted, not the history (a conflict's deleted loser sends its ids to
  `recompute`, which reads their rows). Attribute and
  tie transactions run at once on several connections and write different columns (DuckDB
  allows that; PostgreSQL would lock the rows in any order, so they take a lock per entity);
- a rollback or forget recomputes the rows of the ids it took rows from (`recompute`), and
  `anchorflow anchor --rebuild-serving` every row (`rebuild`), from the attribute and tie
  tables, which stay insert-only and the truth.
"""

from __future__ import annotations

import json
from typing import Any

from anchorflow.anchor.plan import SCHEMA, AnchorPlan, TargetPlan, anchor_table
from anchorflow.anchor.target_sql import TargetSQL
from anchorflow.journal.anchor import known_declaration, store_declaration
from anchorflow.warehouse import Warehouse, ident
from anchorflow.warehouse.dialect import CANONICAL


def current_name(entity: str) -> str:
    return f"{entity}_current"


def at_column(attribute: str) -> str:
    return f"__at_{attribute}"


def prev_columns(attribute: str) -> tuple[str, str]:
    """The previous value's column and its instant's (scd2 attributes: `keeps_previous`)."""
    return f"__prev_{attribute}", f"__prev_at_{attribute}"


def keeps_previous(target: TargetPlan) -> bool:
    return target.kind == "attribute" and target.effective_history == "scd2"


def attribute_name(target: TargetPlan) -> str:
    return target.attribute or target.table


def shown_type(plan: AnchorPlan, target: TargetPlan) -> str:
    """The type of the value a reader sees: a knot's value type for a knotted attribute."""
    if target.knot:
        return plan.knots[target.knot].type
    return target.value_type or "VARCHAR"


def involving(plan: AnchorPlan, entity: str) -> list[tuple[TargetPlan, str]]:
    """(target, column holding the entity's id) for every attribute and tie role of it."""
    found = []
    for target in plan.targets.values():
        found += [(target, r.column) for r in target.roles if r.entity == entity]
    return found


def first_column(plan: AnchorPlan, entity: str, target: TargetPlan, column: str) -> str:
    """`__first_<table>`, or `__first_<table>__<column>` where the entity has two roles."""
    roles = [r for r in target.roles if r.entity == entity]
    return f"__first_{target.table}" + (f"__{column}" if len(roles) > 1 else "")


def serving_columns(plan: AnchorPlan, entity: str) -> dict[str, str]:
    spec = plan.entities[entity]
    columns = {"id": "BIGINT"} | dict(zip(spec.key, spec.key_types, strict=True))
    for target in plan.attributes_of(entity):
        name = attribute_name(target)
        columns[name] = shown_type(plan, target)
        columns[at_column(name)] = "TIMESTAMP"
        if keeps_previous(target):
            prev, prev_at = prev_columns(name)
            columns[prev], columns[prev_at] = shown_type(plan, target), "TIMESTAMP"
    for target, column in involving(plan, entity):
        columns[first_column(plan, entity, target, column)] = "TIMESTAMP"
    return columns


def first_seen_sql(plan: AnchorPlan, entity: str, alias: str) -> str:
    """When the entity (a serving row, `alias`) became known: its earliest dated value in any
    attribute or tie (NULL: never; least() skips NULLs on both engines)."""
    firsts = [
        f"{alias}.{ident(first_column(plan, entity, t, c))}" for t, c in involving(plan, entity)
    ]
    if not firsts:
        return "CAST(NULL AS TIMESTAMP)"
    return firsts[0] if len(firsts) == 1 else f"least({', '.join(firsts)})"


# -- kept with the rows ---------------------------------------------------------------------------


def add_entities(
    wh: Warehouse, entity: str, key: list[str], loaded_at: Any, loads: list[int]
) -> None:
    """In the entity step's transaction: a serving row for each entity it inserted (its rows
    of this instant and of these loads: an earlier group of the same step has others)."""
    keys = "".join(f", {ident(k)}" for k in key)
    wh.execute(
        f"INSERT INTO {anchor_table(current_name(entity))} (id{keys}) "
        f"SELECT id{keys} FROM {anchor_table(entity)} "
        "WHERE loaded_at = ? AND load_id BETWEEN ? AND ? AND list_contains(?, load_id)",
        [loaded_at, min(loads), max(loads), loads],
    )


def apply(wh: Warehouse, plan: AnchorPlan, target: TargetPlan, sql: TargetSQL) -> int:
    """In the target's transaction, after its insert: the target's columns of the serving rows
    of the ids the batch touched (the `bounds` temp table: per key, its earliest new instant).
    Returns the serving rows updated."""
    updated = 0
    for entity in sorted({r.entity for r in target.roles if r.entity in plan.entities}):
        lock = wh.sql.serialize(f"anchorflow.serving.{entity}")
        if lock:
            wh.execute(lock)
    if target.kind == "attribute" and target.entity in plan.entities:
        updated += _apply_value(wh, plan, target, sql)
    for role in target.roles:
        if role.entity in plan.entities and target.kind == "tie":
            updated += _apply_first(wh, plan, target, role.entity, role.column, sql)
    return updated


def _served_value(
    plan: AnchorPlan, target: TargetPlan, rows: str | None = None
) -> tuple[str, str, str]:
    """(aggregate of the value shown, aggregate of its instant, the rows `a` it reads: the
    attribute table, or `rows` of its shape): the latest for scd1/scd2, the first for scd0; a
    knot's value for a knotted attribute."""
    scd0 = target.effective_history == "scd0"
    pick = CANONICAL.earliest if scd0 else CANONICAL.latest
    source, shown = f"{rows or anchor_table(target.table)} AS a", "a.value"
    if target.knot:
        source += f" JOIN {anchor_table(target.knot)} AS k ON k.id = a.value"
        shown = "k.value"
    return pick(shown, "a.changed_at"), f"{'min' if scd0 else 'max'}(a.changed_at)", source


def _shown_rows(plan: AnchorPlan, target: TargetPlan, rows: str, where: str = "") -> str:
    """(id, value shown, at) of attribute rows (`rows`: the table, or rows of its shape)."""
    source, shown = f"{rows} AS a", "a.value"
    if target.knot:
        source += f" JOIN {anchor_table(target.knot)} AS k ON k.id = a.value"
        shown = "k.value"
    return f"SELECT a.id, {shown} AS value, a.changed_at AS at FROM {source} {where}"


def _latest_two(candidates: str) -> str:
    """Per id, the latest two of `candidates` (id, value, at) by instant: (id, value, at,
    prev, prev_at). Two rows of an id never share an instant (one per key and instant)."""
    window = "OVER (PARTITION BY x.id ORDER BY x.at DESC)"
    return (
        "SELECT r.id, r.value, r.at, r.prev, r.prev_at FROM (SELECT x.id, x.value, x.at, "
        f"lead(x.value) {window} AS prev, lead(x.at) {window} AS prev_at, "
        f"row_number() {window} AS __rn FROM ({candidates}) AS x) AS r WHERE r.__rn = 1"
    )


def _apply_value(wh: Warehouse, plan: AnchorPlan, target: TargetPlan, sql: TargetSQL) -> int:
    if keeps_previous(target):
        return _apply_latest_two(wh, plan, target, sql)
    return _apply_one(wh, plan, target, sql)


def _apply_latest_two(wh: Warehouse, plan: AnchorPlan, target: TargetPlan, sql: TargetSQL) -> int:
    """scd2: the latest two of the served value, the served previous one and the rows the pass
    inserted become the value and the previous one (a late row may fall between them); the
    first instant is the least of the served one and the inserted rows'."""
    entity = target.entity or ""
    name = attribute_name(target)
    value, at = ident(name), ident(at_column(name))
    prev, prev_at = (ident(c) for c in prev_columns(name))
    first = ident(first_column(plan, entity, target, "id"))
    current = anchor_table(current_name(entity))
    touched = f"c.id IN (SELECT i.id FROM {sql.inserted} AS i)"
    served = [
        f"SELECT c.id, c.{value}, c.{at} FROM {current} AS c "
        f"WHERE c.{at} IS NOT NULL AND {touched}",
        f"SELECT c.id, c.{prev}, c.{prev_at} FROM {current} AS c "
        f"WHERE c.{prev_at} IS NOT NULL AND {touched}",
    ]
    # A first load: the attribute's table had no row, so nothing of it was served.
    candidates = " UNION ALL ".join(
        [_shown_rows(plan, target, sql.inserted), *([] if sql.first_load else served)]
    )
    return wh.insert(
        f"UPDATE {current} AS c SET {value} = n.value, {at} = n.at, {prev} = n.prev, "
        f"{prev_at} = n.prev_at, {first} = least(c.{first}, f.first) "
        f"FROM ({_latest_two(candidates)}) AS n JOIN (SELECT i.id, min(i.changed_at) AS first "
        f"FROM {sql.inserted} AS i GROUP BY i.id) AS f ON f.id = n.id WHERE c.id = n.id"
    )


def _apply_one(wh: Warehouse, plan: AnchorPlan, target: TargetPlan, sql: TargetSQL) -> int:
    """The served row and the rows the pass inserted (`sql.inserted`) are all it takes: the
    value now is the later of the served one and the latest inserted (scd0: the earlier of
    the first ones), the first instant the least of both. Nothing else of the history can
    have changed, except a conflict's stored loser, deleted: its ids are recomputed from
    their rows (`collect_losers`). The cost follows the rows inserted, not the history."""
    entity = target.entity or ""
    name = attribute_name(target)
    value, at = ident(name), ident(at_column(name))
    first = ident(first_column(plan, entity, target, "id"))
    scd0 = target.effective_history == "scd0"
    value_of, at_of, source = _served_value(plan, target, sql.inserted)
    take = f"c.{at} IS NULL OR n.at {'<=' if scd0 else '>='} c.{at}"
    return wh.insert(
        f"UPDATE {anchor_table(current_name(entity))} AS c SET "
        f"{value} = CASE WHEN {take} THEN n.value ELSE c.{value} END, "
        f"{at} = CASE WHEN {take} THEN n.at ELSE c.{at} END, "
        f"{first} = least(c.{first}, n.first) "
        f"FROM (SELECT a.id, {value_of} AS value, {at_of} AS at, min(a.changed_at) AS first "
        f"FROM {source} GROUP BY a.id) AS n WHERE c.id = n.id"
    )


def _apply_first(
    wh: Warehouse, plan: AnchorPlan, target: TargetPlan, entity: str, column: str, sql: TargetSQL
) -> int:
    """A tie role: the earlier of the served first instant and the rows the pass inserted
    (a partner named by a deleted conflict loser is recomputed: `collect_losers`)."""
    role = ident(column)
    first = ident(first_column(plan, entity, target, column))
    return wh.insert(
        f"UPDATE {anchor_table(current_name(entity))} AS c SET {first} = least(c.{first}, n.first) "
        f"FROM (SELECT a.{role} AS id, min(a.changed_at) AS first "
        f"FROM {sql.inserted} AS a GROUP BY a.{role}) AS n WHERE c.id = n.id"
    )


# -- recomputed -----------------------------------------------------------------------------------


def ensure_serving(wh: Warehouse, plan: AnchorPlan) -> None:
    """Create each entity's serving table; one whose columns no longer match the declaration
    (an attribute or tie added, retyped or renamed) is built anew from the anchor tables."""
    from anchorflow.anchor.ddl import create_table_sql  # ddl calls this function

    for entity in plan.entities:
        name = current_name(entity)
        columns = serving_columns(plan, entity)
        shape = json.dumps(columns)
        exists = wh.table_exists(SCHEMA, name)
        if exists and known_declaration(wh, name) == shape:
            continue
        with wh.transaction():
            if exists:
                wh.execute(f"DROP TABLE {anchor_table(name)}")
            wh.execute(create_table_sql(name, columns, wh.dialect, not_null=["id"]))
            store_declaration(wh, name, shape)
            recompute(wh, plan, entity, f"SELECT id FROM {anchor_table(entity)}")


def rebuild(wh: Warehouse, plan: AnchorPlan) -> dict[str, int]:
    """Every serving table recomputed from the anchor tables; returns rows per table."""
    counts = {}
    for entity in plan.entities:
        with wh.transaction():
            wh.execute(f"DELETE FROM {anchor_table(current_name(entity))}")
            written = recompute(wh, plan, entity, f"SELECT id FROM {anchor_table(entity)}")
        counts[f"anchor.{current_name(entity)}"] = written
    return counts


def collect(wh: Warehouse, entity: str, ids: str, params: list[Any]) -> None:
    """Remember ids (a relation of `id`, with its parameters) whose serving rows a removal will
    recompute (`recompute_collected`), before their rows are deleted."""
    wh.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_collected(entity)} (id BIGINT)")
    wh.execute(f"INSERT INTO {_collected(entity)} SELECT c.id FROM ({ids}) AS c", params)


def collect_losers(wh: Warehouse, plan: AnchorPlan, target: TargetPlan, sql: TargetSQL) -> None:
    """Before a conflict's stored losers are deleted: the ids they name, per role, whose
    columns of this target `refresh_losers` recomputes after the pass (`apply` reads only the
    inserted rows, and a deleted loser may have been the value served or a first instant)."""
    same = " AND ".join([*(f"a.{k} = l.{k}" for k in sql.keys), "a.changed_at = l.changed_at"])
    roles = ", ".join(f"a.{ident(r.column)}" for r in target.roles)
    wh.execute(
        f"CREATE OR REPLACE TEMP TABLE {sql.loser_ids} AS SELECT DISTINCT {roles} "
        f"FROM {anchor_table(target.table)} AS a JOIN {sql.losers} AS l ON {same}"
    )


def refresh_losers(wh: Warehouse, plan: AnchorPlan, target: TargetPlan, sql: TargetSQL) -> None:
    """This target's serving columns of the ids `collect_losers` kept, from all their rows.
    Only these columns: other targets' transactions update the same rows at once, and
    replacing whole rows here would undo their updates."""
    for role in target.roles:
        if role.entity not in plan.entities:
            continue
        ids = f"SELECT DISTINCT {ident(role.column)} AS id FROM {sql.loser_ids}"
        first = ident(first_column(plan, role.entity, target, role.column))
        current = anchor_table(current_name(role.entity))
        if target.kind == "attribute":
            rows, sets = _recomputed_value(plan, target, ids)
            sets += f", {first} = n.first"
        else:
            col = ident(role.column)
            rows = (  # (a partner whose only row lost has no first instant left)
                f"SELECT i.id, min(a.changed_at) AS first FROM ({ids}) AS i "
                f"LEFT JOIN {anchor_table(target.table)} AS a ON a.{col} = i.id GROUP BY i.id"
            )
            sets = f"{first} = n.first"
        wh.execute(f"UPDATE {current} AS c SET {sets} FROM ({rows}) AS n WHERE c.id = n.id")
    wh.execute(f"DROP TABLE {sql.loser_ids}")


def _recomputed_value(plan: AnchorPlan, target: TargetPlan, ids: str) -> tuple[str, str]:
    """(rows of id, value, at[, prev, prev_at], first from all the rows of the ids in `ids`;
    the SET list of the attribute's serving columns from them, `n`)."""
    name = attribute_name(target)
    value, at = ident(name), ident(at_column(name))
    firsts = (
        f"SELECT a.id, min(a.changed_at) AS first FROM {anchor_table(target.table)} AS a "
        f"WHERE a.id IN ({ids}) GROUP BY a.id"
    )
    if keeps_previous(target):
        prev, prev_at = (ident(c) for c in prev_columns(name))
        shown = _shown_rows(plan, target, anchor_table(target.table), f"WHERE a.id IN ({ids})")
        rows = (
            f"SELECT t.id, t.value, t.at, t.prev, t.prev_at, f.first FROM ({_latest_two(shown)}) "
            f"AS t JOIN ({firsts}) AS f ON f.id = t.id"
        )
        sets = f"{value} = n.value, {at} = n.at, {prev} = n.prev, {prev_at} = n.prev_at"
        return rows, sets
    value_of, at_of, source = _served_value(plan, target)
    rows = (
        f"SELECT a.id, {value_of} AS value, {at_of} AS at, min(a.changed_at) AS first "
        f"FROM {source} WHERE a.id IN ({ids}) GROUP BY a.id"
    )
    return rows, f"{value} = n.value, {at} = n.at"


def recompute_collected(wh: Warehouse, plan: AnchorPlan) -> None:
    for entity in plan.entities:
        wh.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_collected(entity)} (id BIGINT)")
        if wh.scalar(f"SELECT count(*) FROM {_collected(entity)}"):
            recompute(wh, plan, entity, f"SELECT id FROM {_collected(entity)}")
        wh.execute(f"DROP TABLE {_collected(entity)}")


def _collected(entity: str) -> str:
    return ident(f"__serving_ids_{entity}")


def recompute(wh: Warehouse, plan: AnchorPlan, entity: str, ids: str) -> int:
    """The serving rows of these ids (a relation of `id`) recomputed from all their rows; an id
    whose entity row is gone loses its serving row. Returns the rows written."""
    current = anchor_table(current_name(entity))
    wh.execute("DROP TABLE IF EXISTS __serving_ids")
    wh.execute(f"CREATE TEMP TABLE __serving_ids AS SELECT DISTINCT id FROM ({ids}) AS i")
    wh.execute(f"DELETE FROM {current} WHERE id IN (SELECT id FROM __serving_ids)")
    columns = ", ".join(ident(c) for c in serving_columns(plan, entity))
    written = wh.insert(f"INSERT INTO {current} ({columns}) {_rows_sql(plan, entity)}")
    wh.execute("DROP TABLE __serving_ids")
    return written


def _rows_sql(plan: AnchorPlan, entity: str) -> str:
    """Serving rows of the ids in `__serving_ids`, from all their rows, columns in order."""
    spec = plan.entities[entity]
    keys = "".join(f", e.{ident(k)}" for k in spec.key)
    joins, columns = [], []
    for index, target in enumerate(plan.attributes_of(entity)):
        alias = f"c{index}"
        if keeps_previous(target):
            shown = _shown_rows(
                plan, target, anchor_table(target.table),
                "WHERE a.id IN (SELECT id FROM __serving_ids)",
            )  # fmt: skip
            joins.append(f"LEFT JOIN ({_latest_two(shown)}) AS {alias} ON {alias}.id = e.id")
            columns += [f"{alias}.{c}" for c in ("value", "at", "prev", "prev_at")]
            continue
        value_of, at_of, source = _served_value(plan, target)
        joins.append(
            f"LEFT JOIN (SELECT a.id, {value_of} AS value, {at_of} AS at FROM {source} "
            "WHERE a.id IN (SELECT id FROM __serving_ids) "
            f"GROUP BY a.id) AS {alias} ON {alias}.id = e.id"
        )
        columns += [f"{alias}.value", f"{alias}.at"]
    for index, (target, column) in enumerate(involving(plan, entity)):
        alias, role = f"f{index}", ident(column)
        joins.append(
            f"LEFT JOIN (SELECT a.{role} AS id, min(a.changed_at) AS first "
            f"FROM {anchor_table(target.table)} AS a "
            f"WHERE a.{role} IN (SELECT id FROM __serving_ids) GROUP BY a.{role}) AS {alias} "
            f"ON {alias}.id = e.id"
        )
        columns.append(f"{alias}.first")
    listed = "".join(f", {c}" for c in columns)
    return (
        f"SELECT e.id{keys}{listed} FROM {anchor_table(entity)} AS e "
        f"JOIN __serving_ids AS ids ON ids.id = e.id {' '.join(joins)}"
    )
