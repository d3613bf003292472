"""`forget` of the entity whose key is the inputs' `user_id` (`fraud.user_entity`): the
person leaves `fraud_user`, `fraud_event` and every rule's results, like every other layer."""

from __future__ import annotations

from anchorflow.warehouse import Warehouse, table


def erase_fraud_user(warehouse: Warehouse, user_id: str) -> dict[str, int]:
    """Delete every fraud row naming the user; rows erased per table (none when fraud never
    ran)."""
    if not warehouse.table_exists("fraud", "fraud_user"):
        return {}
    tables = [
        str(row[0])
        for row in warehouse.query(
            "SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = "
            "'fraud' AND column_name = 'user_id' AND table_name IN (SELECT table_name FROM "
            "information_schema.tables WHERE table_schema = 'fraud' AND table_type = 'BASE TABLE') "
            "ORDER BY table_name"
        )
    ]
    counts = {}
    for name in tables:
        erased = warehouse.insert(
            f"DELETE FROM {table('fraud', name)} WHERE user_id = ?", [user_id]
        )
        if erased:
            counts[f"fraud.{name}"] = erased
    return counts
