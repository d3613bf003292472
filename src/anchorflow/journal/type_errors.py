"""`meta.type_errors`: values that did not fit their staging column, where and what was expected.

The value itself is kept (as text) unless the column is marked `pii`.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    where: list[str] = ["true"]
    params: list[object] = []
    if load_ids is not None:
        where.append("list_contains(?, load_id)")
        params.append(list(load_ids))
    if model is not None:
        where.append("model = ?")
        params.append(model)
    return warehouse.insert(f"DELETE FROM meta.type_errors WHERE {' AND '.join(where)}", params)


def delete_type_errors_of_records(warehouse: Warehouse, relation: str) -> int:
    """Delete the errors of the records in `relation` (load_id, origin, line_no)."""
    return warehouse.insert(
        f"DELETE FROM meta.type_errors AS t USING {relation} AS e WHERE t.load_id = e.load_id "
        "AND t.origin = e.origin AND t.line_no = e.line_no"
    )


def delete_type_errors_with_value(warehouse: Warehouse, value: str) -> int:
    return warehouse.insert("DELETE FROM meta.type_errors WHERE value = ?", [value])
