"""`forget` of the entity whose key is the inputs' `user_id` (`fraud.user_entity`): the
person leaves `fraud_user`, `fraud_event` and every rule's results, like every other layer."""

from __future__ import annotations

from anchorflow.fraud.results import fraud_columns, fraud_tables
from anchorflow.warehouse import Warehouse, table


def erase_fraud_user(warehouse: Warehouse, user_id: str) -> dict[str, int]:
    """Delete every fraud row naming the user; rows erased per table (none when fraud never
    ran)."""
    if not warehouse.table_exists("fraud", "fraud_user"):
        return {}
    tables = [n for n in fraud_tables(warehouse) if "user_id" in fraud_columns(warehouse, n)]
    counts = {}
    for name in tables:
        erased = warehouse.insert(
            f"DELETE FROM {table('fraud', name)} WHERE user_id = ?", [user_id]
        )
        if erased:
            counts[f"fraud.{name}"] = erased
    return counts
