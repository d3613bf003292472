"""`meta.type_errors`: values that did not fit their staging column, where and what was expected.

The value itself is kept (as text) unless the column is marked `pii`.
"""

from __future__ import annotations

from collections.abc import Sequence

from anchorflow.journal.schema import delete_rows, delete_rows_of_records
from anchorflow.warehouse import Warehouse

COLUMNS = "load_id, model, column_name, origin, line_no, value, expected"


def record_type_errors(warehouse: Warehouse, select: str) -> int:
    """Insert the rows of `select`, whose columns are `COLUMNS` in order; returns how many."""
    return warehouse.insert(f"INSERT INTO meta.type_errors ({COLUMNS}) {select}")


def type_errors_by_column(warehouse: Warehouse, model: str) -> dict[str, int]:
    rows = warehouse.query(
        "SELECT column_name, count(*) FROM meta.type_errors WHERE model = ? GROUP BY 1", [model]
    )
    return {str(c): int(n) for c, n in rows}


def delete_type_errors(
    warehouse: Warehouse, load_ids: Sequence[int] | None = None, model: str | None = None
) -> int:
    return delete_rows(warehouse, "meta.type_errors", load_ids, model=model)


def delete_type_errors_of_records(warehouse: Warehouse, relation: str) -> int:
    """Delete the errors of the records in `relation` (load_id, origin, line_no)."""
    return delete_rows_of_records(warehouse, "meta.type_errors", relation)


def delete_type_errors_with_value(warehouse: Warehouse, value: str) -> int:
    return warehouse.insert("DELETE FROM meta.type_errors WHERE value = ?", [value])
