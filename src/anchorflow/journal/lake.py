"""`meta.lake_files`: on the Spark engine, which Parquet files make up each table of the lake.

A lake table is the set of files this manifest lists for it, nothing else: a file is added to a
table in the same journal transaction as the load (or typing, or anchoring) that wrote it, and
removed from it in the transaction that deletes its rows. Files on disk that the manifest does
not list are debris from a crash (see `warehouse.spark.lake`). Only the Spark adapter calls this
module, with its journal store (an embedded DuckDB warehouse) as `journal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from anchorflow.warehouse.base import Warehouse, ident, literal

TABLE = "meta.lake_files"
DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    schema_name VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    load_id BIGINT,
    path VARCHAR NOT NULL,
    rows BIGINT NOT NULL)"""


def ensure_manifest(journal: Warehouse) -> None:
    journal.execute("CREATE SCHEMA IF NOT EXISTS meta")
    journal.execute(DDL)


def table_files(journal: Warehouse, schema: str, name: str) -> list[tuple[int | None, str, int]]:
    """(load_id, path relative to the lake, rows) of every file of the table."""
    rows = journal.query(
        f"SELECT load_id, path, rows FROM {TABLE} WHERE schema_name = ? AND table_name = ? "
        "ORDER BY path",
        [schema, name],
    )
    return [(r[0], str(r[1]), int(r[2])) for r in rows]


def listed_paths(journal: Warehouse) -> set[str]:
    """Every file the manifest lists (relative to the lake)."""
    return {str(r[0]) for r in journal.query(f"SELECT path FROM {TABLE}")}


def add_files(journal: Warehouse, schema: str, name: str, files: Sequence[Any]) -> None:
    """Add (load_id, path, rows) files to the table."""
    for load_id, path, rows in files:
        journal.execute(
            f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?)", [schema, name, load_id, path, rows]
        )


def drop_files(
    journal: Warehouse, schema: str, name: str, load_ids: Sequence[int] | None = None
) -> list[tuple[str, int]]:
    """Remove the table's files of these partitions (all when None) from the manifest;
    returns their (path, rows)."""
    where, params = "schema_name = ? AND table_name = ?", [schema, name]
    if load_ids is not None:
        where += " AND list_contains(?, load_id)"
        params.append(list(load_ids))  # type: ignore[arg-type]
    gone = journal.query(f"SELECT path, rows FROM {TABLE} WHERE {where}", params)
    journal.execute(f"DELETE FROM {TABLE} WHERE {where}", params)
    return [(str(p), int(r)) for p, r in gone]


def rename_table(journal: Warehouse, schema: str, name: str, new_schema: str, new: str) -> None:
    journal.execute(
        f"UPDATE {TABLE} SET schema_name = ?, table_name = ? "
        "WHERE schema_name = ? AND table_name = ?",
        [new_schema, new, schema, name],
    )


def partition_counts(schema: str, name: str) -> str:
    """A query of the manifest standing for `SELECT load_id, count(*) FROM <table> GROUP BY
    load_id` of a partitioned lake table: its rows per load, summed from its files (a load
    without rows has no group, as with count). Its WHERE is the caller's (on load_id only)."""
    ident(schema), ident(name)  # validated: catalog names, as literals
    return (
        f"SELECT load_id, CAST(sum(rows) AS BIGINT) AS n FROM {TABLE} "
        f"WHERE schema_name = {literal(schema)} AND table_name = {literal(name)} "
        "GROUP BY load_id HAVING sum(rows) > 0"
    )
