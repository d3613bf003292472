"""A warehouse that records the statements the steps would run, for steps whose SQL needs no
answer from the warehouse (the perspectives, the serving tables' rebuild, the raw table).

A step that asks the warehouse something (a query, whether a table exists with rows) cannot be
compiled from the project file alone: the recorder refuses it in one line rather than guess.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from anchorflow.warehouse import Capabilities, Warehouse
from anchorflow.warehouse.compiled import CompileError, SqlOnlyDialect


class RecordingWarehouse(Warehouse):
    """Records canonical statements; `statements` holds them in order."""

    def __init__(self, dialect: SqlOnlyDialect) -> None:
        self.path = f"({dialect.name}, compiled)"
        self.dialect = "duckdb"  # what the steps' own sqlglot calls write: the canonical SQL
        self.sql = dialect
        self.capabilities = Capabilities(
            transactions=True, arrow_scan=False, column_compression=False, parallel_writers=1
        )
        self.statements: list[str] = []

    def _record(self, sql: str, params: Sequence[Any] | None) -> None:
        if params:
            raise CompileError(f"a statement needs values at run time: {sql[:60]}...")
        if sql.strip():  # (a construct the engine needs no statement for)
            self.statements.append(sql)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._record(sql, params)

    def insert(self, sql: str, params: Sequence[Any] | None = None) -> int:
        self._record(sql, params)
        return 0

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        raise CompileError(f"compiling needs no answer from a warehouse, but asked: {sql[:60]}")

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        raise CompileError("compiling reads no rows")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield  # the engines' scripts run statement by statement (see README.txt)

    @contextmanager
    def registered(self, name: str, data: pa.Table, release: bool = False) -> Iterator[str]:
        raise CompileError("compiling registers no data")
        yield name  # pragma: no cover

    def insert_arrow(self, schema: str, name: str, data: pa.Table) -> int:
        raise CompileError("compiling inserts no data")

    def insert_files(self, schema: str, name: str, paths: Sequence[Path], fmt: str) -> int:
        raise CompileError("compiling reads no files")

    def table_exists(self, schema: str, name: str) -> bool:
        return False  # compiled DDL creates what is missing (IF NOT EXISTS)

    def close(self) -> None:
        return None
