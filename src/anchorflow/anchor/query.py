"""The query builder: an entity with only the attributes and ties asked for, now or as of any
instant, printed or exported. The same function serves the CLI and Python callers.

```python
with Pipeline(load_project(".")) as pipeline:
    table = pipeline.query("User", ["country", "plan"], as_of=datetime(2024, 3, 2))
```
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa

from anchorflow.anchor.plan import AnchorPlan
from anchorflow.anchor.views import perspective
from anchorflow.errors import WarehouseError
from anchorflow.publish.files import publish_file
from anchorflow.warehouse import Warehouse

# `table` prints; the others are files the engine writes (a tie's list of ids as it renders it):
# CSV with a header, Parquet, and JSON as one object per line.
FILE_FORMATS = ("csv", "parquet", "json")
FORMATS = ("table", *FILE_FORMATS)


def query_sql(
    plan: AnchorPlan,
    entity: str,
    attributes: list[str] | None,
    ties: list[str] | None = None,
    as_of: datetime | None = None,
    limit: int | None = None,
) -> tuple[str, list[object]]:
    """The SQL and its parameters: joins only the chosen attributes and ties."""
    instant = "CAST(? AS TIMESTAMP)" if as_of else None
    sql = perspective(plan, entity, attributes, ties, instant)
    params: list[object] = []
    if as_of is not None:
        params = [as_of] * sql.count("CAST(? AS TIMESTAMP)")
    sql += " ORDER BY e.id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, params


def run_query(
    warehouse: Warehouse,
    plan: AnchorPlan,
    entity: str,
    attributes: list[str] | None,
    ties: list[str] | None = None,
    as_of: datetime | None = None,
    limit: int | None = None,
) -> pa.Table:
    sql, params = query_sql(plan, entity, attributes, ties, as_of, limit)
    return warehouse.query_arrow(sql, params)


def export_query(
    warehouse: Warehouse,
    plan: AnchorPlan,
    entity: str,
    attributes: list[str] | None,
    ties: list[str] | None,
    as_of: datetime | None,
    limit: int | None,
    fmt: str,
    path: Path,
) -> int:
    """The query's rows written to `path` (`Warehouse.write_file`: csv, parquet or json
    lines), published whole or not at all (`publish_file`); returns how many."""
    if fmt not in FILE_FORMATS:
        raise WarehouseError(f"cannot write {fmt!r} files (formats: {', '.join(FILE_FORMATS)})")

    sql, params = query_sql(plan, entity, attributes, ties, as_of, limit)

    def write(temporary: Path) -> int:
        return warehouse.write_file(sql, temporary, fmt, params)

    try:
        return publish_file(path, write)
    except OSError as error:  # the directory cannot be made, or the path is a directory
        raise WarehouseError(f"cannot write {path}: {error.strerror}") from None
