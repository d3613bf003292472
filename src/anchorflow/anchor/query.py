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
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from anchorflow.anchor.plan import AnchorPlan
from anchorflow.anchor.views import perspective
from anchorflow.errors import ConfigError
from anchorflow.warehouse import Warehouse

FORMATS = ("table", "csv", "parquet")


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


def export(result: pa.Table, fmt: str, path: Path) -> None:
    if fmt == "csv":
        pa_csv.write_csv(result, path)
    elif fmt == "parquet":
        pq.write_table(result, path)
    else:
        raise ConfigError([f"unknown export format {fmt!r} (formats: csv, parquet)"])
