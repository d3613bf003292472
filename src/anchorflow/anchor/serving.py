"""Serving tables: the anchor model made fast to read (issue 13). Work in progress."""

from __future__ import annotations

from anchorflow.anchor.plan import AnchorPlan, TargetPlan
from anchorflow.anchor.target_sql import TargetSQL
from anchorflow.journal.anchor import mark_dirty
from anchorflow.warehouse import Warehouse, ident


def mark_touched(wh: Warehouse, plan: AnchorPlan, target: TargetPlan, sql: TargetSQL) -> None:
    """In the target's transaction, after its insert: every entity id the batch touched lags
    in its serving row from the stored change in force at its earliest new instant (the
    `bounds` temp table) on."""
    for role in target.roles:
        if role.entity not in plan.entities:
            continue
        column = ident(role.column)
        if role.column in target.key_columns:
            source = (
                f"SELECT {column} AS id, min(start) AS since FROM {sql.bounds} GROUP BY {column}"
            )
        else:  # a tie's value role: the partner ids the batch observed
            source = (
                f"SELECT {column} AS id, min(changed_at) AS since FROM {sql.obs} GROUP BY {column}"
            )
        mark_dirty(wh, role.entity, target.table, source)
