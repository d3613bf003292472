"""Tables of the anchor model, built as sqlglot expressions and transpiled for the engine.

Changes are additive: a new entity, knot, attribute or tie creates its table and touches nothing
else (its history is then loaded from every typed load in staging). Anything else (a type that
changed, a renamed key, scd0 turned into scd2) stops with the statement that migrates it; a table
is never silently recreated.
"""

from __future__ import annotations

import json

from sqlglot import exp

from anchorflow.anchor.plan import SCHEMA, AnchorPlan, EntityPlan, TargetPlan
from anchorflow.anchor.serving import ensure_serving
from anchorflow.config.anchor import HISTORY_AUDIT, LOAD_AUDIT, SURROGATE
from anchorflow.errors import ModelError
from anchorflow.journal.anchor import (
    forget_anchor_transfers,
    key_index,
    known_declaration,
    register_missing_keys,
    store_declaration,
    unregistered_ids,
)
from anchorflow.project_types import canonical_type
from anchorflow.warehouse import Warehouse, ident, table


def _column(name: str, sql_type: str, not_null: bool = True) -> exp.ColumnDef:
    ident(name)  # validated before it reaches any SQL
    return exp.ColumnDef(
        this=exp.to_identifier(name, quoted=True),
        kind=exp.DataType.build(sql_type, dialect="duckdb"),
        constraints=[exp.ColumnConstraint(kind=exp.NotNullColumnConstraint())] if not_null else [],
    )


def create_table_sql(
    name: str, columns: dict[str, str], dialect: str, not_null: list[str] | None = None
) -> str:
    """CREATE TABLE IF NOT EXISTS anchor.<name>; every column NOT NULL unless `not_null` lists
    the ones that are."""
    ident(name)
    target = exp.Table(
        this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(SCHEMA, quoted=True)
    )
    schema = exp.Schema(
        this=target,
        expressions=[_column(c, t, not_null is None or c in not_null) for c, t in columns.items()],
    )
    return exp.Create(this=schema, kind="TABLE", exists=True).sql(dialect)


def entity_columns(entity: EntityPlan) -> dict[str, str]:
    columns = dict(SURROGATE)
    columns.update(zip(entity.key, entity.key_types, strict=True))
    return columns | LOAD_AUDIT


def knot_columns(sql_type: str) -> dict[str, str]:
    return SURROGATE | {"value": sql_type} | LOAD_AUDIT


def target_columns(target: TargetPlan) -> dict[str, str]:
    columns = dict.fromkeys(target.key_columns, "BIGINT")
    if target.kind == "attribute":
        columns["value"] = target.value_type or "VARCHAR"
    else:
        columns.update(dict.fromkeys(target.value_columns, "BIGINT"))
    return columns | HISTORY_AUDIT


def declaration(target: TargetPlan) -> str:
    """What decides the rows a target holds; a change of it needs the table rebuilt."""
    shape = {
        "model": target.model,
        "history": "scd0" if target.effective_history == "scd0" else "changes",
        "value": target.value,
        "knot": target.knot,
        "changed_at": target.changed_at,
        "roles": [[r.role, r.entity, r.model_key] for r in target.roles],
    }
    return json.dumps(shape, sort_keys=True)


def ensure_tables(warehouse: Warehouse, plan: AnchorPlan) -> list[str]:
    """Create what is missing, check what exists; returns the tables created just now."""
    tables = {name: entity_columns(e) for name, e in plan.entities.items()}
    tables |= {name: knot_columns(k.type) for name, k in plan.knots.items()}
    tables |= {name: target_columns(t) for name, t in plan.targets.items()}
    created = []
    with warehouse.transaction():
        warehouse.create_schema(SCHEMA)
        for name, columns in tables.items():
            if warehouse.table_exists(SCHEMA, name):
                _check_columns(warehouse, name, columns, plan)
            else:
                if name in plan.entities or name in plan.knots:
                    _refuse_new_ids(warehouse, name, plan)
                warehouse.execute(create_table_sql(name, columns, warehouse.dialect))
                # A new table has loaded nothing: every typed load is pending for it.
                forget_anchor_transfers(warehouse, target=name)
                created.append(name)
        for name, lookups in _lookups(plan).items():
            for looked_up in lookups:
                statement = warehouse.sql.lookup_index(SCHEMA, name, looked_up)
                if statement:
                    warehouse.execute(statement)
        key_index(warehouse)
        for name in [*plan.entities, *plan.knots]:
            if name not in created:  # (a table anchored before the registry existed)
                register_missing_keys(
                    warehouse, name, table(SCHEMA, name), _key_columns(plan, name)
                )
        for name, target in plan.targets.items():
            _check_declaration(warehouse, name, target)
        for name, shape in _id_sources(plan).items():
            _renew_sources(warehouse, name, shape)
    ensure_serving(warehouse, plan)
    return created


def _lookups(plan: AnchorPlan) -> dict[str, list[list[str]]]:
    """The columns each table is looked up by: an entity by id and by natural key, a knot by id
    and by value, a target by its key and time (the value in force, the anti-joins)."""
    found = {name: [["id"], list(e.key)] for name, e in plan.entities.items()}
    found |= {name: [["id"], ["value"]] for name in plan.knots}
    found |= {name: [[*t.key_columns, "changed_at"]] for name, t in plan.targets.items()}
    return found


def _key_columns(plan: AnchorPlan, name: str) -> list[str]:
    return (
        [ident(k) for k in plan.entities[name].key] if name in plan.entities else [ident("value")]
    )


def _held_ids(plan: AnchorPlan, name: str) -> dict[str, str]:
    """Per table holding ids of the entity or knot `name`, a relation (id) of them."""
    found = {}
    for target in plan.targets.values():
        columns = [r.column for r in target.roles if r.entity == name]
        columns += ["value"] if target.knot == name else []
        if columns:
            found[target.table] = " UNION ALL ".join(
                f"SELECT {ident(c)} AS id FROM {table(SCHEMA, target.table)}" for c in columns
            )
    return found


def _refuse_new_ids(warehouse: Warehouse, name: str, plan: AnchorPlan) -> None:
    """A new entity (or knot) table takes its ids from the journal's key registry: rows
    that hold ids it knows get them back when the keys are anchored again from staging. An id
    it does not know would be numbered anew, under rows that would then point at other
    people: stop instead."""
    holders = [
        holder
        for holder, ids in _held_ids(plan, name).items()
        if warehouse.table_exists(SCHEMA, holder) and unregistered_ids(warehouse, name, ids)
    ]
    if holders:
        drops = "; ".join(f"DROP TABLE {table(SCHEMA, h, warehouse.dialect)}" for h in holders)
        raise ModelError(
            f"anchor.{name} is missing but {', '.join('anchor.' + h for h in holders)} hold "
            f"its ids; restore it, or rebuild them all from staging: {drops}"
        )


def _id_sources(plan: AnchorPlan) -> dict[str, str]:
    shapes = {n: json.dumps(e.sources, sort_keys=True) for n, e in plan.entities.items()}
    shapes |= {n: json.dumps(sorted(k.feeders)) for n, k in plan.knots.items()}
    return shapes


def _renew_sources(warehouse: Warehouse, name: str, shape: str) -> None:
    """An entity or knot that reads a new column (a new attribute, role or model) reads every
    typed load again: keys only that column holds get their ids. Existing ids stay."""
    known = known_declaration(warehouse, name)
    if known == shape:
        return
    if known is not None:
        forget_anchor_transfers(warehouse, target=name)
    store_declaration(warehouse, name, shape)


def _existing_columns(warehouse: Warehouse, name: str) -> dict[str, str]:
    rows = warehouse.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position",
        [SCHEMA, name],
    )
    return {str(c): canonical_type(str(t)) for c, t in rows}


def _check_columns(
    warehouse: Warehouse, name: str, wanted: dict[str, str], plan: AnchorPlan
) -> None:
    existing = _existing_columns(warehouse, name)
    target = table(SCHEMA, name, warehouse.dialect)
    missing = [c for c in wanted if c not in existing]
    extra = [c for c in existing if c not in wanted]
    if missing and name in plan.entities and len(missing) == len(extra) == 1:
        raise ModelError(
            f"the natural key of anchor.{name} is {extra[0]!r} in the warehouse but "
            f"{missing[0]!r} in the project; to rename it run: ALTER TABLE {target} RENAME "
            f"COLUMN {ident(extra[0])} TO {ident(missing[0])}"
        )
    if (missing or extra) and (name in plan.entities or name in plan.knots):
        raise ModelError(
            f"anchor.{name} has columns ({', '.join(existing)}) in the warehouse but the project "
            f"wants ({', '.join(wanted)}); change the project back, or rebuild it and every "
            f"table holding its ids from staging (DROP TABLE {target}, and those tables)"
        )
    if missing or extra:
        raise ModelError(
            f"anchor.{name} has columns ({', '.join(existing)}) in the warehouse but the project "
            f"wants ({', '.join(wanted)}); rename the table (ALTER TABLE {target} RENAME TO "
            f"{ident(name + '_old')}) to start it anew, or change the project back"
        )
    for column, sql_type in wanted.items():
        if existing[column] != canonical_type(sql_type):
            convert = warehouse.sql.transpile(
                f"ALTER TABLE {target} ALTER COLUMN {ident(column)} TYPE {canonical_type(sql_type)}"
            )  # in the engine's words: the user runs it as it is
            raise ModelError(
                f"anchor.{name}.{column} is {existing[column]} in the warehouse but {sql_type} "
                f"in the project; to convert it run: {convert}"
            )


def _check_declaration(warehouse: Warehouse, name: str, target: TargetPlan) -> None:
    wanted = declaration(target)
    known = known_declaration(warehouse, name)
    if known == wanted:
        return
    if known is not None and warehouse.scalar(f"SELECT count(*) FROM {table(SCHEMA, name)}"):
        raise ModelError(
            f"the declaration of anchor.{name} changed (source, history kind, knot or roles) "
            f"since its rows were loaded; to rebuild it from staging run: DROP TABLE "
            f"{table(SCHEMA, name, warehouse.dialect)}, then `anchorflow anchor`"
        )
    store_declaration(warehouse, name, wanted)
