"""The interface every engine adapter implements, and the helpers that build SQL safely.

Stages talk to a `Warehouse`, never to a driver. Engine differences are capability flags and
dialect names, so a stage asks `warehouse.capabilities.column_compression` instead of checking
which engine it runs on. Identifiers are always quoted through `ident`/`table`; values always go
through parameters or sqlglot literals.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp

from anchorflow.errors import WarehouseError
from anchorflow.warehouse.dialect import Dialect

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,62}$")


def ident(name: str, dialect: str = "duckdb") -> str:
    """A validated, quoted identifier."""
    if not _IDENTIFIER.match(name):
        raise WarehouseError(f"refusing the identifier {name!r}: use letters, digits and _")
    return exp.to_identifier(name, quoted=True).sql(dialect)


def table(schema: str, name: str, dialect: str = "duckdb") -> str:
    """`"schema"."name"`, both parts validated and quoted."""
    return f"{ident(schema, dialect)}.{ident(name, dialect)}"


def literal(value: str, dialect: str = "duckdb") -> str:
    """A string literal escaped by sqlglot, for the few places a driver takes no parameter."""
    return exp.Literal.string(value).sql(dialect)


@dataclass(frozen=True)
class Capabilities:
    transactions: bool
    arrow_scan: bool  # can SELECT from an Arrow table registered by name
    column_compression: bool  # CREATE TABLE ... col TYPE USING COMPRESSION zstd
    parallel_writers: int  # how many statements can usefully write at once


@dataclass(frozen=True)
class Rewritten:
    """A warehouse rewritten without the bytes of deleted rows: its size before and after."""

    bytes_before: int
    bytes_after: int
    seconds: float


class Warehouse(ABC):
    """One connection to one warehouse."""

    path: str  # what messages name: the file, or the server without its password
    dialect: str  # sqlglot's name of the engine's SQL
    sql: Dialect  # the engine's spelling of what differs (see `warehouse.dialect`)
    capabilities: Capabilities

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    @abstractmethod
    def insert(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run an INSERT ... SELECT and return how many rows it inserted."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table: ...

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]: ...

    @abstractmethod
    @contextmanager
    def registered(self, name: str, data: pa.Table, release: bool = False) -> Iterator[str]:
        """Make `data` readable in SQL under `name` for the duration of the block; with
        `release`, the engine holds no reference to it after the block, even in a transaction
        still open (the parts of a large window, landed one after the other)."""

    @abstractmethod
    def insert_arrow(self, schema: str, name: str, data: pa.Table) -> int: ...

    @abstractmethod
    def insert_files(self, schema: str, name: str, paths: Sequence[Path], fmt: str) -> int: ...

    @abstractmethod
    def table_exists(self, schema: str, name: str) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    # Set by a long-running owner (`serve`) whose readers use cursors of this connection:
    # `release` then keeps the file (the readers need it; no other process does).
    kept_open = False
    # How many times the connection was (re)opened: its cursors (`worker`) die with it.
    opens = 0

    @property
    def released(self) -> bool:
        """Whether the warehouse is let go of now (`release`): the next statement waits for it."""
        return False

    def release(self) -> None:
        """Let other processes open the warehouse until the next statement, which takes it back
        (waiting for them, up to the lock timeout). Engines that serve many clients at once (a
        database server) have nothing to let go of."""
        return None

    def acquire(self, timeout: float | None = None) -> None:
        """Open the warehouse now, waiting for its lock (up to `timeout` seconds; the lock
        timeout when None), rather than at the next statement."""
        return None

    @contextmanager
    def memory_capped(self, limit: str | None) -> Iterator[None]:
        """The engine's memory bounded by `limit` (e.g. "3GB") inside the block, where it holds
        its working set in the process (DuckDB: its buffer pool, which spills to disk beyond
        the limit), never raised above a lower limit already set. A server engine bounds its
        own memory: nothing to do."""
        yield

    def worker(self) -> Warehouse:
        """Another connection to the same warehouse, for a statement run in parallel; its
        transactions are its own. Engines that cannot write in parallel return themselves."""
        return self

    def rewrite(self) -> Rewritten:
        """Rewrite the warehouse's storage so that deleted rows leave no bytes behind in it
        (erasure). An engine that cannot says so in one line."""
        raise WarehouseError(f"the {self.dialect} warehouse cannot be compacted by anchorflow")

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def create_schema(self, schema: str) -> None:
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema, self.dialect)}")

    def write_file(
        self,
        sql: str,
        path: Path,
        fmt: str,
        params: Sequence[Any] | None = None,
        compression: str | None = None,
    ) -> int:
        """The query's rows written to `path` (csv with a header, parquet, or json: one object
        per line), as DuckDB's `COPY ... TO` writes them; returns how many. Engines that cannot
        write files where the caller runs fetch the rows as Arrow and an in-memory DuckDB
        writes them."""
        import duckdb

        data = self.query_arrow(sql, params)
        options = f"FORMAT {fmt}" + (f", COMPRESSION {compression}" if compression else "")
        con = duckdb.connect(":memory:")
        try:
            con.register("rows", data)
            con.execute(f"COPY (SELECT * FROM rows) TO {literal(str(path))} ({options})")
        finally:
            con.close()
        return int(data.num_rows)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
