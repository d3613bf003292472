"""DuckDB's dialect: the canonical spelling itself (see `warehouse.dialect`)."""

from __future__ import annotations

from anchorflow.warehouse.dialect import Dialect


class DuckDBDialect(Dialect):
    """Steps' SQL runs on DuckDB as written; every construct is `Dialect`'s own spelling."""

    name = "duckdb"
