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
from anchorflow.warehouse import Warehouse
from anchorflow.warehouse.base import FILE_FORMATS

# `table` prints; the others are files the engine writes (ties, lists of ids, as it renders them).
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
    sql = perspective(plan, entity, attributes, ties, "CAST(? AS TIMESTAMP)" if as_of else None)
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
    """The query's rows written to `path` by the engine (csv, parquet or json lines), whole or
    not at all; returns how many."""
    sql, params = query_sql(plan, entity, attributes, ties, as_of, limit)
    return warehouse.write_file(sql, params, path, fmt)
