"""The Spark adapter: the layers as Parquet files in a lake directory, queried with Spark SQL,
and the journal in a transactional store beside it (an embedded DuckDB file).

Spark over files has no transactions, so this adapter makes its own from two parts:
- the **journal store** (`journal`, a DuckDB warehouse) holds `meta`, the catalog of the lake's
  tables and views (as empty tables and views of the same names and columns, so that
  `information_schema` questions are answered as on DuckDB), and the manifest of which files
  make up each lake table (`journal.lake`);
- the **lake** (`lake.Lake`) holds the rows, one Hive-style partition per load id.

A statement is routed by the tables it names: one that names no lake table (the journal's own
reads and writes, the catalog's DDL) runs on the journal store as written; one that reads a lake
table runs on Spark, each table a temporary view over the files the manifest lists (the
journal's tables it also reads are copied to Spark as views), and one that writes a lake table
has Spark write the rows as Parquet under the transaction's staging directory.

`transaction()` opens a journal transaction and collects the lake writes. At its end the staged
partitions are renamed into place, then the journal commits the manifest that lists them: a
load's rows appear whole or not at all, in the same commit as its journal rows and cursor. A
crash between the renames and the commit leaves files the manifest does not list: debris that
the next writer to open the lake removes before anything else (`Lake.remove_debris`). Deleted
rows are whole partitions leaving the manifest (their files are deleted after the commit), or,
for a condition on other columns, the partitions concerned rewritten without them.

This module routes statements and keeps transactions and the views Spark reads; the writes to
the lake (INSERT, CREATE ... AS, DELETE, UPDATE) are in `writes.py`.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from anchorflow.crashpoints import crash_point
from anchorflow.errors import WarehouseError
from anchorflow.journal import lake as manifest
from anchorflow.warehouse.base import Capabilities, Warehouse, ident
from anchorflow.warehouse.duckdb import DuckDBWarehouse
from anchorflow.warehouse.spark.arrow import as_duckdb_gives, as_spark_reads
from anchorflow.warehouse.spark.dialect import (
    SparkDialect,
    catalog_only,
    count_star_as_count,
    parse,
    reads_only,
    spark_type,
    to_spark,
)
from anchorflow.warehouse.spark.lake import Lake, Pending
from anchorflow.warehouse.spark.offload import (
    TempCopies,
    fragments,
    per_load_counts,
    to_journal,
)
from anchorflow.warehouse.spark.session import spark_session
from anchorflow.warehouse.spark.writes import (
    LAKE_SCHEMAS,
    LakeWrites,
    _args,
    _dropped,
    _names,
    _partitioned,
    _qualified,
)

TYPE_TAG = "anchorflow.type"


class SparkWarehouse(LakeWrites, Warehouse):
    # The SQL it takes is the canonical (DuckDB) spelling, translated per statement for Spark
    # (`dialect.to_spark`) or run as written on the journal; `sql.name` says "spark".
    dialect = "duckdb"
    capabilities = Capabilities(
        transactions=True, arrow_scan=False, column_compression=False, parallel_writers=1
    )

    def __init__(
        self,
        lake: Path,
        journal: Path,
        master: str = "local[2]",
        *,
        read_only: bool = False,
        lock_timeout: float = 300.0,
        lazy: bool = False,
        on_open: Callable[[SparkWarehouse], None] | None = None,
        conf: dict[str, str] | None = None,
    ) -> None:
        self.lake = Lake(Path(lake))
        self.path = str(lake)
        self.master = master
        self.conf = dict(conf or {})
        self.read_only = read_only
        self.sql = SparkDialect()
        if not read_only:
            Path(journal).parent.mkdir(parents=True, exist_ok=True)
        self.journal = DuckDBWarehouse(
            journal, read_only=read_only, lock_timeout=lock_timeout, lazy=True,
            on_open=self._journal_opened,
        )  # fmt: skip
        self._on_open = on_open
        self._connection_state()
        if not lazy:
            self.acquire()

    def _connection_state(self) -> None:
        """What each connection (the warehouse, or one of its workers) holds of its own."""
        self._lock = threading.RLock()
        self._generation = -1  # the lake's generation its catalog was read at
        self._spark: Any = None
        self._pending: Pending | None = None
        self._columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._tables: dict[tuple[str, str], bool] = {}  # lake tables: a table (not a view)?
        self._fresh: set[tuple[str, str]] = set()  # lake tables whose Spark view is current
        self._views: dict[tuple[str, str], exp.Create | None] = {}  # lake schemas' views
        self._registered: dict[str, pa.Table] = {}  # Arrow data registered by name
        self._in_spark: set[str] = set()  # of which Spark holds a view now
        self._temps: set[str] = set()  # temporary tables Spark holds (made from lake tables)
        self._copies = TempCopies()  # their Arrow copies, for statements the journal runs
        self._variables: dict[str, tuple[type, Any]] = {}  # Spark session variables set now
        # Arrow rows copied for Spark to read (registered batches, journal tables): not the lake
        self._scratch = Path(tempfile.mkdtemp(prefix="anchorflow-spark-"))

    def worker(self) -> SparkWarehouse:
        """Another connection to the same lake and journal, for another thread (the pages of
        `anchorflow serve` read through workers while a run writes): its journal is a cursor
        of the journal's, which sees the last commit; its Spark session (and views) its own,
        the lake tables' views made again at each statement outside a transaction of its own,
        over the files the manifest lists then. Its transactions are its own."""
        other = object.__new__(SparkWarehouse)
        other.lake, other.path, other.master, other.conf = (
            self.lake, self.path, self.master, self.conf
        )  # fmt: skip
        other.read_only, other.sql = self.read_only, self.sql
        other.journal = self.journal.worker()
        other._on_open = None
        other._connection_state()
        return other

    def _forget_catalog(self) -> None:
        """Drop what this connection knows of the lake's tables and views (their columns, kind,
        statement and Spark views), to be read again from the journal."""
        self._columns.clear()
        self._tables.clear()
        self._views.clear()
        self._fresh.clear()

    # -- opening ---------------------------------------------------------------------------

    def _journal_opened(self, journal: DuckDBWarehouse) -> None:
        if not self.read_only:
            manifest.ensure_manifest(journal)
            self.lake.root.mkdir(parents=True, exist_ok=True)
            self.lake.remove_debris(manifest.listed_paths(journal))
        self._forget_catalog()
        if self._on_open is not None:
            self._on_open(self)

    def acquire(self, timeout: float | None = None) -> None:
        self.journal.acquire(timeout)

    @property
    def released(self) -> bool:
        return self.journal.released

    def release(self) -> None:
        """Let go of the journal file (the lake needs no letting go: readers read files)."""
        if not self.kept_open:
            self.journal.release()

    @property
    def spark(self) -> Any:
        if self._spark is None:
            self._spark = spark_session(self.master, conf=self.conf)
            self._variables.clear()
        return self._spark

    # -- routing -----------------------------------------------------------------------------

    def _spark_temp(self, t: exp.Table) -> bool:
        return t.db in ("", "temp") and t.name in self._temps

    def _lake_tables(self, tree: exp.Expr) -> list[exp.Table]:
        """The tables of the statement that Spark reads: lake tables, its temporary tables, and
        registered batches (the SQL about a batch's records is Spark's: `SparkDialect`)."""
        return [
            t for t in tree.find_all(exp.Table)
            if t.db in LAKE_SCHEMAS or self._spark_temp(t)
            or (not t.db and t.name in self._registered)
        ]  # fmt: skip

    def _partitioned_table(self, t: exp.Table) -> bool:
        """A lake table (not a view) partitioned by load id: its files list its rows."""
        if t.db not in LAKE_SCHEMAS:
            return False
        key = (t.db, t.name)
        if key not in self._tables:
            self._tables[key] = bool(self.journal.scalar(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                "AND schema_name = ? AND table_name = ?", list(key)
            ))  # fmt: skip
        return self._tables[key] and _partitioned(self.columns(t.db, t.name))

    def _journal_change(self, tree: exp.Expr) -> bool:
        """An UPDATE or DELETE of a journal table that reads no lake table (a registered batch
        at most): the journal runs it, reading the batch it registered too."""
        if not isinstance(tree, exp.Update | exp.Delete):
            return False
        target = tree.this
        return (
            isinstance(target, exp.Table)
            and target.db not in LAKE_SCHEMAS
            and not any(
                t.db in LAKE_SCHEMAS or self._spark_temp(t) for t in tree.find_all(exp.Table)
            )
        )

    def _run(self, sql: str, params: Sequence[Any] | None) -> tuple[pa.Table | None, int]:
        """Run one or more statements: (the last one's rows, rows it inserted or deleted)."""
        if self._pending is None and self._generation != self.lake.generation:
            self._forget_catalog()  # a connection (this one or another) committed since
            self._generation = self.lake.generation
        try:
            return self._statements(sql, params)
        finally:
            if self._pending is None and not reads_only(sql):
                self.lake.generation += 1  # committed on its own (or failed: read anew)

    def _statements(self, sql: str, params: Sequence[Any] | None) -> tuple[pa.Table | None, int]:
        if sql.lstrip().upper().startswith("SET VARIABLE"):
            self._set_variable(sql, list(params or []))
        trees = parse(sql)
        head = trees[0] if trees else None
        if isinstance(head, exp.Drop) and any(self._spark_temp(t) for t in _dropped(head)):
            for table in _dropped(head):  # temporary tables of Spark's
                self._temps.discard(table.name)
                self._copies.changed(table.name, None)
                self._spark.catalog.dropTempView(table.name)
            return None, 0
        if (
            isinstance(head, exp.Create) and head.expression is not None
            and head.find(exp.TemporaryProperty) is not None
            and self._lake_tables(head.expression)
        ):  # fmt: skip
            return None, self._create_temp(head, list(params or []))
        if len(trees) == 1 and isinstance(head, exp.Query | exp.Insert):
            counted = per_load_counts(head, self._partitioned_table)
            if counted is not None and not self._lake_tables(counted):
                return self._journal_run(counted.sql("duckdb"), params)
        if (
            not any(self._lake_tables(t) for t in trees) or catalog_only(trees[0])
            or self._journal_change(trees[0])
        ):  # fmt: skip
            if len(trees) == 1 and fragments(trees[0]):  # Spark's spelling, on the journal
                sql = to_journal(trees[0], set())
            return self._journal_run(sql, params)
        if len(trees) != 1:
            raise WarehouseError("one statement at a time on the Spark engine")
        return self._spark_statement(trees[0], list(params or []))

    def _journal_run(self, sql: str, params: Sequence[Any] | None) -> tuple[pa.Table | None, int]:
        trees = parse(sql)
        head = trees[0] if trees else None
        if isinstance(head, exp.Create | exp.Drop | exp.Alter) and _schema_of(head) in LAKE_SCHEMAS:
            self._forget_catalog()
            if isinstance(head, exp.Create) and head.kind == "VIEW":
                with self.transaction():
                    self.journal.execute(sql, params)
                self._spark_view(head)
                return None, 0
            if isinstance(head, exp.Drop):
                with self.transaction():
                    self._drop_lake_table(head)
                    self.journal.execute(sql, params)
                return None, 0
            if isinstance(head, exp.Create) and head.kind == "TABLE" and head.args.get("replace"):
                table = head.this.this if isinstance(head.this, exp.Schema) else head.this
                with self.transaction():  # the table it replaces leaves with its files
                    self._drop_files(table.db, table.name, None)
                    self.journal.execute(sql, params)
                return None, 0
        if isinstance(head, exp.Query | exp.Describe | exp.Show | exp.Pragma):
            return self.journal.query_arrow(sql, params), 0
        if isinstance(head, exp.Insert | exp.Delete | exp.Update):
            return None, self.journal.insert(sql, params)
        self.journal.execute(sql, params)
        return None, 0

    def _spark_statement(self, tree: exp.Expr, params: list[Any]) -> tuple[pa.Table | None, int]:
        if isinstance(tree, exp.Query):
            return self._collect(self._spark_query(tree, params)), 0
        if isinstance(tree, exp.Insert):
            return None, self._insert(tree, params)
        if isinstance(tree, exp.Delete):
            return None, self._delete(tree, params)
        if isinstance(tree, exp.Update):
            return None, self._update(tree, params)
        if isinstance(tree, exp.Create) and tree.kind == "VIEW":
            self._forget_catalog()
            with self.transaction():
                self.journal.execute(tree.sql("duckdb"), params)
            self._spark_view(tree)
            return None, 0
        if isinstance(tree, exp.Create) and tree.kind == "TABLE" and tree.expression:
            return None, self._create_as(tree, params)
        raise WarehouseError(
            f"the Spark engine cannot run {type(tree).__name__.upper()} on lake tables "
            "(INSERT ... SELECT, DELETE, UPDATE, CREATE ... AS)"
        )

    def _set_variable(self, sql: str, params: list[Any]) -> None:
        """`SET VARIABLE name = ?` (the canonical spelling): on the journal as written, and as
        a session variable of Spark's (`getvariable('name')` reads it there)."""
        name = sql.split("=", 1)[0].split()[-1]
        ident(name)  # validated
        if len(params) != 1:
            raise WarehouseError("SET VARIABLE on the Spark engine takes one parameter")
        value = (type(params[0]), params[0])
        if self._spark is not None and self._variables.get(name) == value:
            return  # set to this value already (each step sets it again: two Spark jobs)
        self._spark_call(lambda: self.spark.sql(f"DECLARE OR REPLACE VARIABLE {name} STRING"))
        self._spark_call(lambda: self.spark.sql(f"SET VAR {name} = ?", args=[params[0]]))
        self._variables[name] = value

    # -- reading -----------------------------------------------------------------------------

    def _spark_query(self, tree: exp.Expr, params: list[Any]) -> Any:
        sql = self._for_spark(tree)
        return self._spark_call(lambda: self.spark.sql(sql, args=_args(params) or None))

    def _for_spark(self, tree: exp.Expr) -> str:
        """The statement in Spark SQL, every table it names renamed to its Spark view."""
        tree = tree.copy()
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        for node in list(tree.find_all(exp.Table)):
            if not node.name or isinstance(node.this, exp.Func):
                continue
            if self._spark_temp(node):
                node.set("db", None)
                continue
            if not node.db and (node.name in ctes or node.name in self._registered):
                if node.name in self._registered:
                    self._registered_view(node.name)
                continue
            view = self._view_of(node.db or "main", node.name)
            if node.args.get("alias") is None:  # `t.column` still names it
                node.set("alias", exp.TableAlias(this=exp.to_identifier(node.name)))
            node.set("this", exp.to_identifier(view))
            node.set("db", None)
            node.set("catalog", None)
        return to_spark(tree)

    def _view_of(self, schema: str, name: str) -> str:
        """The Spark view of a table: the lake's files, or a copy of the journal's rows."""
        view = f"{schema}__{name}"
        if schema in LAKE_SCHEMAS:
            made = self._view_made(schema, name)
            if made is not None:  # made again over the tables it reads as they are now
                self._spark_view(made, only_if_running=False)
                return view
            if (schema, name) not in self._fresh:
                if not self.journal.table_exists(schema, name):
                    raise WarehouseError(f"no table {schema}.{name} in the lake {self.path}")
                self._table_frame(schema, name).createOrReplaceTempView(view)
                self._fresh.add((schema, name))
            return view
        # A journal table (or a temporary one): its rows now, inside the open transaction.
        rows = self.journal.query_arrow(f"SELECT * FROM {_qualified(schema, name)}")
        self._frame_of_arrow(rows).createOrReplaceTempView(view)
        return view

    def _table_frame(self, schema: str, name: str) -> Any:
        columns = self.columns(schema, name)
        ddl = ", ".join(f"`{c}` {spark_type(t)}" for c, t in columns)
        files = manifest.table_files(self.journal, schema, name)
        reader = self.spark.read.schema(ddl)
        staged: dict[Path, list[str]] = {}
        committed: list[str] = []
        for _, relative, _ in files:
            where = self.lake.where(self._pending, relative)
            if where == self.lake.root / relative:
                committed.append(str(where))
            else:
                base = where.parent.parent if _partitioned(columns) else where.parent
                staged.setdefault(base, []).append(str(where))
        frames = []
        if committed:
            home = str(self.lake.table_dir(schema, name))
            frames.append(reader.option("basePath", home).parquet(*committed))
        frames += [reader.option("basePath", str(b)).parquet(*f) for b, f in staged.items()]
        if not frames:
            return self.spark.createDataFrame([], ddl)
        from pyspark.sql import functions as F

        # A UUID column is text in Parquet and Spark: tagged, so that rows read from it come
        # back as UUIDs, as from DuckDB and PostgreSQL (`query`).
        names = [
            F.col(f"`{c}`").alias(c, metadata={TYPE_TAG: "UUID"})
            if t == "UUID" else F.col(f"`{c}`")
            for c, t in columns
        ]  # fmt: skip
        frame = frames[0].select(*names)
        for other in frames[1:]:
            frame = frame.unionByName(other.select(*names))
        return frame

    def _frame_of_arrow(self, data: pa.Table) -> Any:
        """A Spark frame of Arrow rows (written as a Parquet file Spark reads)."""
        path = self._scratch / f"{next(_names)}.parquet"
        pq.write_table(as_spark_reads(data), path)
        return self.spark.read.parquet(str(path))

    def _registered_view(self, name: str) -> None:
        if name not in self._in_spark:
            self._frame_of_arrow(self._registered[name]).createOrReplaceTempView(name)
            self._in_spark.add(name)

    def _collect(self, frame: Any) -> pa.Table:
        table = as_duckdb_gives(self._spark_call(frame.toArrow))
        tagged = {f.name for f in frame.schema.fields if (f.metadata or {}).get(TYPE_TAG)}
        if not tagged:
            return table
        fields = [
            f.with_metadata({TYPE_TAG: "UUID"}) if f.name in tagged else f for f in table.schema
        ]
        return table.cast(pa.schema(fields))

    def _spark_call(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as error:
            if type(error).__module__.startswith(("pyspark", "py4j")):
                raise WarehouseError(_one_line(error)) from None
            raise

    # -- writing -----------------------------------------------------------------------------

    def columns(self, schema: str, name: str) -> list[tuple[str, str]]:
        """(column, DuckDB type) of a lake table, from the catalog."""
        key = (schema, name)
        if key not in self._columns:
            rows = self.journal.query(self.sql.column_types(), [schema, name])
            self._columns[key] = [(str(c), str(t)) for c, t in rows]
        return self._columns[key]

    def _spark_view(self, tree: exp.Create, only_if_running: bool = True) -> None:
        """The view as Spark's (`schema__name`) over the tables it reads as they are now. With
        `only_if_running`, only when Spark runs (a statement that reads it makes it: `_view_of`)."""
        table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if only_if_running and self._spark is None:
            return
        body = self._for_spark(tree.expression)
        view = f"{table.db}__{table.name}"
        self._spark_call(lambda: self.spark.sql(f"CREATE OR REPLACE TEMP VIEW {view} AS {body}"))

    def _view_made(self, schema: str, name: str) -> exp.Create | None:
        """The statement that made `schema.name` when it is a view (the catalog's), else None.
        Spark reads a view as its statement over the tables' files now: a view of the files
        at one moment would miss what is written after it."""
        key = (schema, name)
        if key not in self._views:
            rows = self.journal.query(
                "SELECT sql FROM duckdb_views() WHERE NOT internal "
                "AND database_name = current_database() AND schema_name = ? AND view_name = ?",
                [schema, name],
            )
            tree = parse(str(rows[0][0]))[0] if rows else None
            if tree is not None:  # DuckDB keeps `count(*)` as count_star()
                tree = tree.transform(count_star_as_count)
            self._views[key] = tree if isinstance(tree, exp.Create) else None
        return self._views[key]

    # -- the Warehouse interface ---------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self._lock:
            self._run(sql, params)

    def insert(self, sql: str, params: Sequence[Any] | None = None) -> int:
        with self._lock:
            return self._run(sql, params)[1]

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        data = self.query_arrow(sql, params)
        columns = [
            [None if v is None else uuid.UUID(v) for v in c.to_pylist()]
            if (f.metadata or {}).get(TYPE_TAG.encode()) else c.to_pylist()
            for f, c in zip(data.schema, data.columns, strict=True)
        ]  # fmt: skip
        return list(zip(*columns, strict=True)) if columns else []

    def query_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        with self._lock:
            rows, _ = self._run(sql, params)
            return rows if rows is not None else pa.table({})

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._pending is not None or self.read_only:
                yield
                return
            pending = Pending(uuid.uuid4().hex[:12])
            self._pending = pending
            try:
                with self.journal.transaction():
                    yield
                    if pending.moves:
                        self.lake.move_into_place(pending)
                        crash_point("lake_renamed")  # renamed, the journal not committed
            except BaseException:
                self._pending = None
                self._fresh.clear()
                for name in pending.temps & self._temps:
                    self._temps.discard(name)
                    self._copies.changed(name, None)
                    with contextlib.suppress(Exception):
                        self.spark.catalog.dropTempView(name)
                with contextlib.suppress(OSError):
                    self.lake.undo(pending)
                raise
            self._pending = None
            self._fresh.clear()
            self.lake.generation += 1
            self.lake.finish(pending)

    @contextmanager
    def registered(self, name: str, data: pa.Table, release: bool = False) -> Iterator[str]:
        """Readable by name on both sides: the journal scans the Arrow table; Spark, when a
        statement of it names it, a Parquet copy."""
        with self._lock, self.journal.registered(name, data, release) as quoted:
            self._registered[name] = data
            try:
                yield quoted
            finally:
                self._registered.pop(name, None)
                if name in self._in_spark:
                    self._in_spark.discard(name)
                    with contextlib.suppress(Exception):
                        self.spark.catalog.dropTempView(name)

    def insert_arrow(self, schema: str, name: str, data: pa.Table) -> int:
        if schema not in LAKE_SCHEMAS:
            return self.journal.insert_arrow(schema, name, data)
        with self._lock:
            return self._write(schema, name, self._frame_of_arrow(data), data.column_names)

    def insert_files(self, schema: str, name: str, paths: Sequence[Path], fmt: str) -> int:
        if schema not in LAKE_SCHEMAS:
            return self.journal.insert_files(schema, name, paths, fmt)
        if fmt not in ("parquet", "ndjson"):
            raise WarehouseError(f"cannot bulk-load files of format {fmt!r}")
        with self._lock:
            reader = self.spark.read
            files = [str(p) for p in paths]
            frame = reader.parquet(*files) if fmt == "parquet" else reader.json(files)
            return self._write(schema, name, frame, list(frame.columns))

    def table_exists(self, schema: str, name: str) -> bool:
        return self.journal.table_exists(schema, name)

    def close(self) -> None:
        with self._lock:
            self.journal.close()
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._spark = None  # the process's Spark stays up for the next warehouse


def _schema_of(tree: exp.Expr) -> str:
    if isinstance(tree, exp.Drop):
        return next((t.db for t in _dropped(tree)), "")
    target = tree.this
    if isinstance(target, exp.Schema):
        target = target.this
    return target.db if isinstance(target, exp.Table) else ""


def _one_line(error: Exception) -> str:
    text = getattr(error, "getMessage", lambda: str(error))() or str(error)
    first = str(text).strip().splitlines()[0] if str(text).strip() else type(error).__name__
    return first.replace("__", ".") if "__" in first else first
