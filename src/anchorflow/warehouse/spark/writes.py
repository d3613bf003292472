"""The Spark adapter's writes to the lake: INSERT, CREATE ... AS, DELETE and UPDATE of lake
tables and of Spark's temporary tables, inside the adapter's transactions (adapter.py).

The lake's files never change: a write adds files under the transaction's staging directory and
to the manifest; a DELETE of whole loads takes their partitions out of the manifest; a DELETE by
another condition, and an UPDATE, compute the table's rows anew and write them in place of its
files. Every change becomes visible with the journal's commit."""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from anchorflow.errors import WarehouseError
from anchorflow.journal import lake as manifest
from anchorflow.warehouse.base import ident
from anchorflow.warehouse.spark import offload
from anchorflow.warehouse.spark.dialect import spark_type
from anchorflow.warehouse.spark.lake import PARTITION, LakeFile
from anchorflow.warehouse.spark.offload import scan_filter, to_journal, translatable

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from anchorflow.warehouse.duckdb import DuckDBWarehouse
    from anchorflow.warehouse.spark.lake import Lake, Pending
    from anchorflow.warehouse.spark.offload import TempCopies

LAKE_SCHEMAS = frozenset({"raw", "staging", "anchor", "marts", "fraud"})
_names = itertools.count(1)


class LakeWrites:
    """The write statements of `SparkWarehouse` (a mixin: its methods are the adapter's)."""

    if TYPE_CHECKING:  # what they use of the adapter
        journal: DuckDBWarehouse
        lake: Lake
        path: str
        _spark: Any
        _pending: Pending | None
        _columns: dict[tuple[str, str], list[tuple[str, str]]]
        _tables: dict[tuple[str, str], bool]
        _fresh: set[tuple[str, str]]
        _temps: set[str]
        _copies: TempCopies

        @property
        def spark(self) -> Any: ...
        def transaction(self) -> AbstractContextManager[None]: ...
        def columns(self, schema: str, name: str) -> list[tuple[str, str]]: ...
        def _collect(self, frame: Any) -> pa.Table: ...
        def _for_spark(self, tree: exp.Expr) -> str: ...
        def _spark_call(self, call: Callable[[], Any]) -> Any: ...
        def _spark_query(self, tree: exp.Expr, params: list[Any]) -> Any: ...
        def _spark_temp(self, t: exp.Table) -> bool: ...
        def _view_of(self, schema: str, name: str) -> str: ...

    def _insert(self, tree: exp.Insert, params: list[Any]) -> int:
        target = tree.this
        named = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else None
        table = target.this if isinstance(target, exp.Schema) else target
        source = tree.expression
        if isinstance(source, exp.Values):
            source = exp.select("*").from_(source.copy())
        if table.db not in LAKE_SCHEMAS:  # a journal table, of rows Spark reads
            offloaded = self._offload(tree, params)
            if offloaded is not None:
                return offloaded
            rows = self._collect(self._spark_query(source, params))
            with self.journal.registered(f"__spark_rows_{next(_names)}", rows) as view:
                listed = f" ({', '.join(ident(c) for c in named)})" if named else ""
                return self.journal.insert(
                    f"INSERT INTO {_qualified(table.db, table.name)}{listed} SELECT * FROM {view}"
                )
        frame = self._spark_query(source, params)
        return self._write(table.db, table.name, frame, named)

    def _write(self, schema: str, name: str, frame: Any, named: list[str] | None) -> int:
        from pyspark.sql import functions as F

        columns = self.columns(schema, name)
        if not columns:
            raise WarehouseError(f"no table {schema}.{name} in the lake {self.path}")
        given = named or [c for c, _ in columns][: len(frame.columns)]
        if len(given) != len(frame.columns):
            raise WarehouseError(f"{schema}.{name}: {len(frame.columns)} values for {len(given)}")
        # By position: a query's columns may share a name (`a.value, b.value`).
        frame = frame.toDF(*[f"__c{i}" for i in range(len(given))])
        by_name = {c: f"__c{i}" for i, c in enumerate(given)}
        shaped = frame.select(*[
            (F.col(by_name[c]) if c in by_name else F.lit(None)).cast(spark_type(t)).alias(c)
            for c, t in columns
        ])  # fmt: skip
        with self.transaction():
            assert self._pending is not None
            staged = self.lake.staging_dir(self._pending)
            partitioned = _partitioned(columns)
            if partitioned:
                writer = shaped.repartition(F.col(PARTITION)).write.partitionBy(PARTITION)
            else:
                writer = shaped.coalesce(1).write
            self._spark_call(lambda: writer.parquet(str(staged)))
            files = self.lake.adopt(self._pending, staged, schema, name, partitioned)
            manifest.add_files(self.journal, schema, name, [_row(f) for f in files])
            self._fresh.discard((schema, name))
        return sum(f.rows for f in files)

    def _temp_rows(self, name: str, condition: exp.Expr | None = None) -> pa.Table | None:
        """The temporary table's rows (those passing `condition`: None when over MAX_ROWS)."""
        frame = self.spark.table(name)
        if condition is not None:
            frame = frame.filter(self._for_spark(condition))
            if int(self._spark_call(frame.count)) > offload.MAX_ROWS:
                return None
        return self._collect(frame)

    def _offload(self, tree: exp.Insert, params: list[Any]) -> int | None:
        """An INSERT into a journal table of rows from Spark's temporary tables only (small
        ones, or scans of a large one that few rows pass), run by the journal over their
        Arrow copies (`offload`); None: Spark runs it."""
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        read = [t for t in tree.find_all(exp.Table) if t is not target]
        temps = {t.name for t in read if self._spark_temp(t)}
        if not temps or any(t.db in LAKE_SCHEMAS for t in read) or not translatable(tree):
            return None
        copies: dict[str, pa.Table] = {}
        for name in sorted(temps):
            small = self._copies.small(name)
            condition = None if small else scan_filter(tree, name)
            if not small and condition is None:
                return None
            fetch = functools.partial(self._temp_rows, name, condition)
            data = self._copies.copy(name, fetch, "" if condition is None else condition.sql())
            if data is None:
                return None
            copies[name] = data
        with contextlib.ExitStack() as stack:
            for name, data in copies.items():
                stack.enter_context(self.journal.registered(name, data))
            return self.journal.insert(to_journal(tree, temps), params)

    def _create_temp(self, tree: exp.Create, params: list[Any]) -> int:
        """CREATE TEMP TABLE ... AS a query of lake tables: its rows computed now and kept by
        Spark (a checkpoint), for the statements of this connection that name it."""
        table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if table.name in self._temps and not tree.args.get("replace"):
            if tree.args.get("exists"):
                return 0
            raise WarehouseError(f"the temporary table {table.name} exists already")
        query = self._spark_query(tree.expression, params)
        frame = self._spark_call(query.localCheckpoint)
        frame.createOrReplaceTempView(table.name)
        self._temps.add(table.name)
        if self._pending is not None:  # gone with a rollback, as on DuckDB
            self._pending.temps.add(table.name)
        rows = int(self._spark_call(frame.count))
        self._copies.changed(table.name, rows)
        return rows

    def _create_as(self, tree: exp.Create, params: list[Any]) -> int:
        """CREATE [OR REPLACE] TABLE ... AS SELECT: the catalog's table from the rows' columns,
        the rows written as the table's files (those of the table it replaces leave)."""
        table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        schema, name = table.db, table.name
        frame = self._spark_query(tree.expression, params)
        types = [(f.name, _duckdb_type(f.dataType.simpleString())) for f in frame.schema.fields]
        with self.transaction():
            exists = self.journal.table_exists(schema, name)
            if exists and not tree.args.get("replace"):
                if tree.args.get("exists"):
                    return 0
                raise WarehouseError(f"the table {schema}.{name} exists already")
            self._drop_files(schema, name, None)
            listed = ", ".join(f"{ident(c)} {t}" for c, t in types)
            self.journal.execute(f"DROP TABLE IF EXISTS {_qualified(schema, name)}")
            self.journal.execute(f"CREATE TABLE {_qualified(schema, name)} ({listed})")
            self._columns.pop((schema, name), None)
            self._tables.pop((schema, name), None)
            return self._write(schema, name, frame, [c for c, _ in types])

    def _delete(self, tree: exp.Delete, params: list[Any]) -> int:
        table = tree.this
        if tree.args.get("using") or not isinstance(table, exp.Table):
            raise WarehouseError("DELETE ... USING of a lake table: not on the Spark engine yet")
        where = tree.args.get("where")
        alias = table.alias or table.name
        if self._spark_temp(table):
            return self._delete_temp(table.name, alias, where, params)
        schema, name = table.db, table.name
        if schema not in LAKE_SCHEMAS:  # the journal's rows stay the journal's
            raise WarehouseError(f"DELETE from {schema}.{name} by lake rows: not on Spark")
        partitions = sorted({f[0] for f in manifest.table_files(self.journal, schema, name)
                             if f[0] is not None})  # fmt: skip
        with self.transaction():
            if where is None:
                return self._drop_files(schema, name, None)
            columns = {c.name for c in where.find_all(exp.Column)}
            if columns <= {PARTITION} and _partitioned(self.columns(schema, name)):
                # Whole partitions: which ones, asked of the journal (same SQL, same values).
                test = where.this.copy()
                for column in test.find_all(exp.Column):
                    column.set("table", None)
                chosen = self.journal.query(
                    f"SELECT {PARTITION} FROM (SELECT unnest(?::BIGINT[]) AS {PARTITION}) "
                    f"WHERE {test.sql('duckdb')}",
                    [partitions, *params],
                )
                return self._drop_files(schema, name, [int(r[0]) for r in chosen])
            return self._rewrite_without(schema, name, alias, where.this, params)

    def _update(self, tree: exp.Update, params: list[Any]) -> int:
        """UPDATE [... FROM one source] of a lake table or a temporary one, as a rewrite: its
        rows computed anew (a row that meets the condition takes the new values; with FROM,
        those of one source row that meets it, as DuckDB and PostgreSQL do), then written as
        the table's files in place of the old ones (a temporary table: kept by Spark)."""
        table, source = tree.this, tree.args.get("from_")
        if not isinstance(table, exp.Table):
            raise WarehouseError("UPDATE of a lake table: one table")
        if params:  # the rewrite orders the statement's parts anew
            raise WarehouseError("UPDATE of a lake table with parameters: not on Spark")
        alias, temp = table.alias or table.name, self._spark_temp(table)
        if not temp and table.db not in LAKE_SCHEMAS:  # the journal's rows stay the journal's
            raise WarehouseError(f"UPDATE of {table.db}.{table.name} from lake rows: not on Spark")
        view = table.name if temp else self._view_of(table.db, table.name)
        columns = (
            list(self.spark.table(view).columns) if temp
            else [c for c, _ in self.columns(table.db, table.name)]
        )  # fmt: skip
        sets = {eq.this.name: self._for_spark(eq.expression) for eq in tree.expressions}
        unknown = sorted(set(sets) - set(columns))
        if unknown:
            raise WarehouseError(f"UPDATE {table.name}: no column {', '.join(unknown)}")
        where = tree.args.get("where")
        condition = self._for_spark(where.this) if where is not None else "true"
        hit, row, rank = "__af_hit", "__af_row", "__af_rn"

        def shown(hit_test: str) -> str:
            return ", ".join(
                f"CASE WHEN {hit_test} THEN {sets[c]} ELSE {alias}.`{c}` END AS `{c}`"
                if c in sets else f"{alias}.`{c}`" for c in columns
            )  # fmt: skip

        listed = ", ".join(f"`{c}`" for c in columns)
        if source is None:
            sql = (
                f"SELECT {shown(hit)}, {hit} FROM (SELECT {alias}.*, coalesce({condition}, false) "
                f"AS {hit} FROM {view} AS {alias}) AS {alias}"
            )
        else:  # each row tagged, so that a row two source rows match is kept once
            src = source.this.copy()
            joins = [self._for_spark(j) for j in src.args.get("joins") or []]
            src.set("joins", None)
            src_alias = src.alias_or_name
            joined = " ".join([
                f"(SELECT {src_alias}.*, true AS {hit} FROM {self._for_spark(src)}) AS {src_alias}",
                *joins,
            ])  # fmt: skip
            tagged = f"__af_update_{next(_names)}"
            self._spark_call(lambda: self.spark.sql(
                f"SELECT *, monotonically_increasing_id() AS {row} FROM {view}"
            ).localCheckpoint()).createOrReplaceTempView(tagged)  # fmt: skip
            found = f"{src_alias}.{hit} IS NOT NULL"
            sql = (
                f"SELECT {listed}, {hit} FROM (SELECT {shown(found)}, {found} AS {hit}, "
                f"row_number() OVER (PARTITION BY {alias}.{row} ORDER BY {alias}.{row}) AS {rank} "
                f"FROM {tagged} AS {alias} LEFT JOIN ({joined}) ON {condition}) WHERE {rank} = 1"
            )
        frame = self._spark_call(lambda: self.spark.sql(sql).localCheckpoint())
        if source is not None:
            self._spark.catalog.dropTempView(tagged)
        count = int(self._spark_call(lambda: frame.where(hit).count()))
        if not count:
            return 0
        rows = frame.drop(hit)
        if temp:
            self._spark_call(rows.localCheckpoint).createOrReplaceTempView(table.name)
            self._copies.changed(table.name, None)
            return count
        with self.transaction():
            self._drop_files(table.db, table.name, None)
            self._write(table.db, table.name, rows, None)
        return count

    def _kept_rows(
        self, view: str, alias: str, condition: exp.Expr, params: list[Any]
    ) -> tuple[int, Any]:
        """How many rows of `view` meet the condition, and the others (computed now)."""
        test = self._for_spark(condition)
        args = _args(params) or None
        count = self._spark_call(lambda: self.spark.sql(
            f"SELECT count(*) FROM {view} AS {alias} WHERE {test}", args=args
        ).collect()[0][0])  # fmt: skip
        if not count:
            return 0, None
        kept = self._spark_call(lambda: self.spark.sql(
            f"SELECT {alias}.* FROM {view} AS {alias} WHERE NOT coalesce({test}, false)",
            args=args,
        ).localCheckpoint())  # fmt: skip
        return int(count), kept

    def _delete_temp(
        self, name: str, alias: str, where: exp.Where | None, params: list[Any]
    ) -> int:
        condition = where.this if where is not None else exp.true()
        count, kept = self._kept_rows(name, alias, condition, params)
        if count:
            kept.createOrReplaceTempView(name)
            self._copies.changed(name, None)
        return count

    def _rewrite_without(
        self,
        schema: str,
        name: str,
        alias: str,
        condition: exp.Expr,
        params: list[Any],
    ) -> int:
        """Delete rows by a condition on their columns: the table's rows that do not meet it
        written anew, and its old files dropped (a table without partitions, or an erasure)."""
        count, kept = self._kept_rows(self._view_of(schema, name), alias, condition, params)
        if count:
            self._drop_files(schema, name, None)
            self._write(schema, name, kept, None)
        return count

    def _drop_files(self, schema: str, name: str, load_ids: list[int] | None) -> int:
        assert self._pending is not None
        gone = manifest.drop_files(self.journal, schema, name, load_ids)
        for relative, _ in gone:
            if relative in self._pending.moves:
                self._pending.moves.pop(relative).unlink(missing_ok=True)
            else:
                self._pending.doomed.append(relative)
        self._fresh.discard((schema, name))
        return sum(rows for _, rows in gone)

    def _drop_lake_table(self, tree: exp.Drop) -> None:
        for table in _dropped(tree):
            if tree.kind == "TABLE":
                self._drop_files(table.db, table.name, None)
            if tree.kind == "VIEW" and self._spark is not None:
                self._spark.catalog.dropTempView(f"{table.db}__{table.name}")


def _dropped(tree: exp.Drop) -> list[exp.Table]:
    """The tables a DROP names (sqlglot keeps them in `tables`, or in `this`)."""
    tables = tree.args.get("tables") or [tree.this]
    return [t for t in tables if isinstance(t, exp.Table)]


def _partitioned(columns: Sequence[tuple[str, str]]) -> bool:
    return any(c == PARTITION for c, _ in columns)


def _qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}" if schema and schema != "main" else ident(name)


def _row(f: LakeFile) -> tuple[int | None, str, int]:
    return (f.load_id, f.path, f.rows)


def _args(params: list[Any]) -> list[Any]:
    from pyspark.sql import functions as F

    return [F.lit(list(p)) if isinstance(p, list | tuple) else p for p in params]


_DUCKDB_TYPES = {
    "string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "smallint": "SMALLINT",
    "tinyint": "TINYINT", "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN",
    "date": "DATE", "timestamp_ntz": "TIMESTAMP", "timestamp": "TIMESTAMPTZ", "binary": "BLOB",
    "void": "VARCHAR",
}  # fmt: skip


def _duckdb_type(spark: str) -> str:
    """A Spark column type (`simpleString`) as the catalog's (DuckDB's)."""
    if spark in _DUCKDB_TYPES:
        return _DUCKDB_TYPES[spark]
    if spark.startswith("array<") and spark.endswith(">"):
        return _duckdb_type(spark[6:-1]) + "[]"
    if spark.startswith("decimal"):
        return spark.upper()
    return "VARCHAR"
