"""The PostgreSQL adapter (psycopg 3): a database server many readers share while loads run.

Statements arrive in anchorflow's canonical spelling and are transpiled (`dialect.transpile`).
Bulk data goes in through `COPY ... FROM STDIN` of CSV written by Arrow's C++ writer, never row by
row. The layers are schemas of the database the DSN names; the journal (`meta`) is one of them,
so a window's rows, its journal rows and its cursor commit in one transaction.

One writer at a time: a writing connection holds a session advisory lock (the writer claim) for
its life, so a second `anchorflow run` waits for it up to the lock timeout, as on DuckDB. Readers
(BI tools, `anchorflow query`) are never blocked: PostgreSQL's MVCC shows them the last commit.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from anchorflow.errors import NoWarehouse, WarehouseError
from anchorflow.redact import redact_dsn
from anchorflow.warehouse.base import Capabilities, Rewritten, Warehouse, ident, table
from anchorflow.warehouse.postgres.dialect import PostgresDialect, bind, transpile

FUNCTIONS_SCHEMA = "anchorflow"
FUNCTIONS_VERSION = 14
# The writer claim: one advisory lock key for "anchorflow writes this database".
WRITER_LOCK_KEY = 0x616E63686F72  # "anchor"
DEFAULT_LOCK_TIMEOUT = 300.0
SCHEMAS = ("raw", "staging", "anchor", "meta", "marts")  # the layers (journal.schema.LAYERS)

_ARROW_TO_PG = {
    pa.string(): "TEXT",
    pa.large_string(): "TEXT",
    pa.string_view(): "TEXT",
    pa.binary(): "BYTEA",
    pa.large_binary(): "BYTEA",
    pa.int8(): "SMALLINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "SMALLINT",
    pa.uint16(): "INTEGER",
    pa.uint32(): "BIGINT",
    pa.uint64(): "NUMERIC(20)",
    pa.float32(): "REAL",
    pa.float64(): "DOUBLE PRECISION",
    pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE",
    pa.null(): "TEXT",
}


# Result columns by type OID, so that an empty or all-NULL column keeps its type (an export).
_UUID_OID = 2950
_OID_TO_ARROW = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    114: pa.string(),
    700: pa.float32(),
    701: pa.float64(),
    1042: pa.string(),
    1043: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    _UUID_OID: pa.string(),
    3802: pa.string(),
    1007: pa.list_(pa.int32()),
    1016: pa.list_(pa.int64()),
    1009: pa.list_(pa.string()),
    1015: pa.list_(pa.string()),
    1022: pa.list_(pa.float64()),
}


def pg_type(arrow_type: pa.DataType) -> str:
    """The PostgreSQL column type that holds an Arrow column's values."""
    if arrow_type in _ARROW_TO_PG:
        return _ARROW_TO_PG[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_decimal(arrow_type):
        return f"NUMERIC({arrow_type.precision}, {arrow_type.scale})"
    if pa.types.is_dictionary(arrow_type):
        return pg_type(arrow_type.value_type)
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        inner = arrow_type.value_type
        if pa.types.is_nested(inner) or pa.types.is_binary(inner):
            raise WarehouseError(f"no PostgreSQL column type for Arrow type {arrow_type}")
        return pg_type(inner) + "[]"
    raise WarehouseError(f"no PostgreSQL column type for Arrow type {arrow_type}")


class PostgresWarehouse(Warehouse):
    dialect = "postgres"
    capabilities = Capabilities(
        transactions=True, arrow_scan=False, column_compression=False, parallel_writers=2
    )

    def __init__(
        self,
        dsn: str,
        *,
        read_only: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        lazy: bool = False,
        on_open: Callable[[PostgresWarehouse], None] | None = None,
        claim: bool = True,
    ) -> None:
        self.dsn = dsn
        self.path = redact_dsn(dsn)  # what messages name
        self.sql = PostgresDialect()
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self._on_open = on_open
        self._claim = claim and not read_only
        self._lock = threading.RLock()
        self._in_transaction = False
        self._con: Any = None
        self._closed = False
        self._owner: PostgresWarehouse | None = None
        if not lazy:
            self.acquire()

    # -- connection ------------------------------------------------------------------------

    def acquire(self, timeout: float | None = None) -> None:
        with self._lock:
            self._connection(timeout)

    def _connection(self, timeout: float | None = None) -> Any:
        if self._con is not None:
            return self._con
        if self._closed:
            raise WarehouseError(f"the warehouse {self.path} was closed")
        import psycopg

        timeout = self.lock_timeout if timeout is None else timeout
        try:
            con = psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=10, application_name="anchorflow"
            )
        except psycopg.Error as error:  # a bad DSN is a ProgrammingError, a refusal Operational
            message = str(error).strip().splitlines()[0] if str(error).strip() else "refused"
            message = redact_dsn(message)
            if "does not exist" in message and self.read_only:
                raise NoWarehouse(f"no warehouse yet at {self.path}: {message}") from None
            raise WarehouseError(
                f"cannot connect to PostgreSQL at {self.path}: {redact_dsn(message)}"
            ) from None
        try:
            # JSON comes back as its text, as from DuckDB (not parsed into Python objects).
            from psycopg.types.string import TextLoader

            for json_type in ("json", "jsonb"):
                con.adapters.register_loader(json_type, TextLoader)
            con.execute("SET TIME ZONE 'UTC'")
            con.execute("SET datestyle = 'ISO, YMD'")
            con.execute("SET intervalstyle = 'postgres'")
            con.execute("SET extra_float_digits = 1")
            if self.read_only:
                con.execute("SET default_transaction_read_only = on")
            else:
                # DDL that meets a reader's lock (a BI query on a mart being rebuilt) waits for
                # it as long as for the writer claim, then fails in one line, never forever.
                con.execute(f"SET lock_timeout = {max(1, int(timeout * 1000))}")
                self._install_functions(con)
            con.execute(f"SET search_path = public, {FUNCTIONS_SCHEMA}")
            if self._claim:
                self._take_claim(con, timeout)
        except BaseException:
            con.close()
            raise
        self._con = con
        if self._on_open is not None:
            self._on_open(self)
        return con

    def _take_claim(self, con: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pause = 0.05
        while not con.execute("SELECT pg_try_advisory_lock(%s)", [WRITER_LOCK_KEY]).fetchone()[0]:
            if time.monotonic() >= deadline:
                holder = con.execute(
                    "SELECT a.pid, a.application_name FROM pg_locks AS l JOIN pg_stat_activity "
                    "AS a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objid = %s",
                    [WRITER_LOCK_KEY & 0xFFFFFFFF],
                ).fetchone()
                who = f" by PID {holder[0]} ({holder[1] or 'a client'})" if holder else ""
                raise WarehouseError(
                    f"the warehouse {self.path} is written{who}; waited {timeout:.0f} s "
                    "(warehouse.lock_timeout): try again when it has finished"
                )
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 1.0)

    def _install_functions(self, con: Any) -> None:
        schema = ident(FUNCTIONS_SCHEMA)
        current = con.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
            [FUNCTIONS_SCHEMA],
        ).fetchone()
        if current and current[0] == f"anchorflow functions v{FUNCTIONS_VERSION}":
            return
        body = resources.files("anchorflow.warehouse.postgres").joinpath("functions.sql")
        with con.transaction():
            con.execute(f"SELECT pg_advisory_xact_lock({WRITER_LOCK_KEY + 1})")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(body.read_text())
            con.execute(
                f"COMMENT ON SCHEMA {schema} IS 'anchorflow functions v{FUNCTIONS_VERSION}'"
            )

    def worker(self) -> PostgresWarehouse:
        """A second connection (its own transactions), for a statement run in parallel."""
        other = PostgresWarehouse(
            self.dsn, read_only=self.read_only, lock_timeout=self.lock_timeout, lazy=True,
            claim=False,
        )  # fmt: skip
        other._owner = self
        return other

    # -- statements ------------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any] | None) -> Any:
        import psycopg

        statement = bind(transpile(sql), bool(params))
        try:
            return self._connection().execute(statement, _params(params) if params else None)
        except psycopg.Error as error:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise WarehouseError(f"{type(error).__name__}: {detail}") from error

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self._lock:
            self._run(sql, params)

    def insert(self, sql: str, params: Sequence[Any] | None = None) -> int:
        with self._lock:
            cursor = self._run(sql, params)
            return max(int(cursor.rowcount), 0)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            cursor = self._run(sql, params)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self._lock:
            cursor = self._run(sql, params)
            described = list(cursor.description or [])
            rows = cursor.fetchall()
        columns: list[list[Any]] = (
            [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in described]
        )
        arrays = {}
        for column, values in zip(described, columns, strict=True):
            arrow_type = _OID_TO_ARROW.get(column.type_code)
            if column.type_code == _UUID_OID:
                values = [None if v is None else str(v) for v in values]
            arrays[column.name] = pa.array(values, type=arrow_type)
        return pa.table(arrays)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._in_transaction:
                yield
                return
            self._connection().execute("BEGIN")
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._in_transaction = False
                with contextlib.suppress(Exception):
                    self._connection().execute("ROLLBACK")
                raise
            self._in_transaction = False
            if _aborted(self._connection()):  # COMMIT would roll back without a word
                self._connection().execute("ROLLBACK")
                raise WarehouseError("a statement of the transaction failed; nothing was committed")
            self._run("COMMIT", None)

    # -- bulk data -------------------------------------------------------------------------

    def _copy_in(self, target: str, columns: Sequence[str], data: pa.Table) -> None:
        """`data` into `target` through COPY of CSV written by Arrow's C++ writer."""
        import psycopg

        names = ", ".join(ident(c) for c in columns)
        data = _copyable(data)
        buffer = io.BytesIO()
        pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False))
        statement = f"COPY {target} ({names}) FROM STDIN (FORMAT csv)"
        try:
            with self._connection().cursor().copy(statement) as copy:
                copy.write(buffer.getbuffer())
        except psycopg.Error as error:
            detail = str(error).strip().splitlines()[0]
            raise WarehouseError(f"{type(error).__name__}: {detail}") from error

    @contextmanager
    def registered(self, name: str, data: pa.Table, release: bool = False) -> Iterator[str]:
        """A temporary table holding `data` (PostgreSQL cannot scan Arrow in place)."""
        quoted = ident(name)
        columns = ", ".join(f"{ident(f.name)} {pg_type(f.type)}" for f in data.schema)
        with self._lock:
            self._run(f"/*native*/DROP TABLE IF EXISTS pg_temp.{quoted}", None)
            self._run(f"/*native*/CREATE TEMP TABLE {quoted} ({columns})", None)
            try:
                self._copy_in(quoted, data.column_names, data)
                self._run(f"/*native*/ANALYZE {quoted}", None)
                yield quoted
            finally:
                with contextlib.suppress(Exception):
                    if self._con is not None and not _aborted(self._con):
                        self._run(f"/*native*/DROP TABLE IF EXISTS pg_temp.{quoted}", None)

    def insert_arrow(self, schema: str, name: str, data: pa.Table) -> int:
        with self._lock:
            self._copy_in(table(schema, name), data.column_names, data)
        return int(data.num_rows)

    def insert_files(self, schema: str, name: str, paths: Sequence[Path], fmt: str) -> int:
        import pyarrow.json as pajson
        import pyarrow.parquet as pq

        total = 0
        for path in paths:
            if fmt == "parquet":
                data = pq.read_table(path)
            elif fmt == "ndjson":
                data = pajson.read_json(path)
            else:
                raise WarehouseError(f"cannot bulk-load files of format {fmt!r}")
            total += self.insert_arrow(schema, name, data)
        return total

    def table_exists(self, schema: str, name: str) -> bool:
        found = self.scalar(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        )
        return bool(found)

    def rewrite(self) -> Rewritten:
        """`VACUUM FULL` of every table of anchorflow's schemas: each is rewritten without the
        dead rows that a `forget` left, so their bytes leave the table files. (Earlier WAL
        segments and base backups are the server operator's to expire.)"""
        started = time.perf_counter()
        with self._lock:
            if self._in_transaction:
                raise WarehouseError("the warehouse can only be rewritten outside a transaction")
            before = int(self.scalar("/*native*/SELECT pg_database_size(current_database())"))
            tables = self.query(
                "/*native*/SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(?)",
                [list(SCHEMAS)],
            )
            for schema, name in tables:
                self._run(f"/*native*/VACUUM (FULL) {table(schema, name)}", None)
            after = int(self.scalar("/*native*/SELECT pg_database_size(current_database())"))
        return Rewritten(before, after, time.perf_counter() - started)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._con is not None:
                with contextlib.suppress(Exception):
                    self._con.close()  # the writer claim (a session lock) goes with it
                self._con = None


def _aborted(con: Any) -> bool:
    from psycopg.pq import TransactionStatus

    return bool(con.info.transaction_status == TransactionStatus.INERROR)


def _params(params: Sequence[Any]) -> list[Any]:
    """Parameters as psycopg adapts them: a Python list is a PostgreSQL array."""
    return [list(p) if isinstance(p, tuple) else p for p in params]


def _copyable(data: pa.Table) -> pa.Table:
    """Columns CSV can carry: lists become PostgreSQL array literals; NUL characters, which
    PostgreSQL text cannot hold, are refused by the caller's validation before this."""
    columns = []
    for column in data.columns:
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            values = column.to_pylist()
            column = pa.array([None if v is None else _array_literal(v) for v in values])
        elif pa.types.is_string_view(column.type) or pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            # bytea's hex input; no bulk path carries bytes (raw records are text)
            column = pa.array([None if v is None else "\\x" + v.hex() for v in column.to_pylist()])
        elif pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns.append(column)
    return pa.table(columns, names=data.column_names)


def _array_literal(values: list[Any]) -> str:
    def one(value: Any) -> str:
        if value is None:
            return "NULL"
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'

    return "{" + ",".join(one(v) for v in values) + "}"
