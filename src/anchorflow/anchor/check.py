"""The integrity checks of one attribute or tie after its insert, in its transaction."""

from __future__ import annotations

from anchorflow.anchor.plan import TargetPlan, anchor_table
from anchorflow.anchor.target_sql import TargetSQL
from anchorflow.errors import IntegrityError
from anchorflow.warehouse import Warehouse, ident


def check_target(
    wh: Warehouse, target: TargetPlan, sql: TargetSQL, verify_history: bool = True
) -> None:
    """After the insert, in its transaction, over the keys the batch touched: ids exist,
    (key, changed_at) is unique, and (with `verify_history`) every observation of the batch is
    what the table says was in force at its time (scd0: a first value exists by then). A
    conflict's loser is explained by its instant holding the winner."""
    touched = sql.touched("a")
    for role in target.roles:
        orphans = wh.scalar(
            f"SELECT count(*) FROM {sql.table} AS a WHERE {touched} AND NOT EXISTS "
            f"(SELECT 1 FROM {anchor_table(role.entity)} AS e WHERE e.id = a.{ident(role.column)})"
        )
        if orphans:
            raise IntegrityError(f"{orphans} row(s) point at no {role.entity}")
    if target.knot:
        orphans = wh.scalar(
            f"SELECT count(*) FROM {sql.table} AS a WHERE {touched} AND NOT EXISTS "
            f"(SELECT 1 FROM {anchor_table(target.knot)} AS k WHERE k.id = a.value)"
        )
        if orphans:
            raise IntegrityError(f"{orphans} value(s) point at no {target.knot}")
    twice = wh.scalar(
        f"SELECT count(*) FROM (SELECT {', '.join('a.' + k for k in sql.keys)}, a.changed_at "
        f"FROM {sql.table} AS a WHERE {touched} "
        f"GROUP BY {', '.join('a.' + k for k in sql.keys)}, a.changed_at HAVING count(*) > 1) AS d"
    )
    if twice:
        raise IntegrityError(f"{twice} duplicate ({', '.join(target.key_columns)}, changed_at)")
    if not verify_history:
        return
    on_keys = " AND ".join(f"a.{k} = o.{k}" for k in sql.keys)
    if target.effective_history == "scd0":
        unexplained = wh.scalar(
            f"SELECT count(*) FROM {sql.obs} AS o LEFT JOIN ({sql.first_stored()}) AS a "
            f"ON {on_keys} WHERE a.first IS NULL OR a.first > o.changed_at"
        )
    else:
        differs = " OR ".join(f"a.{v} IS DISTINCT FROM o.{v}" for v in sql.values)
        in_force = wh.sql.asof_left_join(
            sql.recent([*sql.keys, *sql.values, "changed_at"]), "a", on_keys,
            "o.changed_at", sql.keys, "changed_at",
        )  # fmt: skip
        # `fresh`: the observations with each conflict's winner (a loser's instant holds it)
        unexplained = wh.scalar(
            f"SELECT count(*) FROM {sql.fresh} AS o {in_force} "
            f"WHERE a.changed_at IS NULL OR (a.changed_at < o.changed_at AND ({differs}))"
        )
    if unexplained:
        raise IntegrityError(
            f"{unexplained} observation(s) of staging.{target.model} do not match the history"
        )
