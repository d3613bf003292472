"""Perspectives of the anchor model: the SQL that turns its narrow tables into rows.

- `anchor.<Entity>_latest`: one row per entity, every attribute's value now;
- `anchor.<Entity>_as_of(ts)`: the same at any instant (a table macro on DuckDB, a
  set-returning SQL function on PostgreSQL; not made on Spark, docs/spark.md);
- `anchor.<Entity>_history`: every change of every attribute, one row each, restatements removed.

What "the value at T" means follows the attribute's history kind: scd2 is the last change at or
before T; scd1 has no history to travel in, so it is always the latest value (its changes are
kept for audit and shown by `_history`); scd0 is the first value, once it exists.

The query builder (`anchor.query`) emits the same SQL for the attributes it is asked for only;
DuckDB does not drop unused joins from a wide view.
"""

from __future__ import annotations

from dataclasses import dataclass

from anchorflow.anchor.plan import SCHEMA, AnchorPlan, TargetPlan
from anchorflow.anchor.serving import (
    at_column,
    attribute_name,
    current_name,
    first_seen_sql,
    prev_columns,
)
from anchorflow.errors import ConfigError
from anchorflow.warehouse import Warehouse, ident, literal, table
from anchorflow.warehouse.dialect import CANONICAL


@dataclass(frozen=True)
class Part:
    """One joined subquery of a perspective: its SQL, the columns it adds, and their names."""

    sql: str
    columns: list[tuple[str, str]]  # (expression over the alias, output name)


def _value_at(target: TargetPlan, as_of: str | None, column: str = "value") -> tuple[str, str]:
    """(aggregate of `column`, WHERE) choosing the value in force: as_of is a SQL expression or
    None."""
    history = target.effective_history
    if history == "scd0":
        first = CANONICAL.earliest(column, "changed_at")
        return first, f"WHERE changed_at <= {as_of}" if as_of else ""
    latest = CANONICAL.latest(column, "changed_at")
    if history == "scd1" or as_of is None:
        return latest, ""
    return latest, f"WHERE changed_at <= {as_of}"


def _knot_value(inner: str, target: TargetPlan) -> str:
    """`inner` (id, value) with a knotted value replaced by the knot's value."""
    if not target.knot:
        return inner
    return (
        f"SELECT c.id, k.value FROM ({inner}) AS c "
        f"JOIN {table(SCHEMA, target.knot)} AS k ON k.id = c.value"
    )


def served_part(plan: AnchorPlan, target: TargetPlan, alias: str, as_of: str | None) -> Part:
    """The attribute's value per id from the serving table (alias `e`): now, its value; as of
    T, its value when it was already in force at T, else (scd2 only: a change after T) the
    previous value when that was, else the value in force at T, read from the attribute table
    for those ids alone."""
    name = attribute_name(target)
    value, at = f"e.{ident(name)}", f"e.{ident(at_column(name))}"
    history = target.effective_history
    if as_of is None or history == "scd1":
        return Part("", [(value, name)])
    if history == "scd0":
        return Part("", [(f"CASE WHEN {at} <= {as_of} THEN {value} END", name)])
    latest = CANONICAL.latest("a.value", "a.changed_at")
    source = table(SCHEMA, target.table)
    prev, prev_at = (f"e.{ident(c)}" for c in prev_columns(name))
    # The history is read only for the ids whose previous value came after T too (few: they
    # changed twice since T); none, and the engine skips the scan.
    twice = (
        f"SELECT c.id FROM {table(SCHEMA, current_name(target.entity or ''))} AS c "
        f"WHERE c.{ident(prev_columns(name)[1])} > {as_of}"
    )
    inner = (
        f"SELECT a.id, {latest} AS value FROM {source} AS a "
        f"WHERE a.changed_at <= {as_of} AND a.id IN ({twice}) GROUP BY a.id"
    )
    inner = _knot_value(inner, target)
    return Part(
        f"LEFT JOIN ({inner}) AS {alias} ON {alias}.id = e.id",
        [
            (
                f"CASE WHEN {at} <= {as_of} THEN {value} WHEN {prev_at} <= {as_of} THEN {prev} "
                f"ELSE {alias}.value END",
                name,
            )
        ],
    )


def tie_part(plan: AnchorPlan, tie: TargetPlan, entity: str, alias: str, as_of: str | None) -> Part:
    """The entity's partners in a two-role tie: one id when the entity alone identifies the
    tie (a device's user), else the list of partner ids in force (a user's devices)."""
    roles = tie.roles
    mine = [r for r in roles if r.entity == entity]
    if len(roles) != 2 or len(mine) != 1:
        message = (
            f"tie {tie.table}: the query builder reads ties of two roles, one of them "
            f"{entity}; query anchor.{tie.table} directly"
        )
        raise ConfigError([message])
    me, other = mine[0], next(r for r in roles if r is not mine[0])
    keys = ", ".join(ident(c) for c in tie.key_columns)
    source = table(SCHEMA, tie.table)
    if tie.value_columns:
        values = ", ".join(
            f"{_value_at(tie, as_of, ident(c))[0]} AS {ident(c)}" for c in tie.value_columns
        )
        where = _value_at(tie, as_of)[1]
        current = f"SELECT {keys}, {values} FROM {source} {where} GROUP BY {keys}"
    else:
        where = f"WHERE changed_at <= {as_of}" if as_of else ""
        current = f"SELECT DISTINCT {keys} FROM {source} {where}"
    mine_col, other_col = ident(me.column), ident(other.column)
    name = tie.table  # the partner's surrogate id (or their list): join anchor.<Entity> for keys
    if tie.key_columns == [me.column]:
        inner = f"SELECT {mine_col} AS id, {other_col} AS partner FROM ({current}) AS c"
        return Part(
            f"LEFT JOIN ({inner}) AS {alias} ON {alias}.id = e.id", [(f"{alias}.partner", name)]
        )
    inner = (
        f"SELECT {mine_col} AS id, list({other_col} ORDER BY {other_col}) AS partners "
        f"FROM ({current}) AS c WHERE {other_col} IS NOT NULL GROUP BY {mine_col}"
    )
    return Part(
        f"LEFT JOIN ({inner}) AS {alias} ON {alias}.id = e.id",
        [(f"{alias}.partners", name)],
    )


def _chosen(
    plan: AnchorPlan, entity: str, attributes: list[str] | None, ties: list[str] | None
) -> tuple[list[TargetPlan], list[TargetPlan]]:
    if entity not in plan.entities:
        known = ", ".join(plan.entities) or "none"
        raise ConfigError([f"unknown entity {entity!r} (entities: {known})"])
    own = {t.attribute or t.table: t for t in plan.attributes_of(entity)}
    chosen = list(own) if attributes is None else attributes
    unknown = [a for a in chosen if a not in own]
    if unknown:
        raise ConfigError(
            [f"{entity} has no attribute {unknown[0]!r} (attributes: {', '.join(own) or 'none'})"]
        )
    related = {t.table: t for t in plan.ties_of(entity)}
    unknown = [t for t in ties or [] if t not in related]
    if unknown:
        raise ConfigError(
            [f"{entity} is in no tie {unknown[0]!r} (ties: {', '.join(related) or 'none'})"]
        )
    return [own[a] for a in chosen], [related[t] for t in ties or []]


def _select(plan: AnchorPlan, entity: str, source: str, parts: list[Part], where: str) -> str:
    keys = ", ".join(f"e.{ident(k)}" for k in plan.entities[entity].key)
    columns = "".join(f", {expr} AS {ident(name)}" for part in parts for expr, name in part.columns)
    joins = " ".join(part.sql for part in parts if part.sql)
    return f"SELECT e.id, {keys}{columns} FROM {source} AS e {joins} WHERE {where}"


def perspective(
    plan: AnchorPlan,
    entity: str,
    attributes: list[str] | None = None,
    ties: list[str] | None = None,
    as_of: str | None = None,
) -> str:
    """SELECT id, natural key, the chosen attributes (all when None) and ties, as of `as_of`
    (a SQL expression: a parameter or a macro argument) or now, from the serving table
    (`anchor.<Entity>_current`, kept with the rows it serves). An entity is listed as of T
    only if it was known at T."""
    own, related = _chosen(plan, entity, attributes, ties)
    parts = [served_part(plan, t, f"a{i}", as_of) for i, t in enumerate(own)]
    parts += [tie_part(plan, t, entity, f"t{i}", as_of) for i, t in enumerate(related)]
    where = "TRUE" if as_of is None else f"{first_seen_sql(plan, entity, 'e')} <= {as_of}"
    return _select(plan, entity, table(SCHEMA, current_name(entity)), parts, where)


def history_sql(plan: AnchorPlan, entity: str) -> str:
    """Every change of every attribute, long: id, attribute, history, value (text), changed_at,
    load_id. Restatements (a change to the value already in force) are not changes."""
    selects = []
    for target in plan.attributes_of(entity):
        source = table(SCHEMA, target.table)
        value = "value"
        if target.knot:
            source = (
                f"(SELECT a.id, k.value, a.changed_at, a.load_id FROM {source} AS a "
                f"JOIN {table(SCHEMA, target.knot)} AS k ON k.id = a.value)"
            )
        if target.effective_history == "scd0":
            keep = "row_number() OVER (PARTITION BY id ORDER BY changed_at) = 1"
        else:
            keep = (
                f"lag({value}) OVER (PARTITION BY id ORDER BY changed_at) IS DISTINCT FROM {value}"
            )
        selects.append(
            f"SELECT id, {literal(target.attribute or '')} AS attribute, "
            f"{literal(target.history)} AS history, "
            f"CAST(value AS VARCHAR) AS value, changed_at, load_id "
            f"FROM (SELECT *, {keep} AS __change FROM {source} AS s) AS h WHERE __change"
        )
    if not selects:
        return (
            "SELECT CAST(NULL AS BIGINT) AS id, CAST(NULL AS VARCHAR) AS attribute, "
            "CAST(NULL AS VARCHAR) AS history, CAST(NULL AS VARCHAR) AS value, "
            "CAST(NULL AS TIMESTAMP) AS changed_at, CAST(NULL AS BIGINT) AS load_id WHERE FALSE"
        )
    return " UNION ALL ".join(selects)


def create_views(warehouse: Warehouse, plan: AnchorPlan) -> None:
    """(Re)create every perspective; cheap, so done whenever the model is prepared."""
    sql = warehouse.sql
    params = [("ts", "TIMESTAMP")]
    with warehouse.transaction():
        for entity in plan.entities:
            latest = table(SCHEMA, entity + "_latest")
            as_of = table(SCHEMA, entity + "_as_of")
            # The function goes first: where it returns the latest view's rows, it holds it.
            dropped = sql.drop_table_macro(as_of, params)
            if dropped:  # an engine without table functions has none (Spark: docs/spark.md)
                warehouse.execute(dropped)
            warehouse.execute(sql.replace_view(latest, perspective(plan, entity)))
            body = perspective(plan, entity, as_of=f"CAST({sql.param('ts')} AS TIMESTAMP)")
            function = sql.table_function(as_of, params, body, latest)
            if function:
                warehouse.execute(function)
            warehouse.execute(
                sql.replace_view(table(SCHEMA, entity + "_history"), history_sql(plan, entity))
            )
