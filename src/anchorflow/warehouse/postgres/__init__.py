"""The PostgreSQL engine: its adapter (psycopg 3) and its dialect."""

from anchorflow.warehouse.postgres.adapter import PostgresWarehouse, pg_type
from anchorflow.warehouse.postgres.dialect import PostgresDialect, transpile

__all__ = ["PostgresDialect", "PostgresWarehouse", "pg_type", "transpile"]
