"""Taking data back out of the anchor model: the rows of loads, and an entity by key.

- `remove_loads` deletes loads' rows from every anchor table. An entity or knot row that a
  load created, and that another load's rows still point at, keeps its id (it must not change
  under them). A replaced load is gone for good: such a row is re-attributed to the earliest
  load that uses it. A rolled-back load comes back: the row keeps its load id.
- `erase_entity` deletes one entity's row, attribute values and ties, and its key's row of the
  id registry (the id is retired: never given again, even to the same key), and returns every
  value its attributes held, so the journal can be scrubbed of them too.
- Neither touches the id registry otherwise: a key a removed load brought keeps its id for
  when it comes back.
"""

from __future__ import annotations

from anchorflow.anchor import serving
from anchorflow.anchor.ddl import entity_columns, knot_columns
from anchorflow.anchor.plan import SCHEMA, AnchorPlan, TargetPlan
from anchorflow.errors import ConfigError
from anchorflow.journal.anchor import (
    forget_anchor_transfers,
    forget_conflicts,
    forget_conflicts_of,
    key_text,
    retire_key,
)
from anchorflow.warehouse import Warehouse, ident, table


def _referencing(plan: AnchorPlan, name: str) -> list[tuple[str, str]]:
    """(table, column) pairs whose values are ids of the entity or knot `name`."""
    found = []
    for target in plan.targets.values():
        found += [(target.table, r.column) for r in target.roles if r.entity == name]
        if target.knot == name:
            found.append((target.table, "value"))
    return found


def _columns(plan: AnchorPlan, name: str) -> list[str]:
    """The columns of an entity's or knot's table, in their order."""
    if name in plan.entities:
        return list(entity_columns(plan.entities[name]))
    return list(knot_columns(plan.knots[name].type))


def _remove_rows(
    wh: Warehouse, plan: AnchorPlan, name: str, load_ids: list[int], reattribute: bool
) -> int:
    """Delete an entity's (or knot's) rows of these loads. A row that other loads' attribute or
    tie rows still point at stays, with its id, so ids never change under their users: with
    `reattribute` (the load is gone for good) under the earliest of those loads, else (the load
    will be anchored again) under its own."""
    target = table(SCHEMA, name)
    references = _referencing(plan, name)
    if references and not reattribute:
        used = " OR ".join(
            f"EXISTS (SELECT 1 FROM {table(SCHEMA, t)} AS r WHERE r.{ident(c)} = a.id)"
            for t, c in references
        )
        return wh.insert(
            f"DELETE FROM {target} AS a WHERE list_contains(?, a.load_id) AND NOT ({used})",
            [load_ids],
        )
    kept = 0
    if references:
        refs = " UNION ALL ".join(
            f"SELECT r.{ident(column)} AS id, r.load_id FROM {table(SCHEMA, t)} AS r"
            for t, column in references
        )
        kept_columns = ", ".join(
            "u.load_id AS load_id" if c == "load_id" else f"a.{ident(c)}"
            for c in _columns(plan, name)
        )
        wh.execute("DROP TABLE IF EXISTS __kept")  # (a statement with parameters replaces none)
        wh.execute(
            f"CREATE TEMP TABLE __kept AS SELECT {kept_columns} "
            f"FROM {target} AS a JOIN (SELECT id, min(load_id) AS load_id FROM ({refs}) AS r "
            f"WHERE id IN (SELECT id FROM {target} WHERE list_contains(?, load_id)) "
            "GROUP BY id) AS u ON u.id = a.id WHERE list_contains(?, a.load_id)",
            [load_ids, load_ids],
        )
    deleted = wh.insert(f"DELETE FROM {target} WHERE list_contains(?, load_id)", [load_ids])
    if references:
        kept = wh.insert(f"INSERT INTO {target} SELECT * FROM __kept")
        wh.execute("DROP TABLE __kept")
    return deleted - kept


def _collect_ids(
    wh: Warehouse,
    plan: AnchorPlan,
    where: str,
    params: list[object],
    targets: list[TargetPlan] | None = None,
) -> None:
    """Before rows matching `where` (over alias `a`) are deleted: the entity ids they hold,
    whose serving rows are recomputed after (`serving.recompute_collected`)."""
    for target in targets if targets is not None else list(plan.targets.values()):
        for role in target.roles:
            if role.entity in plan.entities:
                serving.collect(
                    wh, role.entity,
                    f"SELECT DISTINCT a.{ident(role.column)} AS id "
                    f"FROM {table(SCHEMA, target.table)} AS a WHERE {where}",
                    params,
                )  # fmt: skip
    if targets is None:
        for name in plan.entities:
            serving.collect(
                wh, name, f"SELECT a.id FROM {table(SCHEMA, name)} AS a WHERE {where}", params
            )


def remove_loads(
    wh: Warehouse,
    plan: AnchorPlan,
    load_ids: list[int],
    reattribute: bool = True,
    reopen: list[str] | None = None,
) -> dict[str, int]:
    """Delete these loads' rows from the anchor model; returns rows deleted per table.

    `reopen` names staging models whose other loads must be read again by the next anchor
    step: an observation stored only in a removed load may have hidden a restatement in
    another one (never stored), and a backfill restores events into loads already anchored.
    Reading them again inserts only what is missing."""
    if not load_ids:
        return {}
    counts: dict[str, int] = {}
    with wh.transaction():
        _collect_ids(wh, plan, "list_contains(?, a.load_id)", [load_ids])
        for name in plan.targets:
            counts[name] = wh.insert(
                f"DELETE FROM {table(SCHEMA, name)} WHERE list_contains(?, load_id)", [load_ids]
            )
        for name in [*plan.entities, *plan.knots]:
            counts[name] = _remove_rows(wh, plan, name, load_ids, reattribute)
        forget_anchor_transfers(wh, load_ids=load_ids, models=reopen)
        serving.recompute_collected(wh, plan)
        forget_conflicts(wh, load_ids)
    return {k: v for k, v in counts.items() if v}


def erase_entity(
    wh: Warehouse, plan: AnchorPlan, entity: str, key: list[str]
) -> tuple[dict[str, int], set[str]]:
    """Delete the entity with natural key `key`: its anchor row, attribute rows and ties.
    Returns rows deleted per table and the values its attributes held, as text."""
    if entity not in plan.entities:
        known = ", ".join(plan.entities) or "none"
        raise ConfigError([f"forget: unknown entity {entity!r} (entities: {known})"])
    spec = plan.entities[entity]
    if len(key) != len(spec.key):
        raise ConfigError(
            [f"forget: {entity}'s key is ({', '.join(spec.key)}); give {len(spec.key)} value(s)"]
        )
    anchor_key = " AND ".join(
        f"{ident(k)} = TRY_CAST(? AS {t})" for k, t in zip(spec.key, spec.key_types, strict=True)
    )
    typed = ", ".join(
        f"TRY_CAST(? AS {t}) AS {ident(k)}" for k, t in zip(spec.key, spec.key_types, strict=True)
    )
    # Whether or not a row holds it (a rolled-back load may have been its only one).
    retire_key(wh, entity, f"SELECT {key_text([f'k.{ident(c)}' for c in spec.key])} "
                           f"FROM (SELECT {typed}) AS k", key)  # fmt: skip
    row = wh.query(f"SELECT id FROM {table(SCHEMA, entity)} WHERE {anchor_key}", key)
    if not row:
        return {}, set()
    entity_id = row[0][0]
    values = _attribute_values(wh, plan, entity, entity_id)
    counts: dict[str, int] = {}
    for target in plan.targets.values():  # its partners' serving rows are recomputed
        for role in target.roles:
            if role.entity == entity:
                _collect_ids(wh, plan, f"a.{ident(role.column)} = ?", [entity_id], [target])
    serving.collect(wh, entity, "SELECT CAST(? AS BIGINT) AS id", [entity_id])
    for target in plan.targets.values():
        for role in target.roles:
            if role.entity == entity:
                counts[f"anchor.{target.table}"] = counts.get(f"anchor.{target.table}", 0) + (
                    wh.insert(
                        f"DELETE FROM {table(SCHEMA, target.table)} "
                        f"WHERE {ident(role.column)} = ?", [entity_id]))  # fmt: skip
                _forget_conflicts(wh, target, role.column, int(entity_id))
    counts[f"anchor.{entity}"] = wh.insert(
        f"DELETE FROM {table(SCHEMA, entity)} WHERE id = ?", [entity_id]
    )
    serving.recompute_collected(wh, plan)
    return {k: v for k, v in counts.items() if v}, values


def _forget_conflicts(wh: Warehouse, target: TargetPlan, column: str, entity_id: int) -> None:
    """The table's recorded conflicts that name the entity (they hold its values)."""
    in_key = column in target.key_columns
    columns = target.key_columns if in_key else target.value_columns
    forget_conflicts_of(wh, target.table, in_key, columns.index(column) + 1, entity_id)


def _attribute_values(wh: Warehouse, plan: AnchorPlan, entity: str, entity_id: int) -> set[str]:
    """Every value the entity's attributes held, as text (knotted ones through their knot)."""
    values: set[str] = set()
    for target in plan.attributes_of(entity):
        source = table(SCHEMA, target.table)
        if target.knot:
            rows = wh.query(
                f"SELECT CAST(k.value AS VARCHAR) FROM {source} AS a "
                f"JOIN {table(SCHEMA, target.knot)} AS k ON k.id = a.value WHERE a.id = ?",
                [entity_id],
            )
        else:
            rows = wh.query(
                f"SELECT CAST(value AS VARCHAR) FROM {source} WHERE id = ?", [entity_id]
            )
        values |= {str(r[0]) for r in rows if r[0] is not None}
    return values
