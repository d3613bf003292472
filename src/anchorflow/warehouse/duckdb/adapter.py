"""The embedded DuckDB adapter: the default engine."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from anchorflow.crashpoints import crash_point
from anchorflow.durable import fsync, fsync_directory
from anchorflow.errors import NoWarehouse, WarehouseError
from anchorflow.project_types import size_bytes
from anchorflow.warehouse.base import Capabilities, Rewritten, Warehouse, ident, literal, table
from anchorflow.warehouse.duckdb.dialect import DuckDBDialect
from anchorflow.warehouse.locking import WriterClaim, held_by, wait_for_lock

log = logging.getLogger(__name__)

CATALOG = "warehouse"
ROW_GROUP_SIZE = 4_096
DEFAULT_LOCK_TIMEOUT = 300.0  # seconds; a project's is `warehouse.lock_timeout`


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    sql = DuckDBDialect()
    capabilities = Capabilities(
        transactions=True, arrow_scan=True, column_compression=True, parallel_writers=4
    )

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        memory_limit: str | None = None,
        storage_version: str | None = None,
        external_access: bool = True,
        *,
        read_only: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        lazy: bool = False,
        on_open: Callable[[DuckDBWarehouse], None] | None = None,
    ) -> None:
        """`storage_version`: the format of a file created here (None: DuckDB's own). Without
        `external_access` the engine reads no file and no URL but its own (a scratch warehouse
        that runs users' SQL to check it). `read_only`: attach the file read-only; it must exist
        (it is never created). `lock_timeout`: seconds to wait for another process to let go of
        the file. `lazy`: open the file at the first statement rather than now. `on_open` runs
        after every open: the first, and each one after a `release`."""
        self.path = str(path)
        self.storage_version = storage_version
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        # An hour of events is smaller than DuckDB's default row group (122,880 rows), so its
        # rows would go through the WAL uncompressed and be recompressed at every checkpoint.
        # With small row groups a load's rows are written compressed, straight to the file, and
        # the commit only logs block pointers. Measured on 1M events in 50k-event hours:
        # 122,880 rows: 40k events/s; 16,384: 72k/s + 1.8 s checkpoint at close; 4,096: 74k/s
        # + 0.2 s at close and the smallest file (see BENCHMARKS.md).
        self._config: dict[str, Any] = {
            "checkpoint_threshold": "1GB",
            "preserve_insertion_order": False,
        }
        if str(path) != ":memory:" and not read_only:
            # The file is attached to an in-memory database, whose spill directory would be
            # `.tmp` in the working directory; the one writer spills beside its file instead.
            self._config["temp_directory"] = f"{path}.tmp"
        if threads:
            self._config["threads"] = threads
        if memory_limit:
            self._config["memory_limit"] = memory_limit
        if not external_access:
            self._config["enable_external_access"] = False
        self._caps: list[str] = []  # the memory caps of the `memory_capped` blocks in progress
        self._on_open = on_open
        self._lock = threading.RLock()
        self._in_transaction = False
        self._con: duckdb.DuckDBPyConnection | None = None
        self._owner: DuckDBWarehouse | None = None  # set on a worker
        self._workers = 0  # workers open on this connection
        self._closed = False
        self._opened_before = False
        self._claim = WriterClaim(Path(self.path)) if self._writes_a_file else None
        if not lazy:
            self.acquire()

    @property
    def _writes_a_file(self) -> bool:
        return not self.read_only and self.path != ":memory:"

    @property
    def released(self) -> bool:
        """Whether the file is let go of now (the next statement opens it again)."""
        return self._con is None

    def acquire(self, timeout: float | None = None) -> None:
        """`timeout`: seconds to wait for the file (the lock timeout when None)."""
        with self._lock:
            self._connection(timeout)

    def release(self) -> None:
        """Close the connection, and with it the file lock, until the next statement opens the
        file again (waiting for the lock): meanwhile other processes can open it. The writer
        claim stays (see `locking`). Refused inside a transaction or while workers are open.
        Nothing to do when `kept_open`."""
        if self.kept_open:
            return
        with self._lock:
            if self._owner is not None or self._in_transaction or self._workers:
                raise WarehouseError(
                    "the warehouse cannot be let go of inside a transaction or while its "
                    "workers are open"
                )
            if self._con is not None:
                self._con.close()
                self._con = None

    def _connection(self, timeout: float | None = None) -> duckdb.DuckDBPyConnection:
        """The open connection: opened first when lazy or released (call it under the lock).
        The waits for the writer claim and for the file share one deadline."""
        if self._con is not None:
            return self._con
        if self._closed:
            raise WarehouseError(f"the warehouse {self.path} was closed")
        first = not self._opened_before
        timeout = self.lock_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            if first and self._claim is not None:
                self._claim.acquire(timeout, started)
            self._con = self._open(timeout, started)
            self.opens += 1
            if first and self._writes_a_file:  # the file is ours: a cut-off rewrite's leftovers go
                remove_rewrite_leftovers(Path(self.path))
            if self._on_open is not None:
                self._on_open(self)
            self._opened_before = True  # only now: a failed first open claims again
        except BaseException:
            if self._con is not None:
                self._con.close()  # the file lock goes with it
                self._con = None
            if first and self._claim is not None:
                self._claim.release()
            raise
        return self._con

    def _open(self, timeout: float, started: float) -> duckdb.DuckDBPyConnection:
        """A connection with the file attached, once whoever holds the file lets go of it."""
        if self.read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise NoWarehouse(f"no warehouse yet at {self.path}: run `anchorflow run` first")
        return wait_for_lock(self._open_once, f"the warehouse {self.path}", timeout, started)

    def _open_once(self) -> duckdb.DuckDBPyConnection:
        try:
            con = duckdb.connect(config=self._open_config())
        except duckdb.Error as error:  # a bad setting, e.g. memory_limit
            raise WarehouseError(f"warehouse settings rejected by DuckDB: {error}") from None
        try:
            # An existing file keeps the format it has: DuckDB refuses to lower it, and raising it
            # would lock out the readers it was written for (`compact` rewrites it in ours).
            fresh = not Path(self.path).exists()
            options = "READ_ONLY" if self.read_only else self._attach_options(fresh)
            con.execute(f"ATTACH {literal(self.path)} AS {ident(CATALOG)} ({options})")
            con.execute(f"USE {ident(CATALOG)}")
            # Sources speak UTC; a TIMESTAMPTZ without an offset must mean UTC, not local time.
            con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as error:
            con.close()
            held = held_by(str(error))
            if held is not None:
                raise held from None
            _refuse_unknown_storage_version(error, self.storage_version)
            raise WarehouseError(f"cannot open the DuckDB file {self.path}: {error}") from None
        return con

    def _attach_options(self, fresh: bool) -> str:
        options = f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}"
        if fresh and self.storage_version:
            options += f", STORAGE_VERSION {literal(self.storage_version)}"
        return options

    @contextmanager
    def memory_capped(self, limit: str | None) -> Iterator[None]:
        """DuckDB keeps what it reads and builds in its buffer pool up to `memory_limit` (80%
        of RAM by default) and lets go of it only under pressure: a step that reads much
        grows the process by as much. Inside the block the limit is `limit` when that is
        lower (it spills temporary data to `<file>.tmp` beyond it), then the previous one.
        What the block wrote is checkpointed before the limit is lifted: the checkpoint of a
        large write would otherwise take the memory back at the next commit or at close."""
        if not limit:
            yield
            return
        wanted = memory_bytes(limit)
        previous = str(self.scalar("SELECT current_setting('memory_limit')"))
        if wanted >= memory_bytes(previous):
            yield
            return
        owner = self._owner or self
        owner._caps.append(limit)  # a connection opened again inside the block takes it too
        try:
            self.execute(f"SET memory_limit = {literal(limit)}")
            yield
            if not self.released:  # (a close checkpointed what the block wrote already)
                self._checkpoint_quietly()
        finally:  # (what DuckDB prints of the limit is rounded: the setting itself is restored)
            owner._caps.pop()
            if not self.released:
                restored = owner._open_config().get("memory_limit")
                if restored:
                    self.execute(f"SET memory_limit = {literal(restored)}")
                else:
                    self.execute("RESET memory_limit")

    def _open_config(self) -> dict[str, Any]:
        """The settings a connection opens with: the warehouse's, under the memory cap of a
        `memory_capped` block in progress (the land step lets go of the file between windows
        and opens it again: without this, DuckDB's default limit came back with it)."""
        config = dict(self._config)
        if self._caps:
            config["memory_limit"] = min(self._caps, key=memory_bytes)
        return config

    def _checkpoint_quietly(self) -> None:
        """CHECKPOINT unless a transaction is open here or elsewhere (then the next commit or
        the close checkpoints, as without it)."""
        if self._in_transaction:
            return
        try:
            self.execute("CHECKPOINT")
        except WarehouseError as error:
            log.info("no checkpoint under the memory cap: %s", error)

    def worker(self) -> DuckDBWarehouse:
        """A cursor: a second connection to the same database, usable from another thread."""
        other = object.__new__(DuckDBWarehouse)
        other.path, other.read_only, other.lock_timeout = self.path, self.read_only, 0.0
        other.storage_version = self.storage_version
        other._config, other._on_open, other._claim = self._config, None, None
        other._caps = self._caps
        other._lock = threading.RLock()
        other._in_transaction, other._workers, other._closed = False, 0, False
        other._opened_before, other._owner = True, self
        with self._lock:
            cursor = self._connection().cursor()
            self._workers += 1
        cursor.execute(f"USE {ident(CATALOG)}")
        cursor.execute("SET TimeZone = 'UTC'")
        other._con = cursor
        return other

    def _run(self, sql: str, params: Sequence[Any] | None) -> duckdb.DuckDBPyConnection:
        try:
            return self._connection().execute(sql, params or None)
        except duckdb.Error as error:
            raise WarehouseError(f"{type(error).__name__}: {error}") from error

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self._lock:
            self._run(sql, params)

    def insert(self, sql: str, params: Sequence[Any] | None = None) -> int:
        with self._lock:
            row = self._run(sql, params).fetchone()
            return int(row[0]) if row else 0

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._run(sql, params).fetchall()

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self._lock:
            try:
                return self._connection().sql(sql, params=params or None).to_arrow_table()
            except duckdb.Error as error:
                raise WarehouseError(f"{type(error).__name__}: {error}") from error

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._in_transaction:  # nested: the outer block commits
                yield
                return
            self._run("BEGIN TRANSACTION", None)
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._in_transaction = False
                # The original error is what the user must see, not a failure to roll back.
                with contextlib.suppress(duckdb.Error):
                    self._connection().execute("ROLLBACK")
                raise
            self._in_transaction = False
            self._run("COMMIT", None)

    @contextmanager
    def registered(self, name: str, data: pa.Table, release: bool = False) -> Iterator[str]:
        # DuckDB keeps what was registered in a transaction alive until the transaction ends;
        # a released registration is a holder emptied after the block, so only it is kept.
        holder = _Released(data) if release else None
        with self._lock:
            self._connection().register(name, holder if holder is not None else data)
            try:
                yield ident(name)
            finally:
                if holder is not None:
                    holder.table = None
                # Fails inside an aborted transaction; that must not hide the original error.
                with contextlib.suppress(duckdb.Error):
                    self._connection().unregister(name)

    def insert_arrow(self, schema: str, name: str, data: pa.Table) -> int:
        columns = ", ".join(ident(c) for c in data.column_names)
        with self.registered("__anchorflow_insert", data) as view:
            self.execute(
                f"INSERT INTO {table(schema, name)} ({columns}) SELECT {columns} FROM {view}"
            )
        return int(data.num_rows)

    def insert_files(self, schema: str, name: str, paths: Sequence[Path], fmt: str) -> int:
        readers = {"parquet": "read_parquet", "ndjson": "read_ndjson"}
        if fmt not in readers:
            raise WarehouseError(f"cannot bulk-load files of format {fmt!r}")
        files = "[" + ", ".join(literal(str(p)) for p in paths) + "]"
        before = self.scalar(f"SELECT count(*) FROM {table(schema, name)}")
        self.execute(
            f"INSERT INTO {table(schema, name)} BY NAME SELECT * FROM {readers[fmt]}({files})"
        )
        after = self.scalar(f"SELECT count(*) FROM {table(schema, name)}")
        return int(after) - int(before)

    def write_file(
        self,
        sql: str,
        path: Path,
        fmt: str,
        params: Sequence[Any] | None = None,
        compression: str | None = None,
    ) -> int:
        """The engine writes the file (`COPY (...) TO`): no row passes through Python."""
        options = f"FORMAT {fmt}" + (f", COMPRESSION {compression}" if compression else "")
        copy = f"COPY ({sql}) TO {literal(str(path))} ({options})"
        return int(self.scalar(copy, params))

    def table_exists(self, schema: str, name: str) -> bool:
        found = self.scalar(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_catalog = ? AND table_schema = ? AND table_name = ?",
            [CATALOG, schema, name],
        )
        return bool(found)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._con is not None:
                self._con.close()  # a worker's cursor only; the owner's closes the database
                self._con = None
            if self._claim is not None:
                self._claim.release()
        if self._owner is not None:
            with self._owner._lock:
                self._owner._workers -= 1

    def rewrite(self) -> Rewritten:
        """Copy the database into a new file and swap it in for the old one, so that nothing
        deleted (an erased person's rows) survives in free or stale blocks.

        Crash-safe order: the old file is checkpointed (its WAL is empty), the copy is written
        beside it (`<file>.compacting`), checkpointed, closed and fsynced, then renamed over the
        old file while this connection still holds the old file's lock, and the directory is
        fsynced. A crash before the rename leaves the old file whole (the copy is removed at the
        next open); after it, the new one.
        """
        path = Path(self.path)
        fresh = rewrite_path(path)
        started = time.perf_counter()
        with self._lock:
            if self._in_transaction or self.path == ":memory:":
                raise WarehouseError("the warehouse can only be rewritten outside a transaction")
            self._run("CHECKPOINT", None)
            before = path.stat().st_size
            remove_rewrite_leftovers(path)
            try:
                self._copy_to(fresh)
                fsync(fresh)
                for stray in (Path(f"{path}.wal"), Path(f"{fresh}.wal")):
                    if stray.exists() and stray.stat().st_size:
                        raise WarehouseError(f"rewrite of {path}: {stray} is not empty; try again")
                crash_point("compact_before_swap")
                os.replace(fresh, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    remove_rewrite_leftovers(path)
                raise
            fsync_directory(path.parent)
            crash_point("compact_swapped")
            self._connection().close()
            self._con = None
            self._con = self._open(self.lock_timeout, time.monotonic())
            self.opens += 1
        return Rewritten(before, path.stat().st_size, time.perf_counter() - started)

    def _copy_to(self, fresh: Path) -> None:
        copy = ident("__anchorflow_rewrite")
        try:
            options = self._attach_options(fresh=True)
            self._connection().execute(f"ATTACH {literal(str(fresh))} AS {copy} ({options})")
        except duckdb.Error as error:
            _refuse_unknown_storage_version(error, self.storage_version)
            raise WarehouseError(f"{type(error).__name__}: {error}") from error
        try:
            self._run(f"COPY FROM DATABASE {ident(CATALOG)} TO {copy}", None)
            crash_point("compact_copied")
            self._run(f"CHECKPOINT {copy}", None)
        finally:
            with contextlib.suppress(duckdb.Error):
                self._connection().execute(f"DETACH {copy}")


def _refuse_unknown_storage_version(error: duckdb.Error, version: str | None) -> None:
    if "not a known DuckDB version" in str(error):
        raise WarehouseError(
            f"warehouse.storage_version: DuckDB {duckdb.__version__} does not know {version!r}; "
            "name a DuckDB release such as v1.4.0, or latest"
        ) from None


def rewrite_path(path: Path) -> Path:
    """Where `rewrite` writes the copy: beside the file, so the rename is atomic."""
    return path.with_name(path.name + ".compacting")


def remove_rewrite_leftovers(path: Path) -> None:
    """Remove a copy (and its WAL) that a rewrite cut off before its rename left behind."""
    fresh = rewrite_path(path)
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)


class _Released:
    """An Arrow table behind the Arrow C stream interface, read by DuckDB through it on every
    scan; once `table` is None it holds nothing, whoever keeps the holder."""

    def __init__(self, table: pa.Table) -> None:
        self.table: pa.Table | None = table

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        if self.table is None:
            raise RuntimeError("a released registration was read after its block")
        return self.table.__arrow_c_stream__(requested_schema)


def memory_bytes(size: str) -> int:
    """Bytes of a DuckDB memory size ("3GB", "512MiB", "18.6 GiB" as DuckDB prints it)."""
    try:
        return size_bytes(size)
    except ValueError as error:
        raise WarehouseError(str(error)) from None
