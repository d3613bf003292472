"""The embedded DuckDB engine (the default): its adapter and its dialect."""

from anchorflow.warehouse.duckdb.adapter import (
    CATALOG,
    DuckDBWarehouse,
    remove_rewrite_leftovers,
    rewrite_path,
)
from anchorflow.warehouse.duckdb.dialect import DuckDBDialect

__all__ = [
    "CATALOG",
    "DuckDBDialect",
    "DuckDBWarehouse",
    "remove_rewrite_leftovers",
    "rewrite_path",
]
