"""Arrow tables between the Spark adapter and its callers: as Parquet and Spark read them (no
string views, no dictionaries), and Spark's results as DuckDB gives them (timestamps without a
zone)."""

from __future__ import annotations

import pyarrow as pa


def as_spark_reads(data: pa.Table) -> pa.Table:
    """Columns Parquet and Spark read alike (views of strings as strings)."""
    fields = []
    for f in data.schema:
        if pa.types.is_string_view(f.type) or pa.types.is_large_string(f.type):
            fields.append(pa.field(f.name, pa.string()))
        elif pa.types.is_dictionary(f.type):
            fields.append(pa.field(f.name, f.type.value_type))
        else:
            fields.append(f)
    return data.cast(pa.schema(fields))


def as_duckdb_gives(data: pa.Table) -> pa.Table:
    """Spark's results as DuckDB gives them: timestamps without a zone."""
    fields = [
        pa.field(f.name, pa.timestamp("us")) if pa.types.is_timestamp(f.type) and f.type.tz
        else f
        for f in data.schema
    ]  # fmt: skip
    return data.cast(pa.schema(fields)) if fields != list(data.schema) else data
