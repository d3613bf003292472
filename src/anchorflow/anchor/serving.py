"""Serving tables: the anchor model made fast to read, without giving up exactness.

`anchor.<Entity>_current` holds one row per entity: its id, natural key, `__first_seen` (the
earliest instant any of its attributes or ties holds a value: when it became known), and per
attribute the value a reader sees now (a knot's value, not its id) and `__at_<attribute>`, the
instant of that value (the latest change; for scd0 the first value's). It is derived: the
attribute and tie tables stay the truth (insert-only), and the serving table can be rebuilt from
them at any time (`anchorflow anchor --rebuild-serving`).

How it is kept exact:

- every target's transaction records, with its rows, which entity ids it touched and from which
  instant (`mark_touched` → `meta.anchor_dirty`); the entity step records new entities; a
  rollback or forget records the ids it took rows from (read again from the start);
- at the end of the anchor step (and of a rollback or forget), `refresh` recomputes the serving
  rows of those ids from their rows since that instant, and clears their marks, in one
  transaction per entity;
- perspectives read the serving row of an id with no mark, and compute the others from the
  attribute tables as before (`anchor.views`): between a target's commit and the refresh, or
  after a crash between them, readers still see exact values, only slower for those ids.
"""

from __future__ import annotations

import json

from anchorflow.anchor.plan import SCHEMA, AnchorPlan, TargetPlan, anchor_table
from anchorflow.anchor.target_sql import TargetSQL
from anchorflow.journal.anchor import (
    clear_dirty,
    dirty_count,
    dirty_relation,
    known_declaration,
    mark_dirty,
    store_declaration,
)
from anchorflow.warehouse import Warehouse, ident, table
from anchorflow.warehouse.dialect import CANONICAL

FIRST_SEEN = "__first_seen"


def current_name(entity: str) -> str:
    return f"{entity}_current"


def at_column(attribute: str) -> str:
    return f"__at_{attribute}"


def attribute_name(target: TargetPlan) -> str:
    return target.attribute or target.table


def shown_type(plan: AnchorPlan, target: TargetPlan) -> str:
    """The type of the value a reader sees: a knot's value type for a knotted attribute."""
    if target.knot:
        return plan.knots[target.knot].type
    return target.value_type or "VARCHAR"


def serving_columns(plan: AnchorPlan, entity: str) -> dict[str, str]:
    spec = plan.entities[entity]
    columns = {"id": "BIGINT"} | dict(zip(spec.key, spec.key_types, strict=True))
    columns[FIRST_SEEN] = "TIMESTAMP"
    for target in plan.attributes_of(entity):
        name = attribute_name(target)
        columns[name] = shown_type(plan, target)
        columns[at_column(name)] = "TIMESTAMP"
    return columns


def involving(plan: AnchorPlan, entity: str) -> list[tuple[TargetPlan, str]]:
    """(target, column holding the entity's id) for every attribute and tie role of it."""
    found = []
    for target in plan.targets.values():
        found += [(target, r.column) for r in target.roles if r.entity == entity]
    return found


# -- marking --------------------------------------------------------------------------------------


def mark_touched(wh: Warehouse, plan: AnchorPlan, target: TargetPlan, sql: TargetSQL) -> None:
    """In the target's transaction, after its insert: every entity id the batch touched lags
    in its serving row from the stored change in force at its earliest new instant (the
    `bounds` temp table) on."""
    for role in target.roles:
        if role.entity not in plan.entities:
            continue
        column = ident(role.column)
        if role.column in target.key_columns:
            ids = f"SELECT {column} AS id, min(start) AS since FROM {sql.bounds} GROUP BY {column}"
        else:  # a tie's value role: the partner ids the batch observed, from their instants
            ids = (
                f"SELECT {column} AS id, min(changed_at) AS since FROM {sql.obs} GROUP BY {column}"
            )
        mark_dirty(wh, role.entity, target.table, ids)


def mark_new_entities(wh: Warehouse, entity: str, loaded_at: object) -> None:
    """In the entity step's transaction: the rows it inserted need a serving row."""
    mark_dirty(
        wh, entity, "",
        f"SELECT id, CAST(NULL AS TIMESTAMP) AS since FROM {anchor_table(entity)} "
        "WHERE loaded_at = ?",
        [loaded_at],
    )  # fmt: skip


def mark_rows(
    wh: Warehouse, plan: AnchorPlan, target: TargetPlan, where: str, params: list[object]
) -> None:
    """The ids of `target`'s rows matching `where` (over alias `a`, before they are deleted)
    are read again from the start."""
    for role in target.roles:
        if role.entity in plan.entities:
            column = ident(role.column)
            mark_dirty(
                wh, role.entity, target.table,
                f"SELECT DISTINCT a.{column} AS id, CAST(NULL AS TIMESTAMP) AS since "
                f"FROM {anchor_table(target.table)} AS a WHERE {where}",
                params,
            )  # fmt: skip


def mark_entity_rows(wh: Warehouse, entity: str, where: str, params: list[object]) -> None:
    """Entity rows matching `where` (alias `a`, before they are deleted) lose their serving row
    or get it read again."""
    mark_dirty(
        wh, entity, "",
        f"SELECT a.id, CAST(NULL AS TIMESTAMP) AS since FROM {anchor_table(entity)} AS a "
        f"WHERE {where}",
        params,
    )  # fmt: skip


# -- the tables -----------------------------------------------------------------------------------


def ensure_serving(wh: Warehouse, plan: AnchorPlan) -> None:
    """Create each entity's serving table; one whose columns no longer match the declaration
    (an attribute added or retyped) is built anew from the anchor tables."""
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
            _mark_all(wh, entity)
        refresh(wh, plan, entity)


def _mark_all(wh: Warehouse, entity: str) -> None:
    clear_dirty(wh, entity)
    mark_dirty(
        wh, entity, "", f"SELECT id, CAST(NULL AS TIMESTAMP) AS since FROM {anchor_table(entity)}"
    )


def rebuild(wh: Warehouse, plan: AnchorPlan) -> dict[str, int]:
    """Every serving table recomputed from the anchor tables; returns rows per table."""
    counts = {}
    for entity in plan.entities:
        with wh.transaction():
            wh.execute(f"DELETE FROM {anchor_table(current_name(entity))}")
            _mark_all(wh, entity)
        counts[f"anchor.{current_name(entity)}"] = refresh(wh, plan, entity)
    return counts


# -- the refresh ----------------------------------------------------------------------------------


def refresh_all(wh: Warehouse, plan: AnchorPlan) -> int:
    """Refresh every entity with marked ids; returns the serving rows written."""
    return sum(refresh(wh, plan, entity) for entity in plan.entities)


def refresh(wh: Warehouse, plan: AnchorPlan, entity: str, in_transaction: bool = False) -> int:
    """Recompute the serving rows of the entity's marked ids, then clear the marks. An id
    marked from the start (since NULL) is recomputed from all its rows; otherwise each marked
    attribute's rows since its instant are merged with the value the row held."""
    if not dirty_count(wh, entity):
        return 0
    if in_transaction:
        return _refresh(wh, plan, entity)
    with wh.transaction():
        return _refresh(wh, plan, entity)


def _refresh(wh: Warehouse, plan: AnchorPlan, entity: str) -> int:
    current = anchor_table(current_name(entity))
    wh.execute("DROP TABLE IF EXISTS __serve_ids")
    # Per id, the earliest instant any mark asks for (every target of the id is read from
    # there: a target the batch did not touch only has rows the serving row already holds);
    # full: an id marked from the start.
    wh.execute(
        "CREATE TEMP TABLE __serve_ids AS SELECT id, count(since) < count(*) AS from_start, "
        f"CASE WHEN count(since) < count(*) THEN {BEGINNING} ELSE min(since) END AS since "
        f"FROM ({dirty_relation(entity)}) AS d GROUP BY id"
    )
    wh.execute("DROP TABLE IF EXISTS __serve_rows")
    wh.execute(f"CREATE TEMP TABLE __serve_rows AS {_rows_sql(plan, entity)}")
    wh.execute(f"DELETE FROM {current} WHERE id IN (SELECT id FROM __serve_ids)")
    columns = ", ".join(ident(c) for c in serving_columns(plan, entity))
    written = wh.insert(f"INSERT INTO {current} ({columns}) SELECT {columns} FROM __serve_rows")
    clear_dirty(wh, entity)
    for name in ("__serve_rows", "__serve_ids"):
        wh.execute(f"DROP TABLE {name}")
    return written


BEGINNING = "CAST('-infinity' AS TIMESTAMP)"


def _reading(alias: str, column: str) -> str:
    """A join keeping the rows (alias, its id column) that the marks ask to read."""
    return f"JOIN __serve_ids AS r ON r.id = {alias}.{column} AND {alias}.changed_at >= r.since"


def _rows_sql(plan: AnchorPlan, entity: str) -> str:
    spec = plan.entities[entity]
    keys = "".join(f", e.{ident(k)}" for k in spec.key)
    joins, columns, earliest = [], [], []
    for index, target in enumerate(plan.attributes_of(entity)):
        name, alias = attribute_name(target), f"c{index}"
        scd0 = target.effective_history == "scd0"
        pick = CANONICAL.earliest if scd0 else CANONICAL.latest
        when = "min" if scd0 else "max"
        value = "a.value"
        source = f"{anchor_table(target.table)} AS a {_reading('a', 'id')}"
        if target.knot:
            source += f" JOIN {anchor_table(target.knot)} AS k ON k.id = a.value"
            value = "k.value"
        joins.append(
            f"LEFT JOIN (SELECT a.id, {pick(value, 'a.changed_at')} AS value, "
            f"{when}(a.changed_at) AS at, min(a.changed_at) AS first FROM {source} "
            f"GROUP BY a.id) AS {alias} ON {alias}.id = e.id"
        )
        earliest.append(f"{alias}.first")
        newer = f"{alias}.at >= o.{ident(at_column(name))}"
        if scd0:
            newer = f"{alias}.at <= o.{ident(at_column(name))}"
        take_new = (
            f"ids.from_start OR ({alias}.at IS NOT NULL AND "
            f"(o.{ident(at_column(name))} IS NULL OR {newer}))"
        )
        for column, new in ((name, "value"), (at_column(name), "at")):
            columns.append(
                f"CASE WHEN {take_new} THEN {alias}.{new} ELSE o.{ident(column)} END "
                f"AS {ident(column)}"
            )
    ties = [(t, c) for t, c in involving(plan, entity) if t.kind == "tie"]
    firsts = " UNION ALL ".join(
        f"SELECT a.{ident(column)} AS id, min(a.changed_at) AS first "
        f"FROM {anchor_table(target.table)} AS a {_reading('a', ident(column))} "
        f"GROUP BY a.{ident(column)}"
        for target, column in ties
    )
    if firsts:
        joins.append(
            f"LEFT JOIN (SELECT id, min(first) AS first FROM ({firsts}) AS u GROUP BY id) "
            "AS fs ON fs.id = e.id"
        )
        earliest.append("fs.first")
    first = "CAST(NULL AS TIMESTAMP)"
    if earliest:  # least() skips NULLs on both engines
        seen = f"least({', '.join(earliest)})" if len(earliest) > 1 else earliest[0]
        first = (
            f"CASE WHEN ids.from_start THEN {seen} ELSE least(o.{ident(FIRST_SEEN)}, {seen}) END"
        )
    listed = "".join(f", {c}" for c in columns)
    return (
        f"SELECT e.id{keys}, {first} AS {ident(FIRST_SEEN)}{listed} "
        f"FROM {anchor_table(entity)} AS e "
        f"JOIN __serve_ids AS ids ON ids.id = e.id "
        f"LEFT JOIN {table(SCHEMA, current_name(entity))} AS o ON o.id = e.id {' '.join(joins)}"
    )
