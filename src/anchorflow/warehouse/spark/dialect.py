"""Spark SQL's dialect: the steps' canonical (DuckDB-spelled) SQL transpiled by sqlglot's
`spark` dialect, with the constructs sqlglot leaves in DuckDB's spelling translated here.

The Spark adapter runs a statement on one of two engines: Spark, when it reads or writes a lake
table, and the journal store (embedded DuckDB) otherwise. So `SparkDialect`'s fragments stay in
the canonical spelling, which runs as written on the journal, and `to_spark` turns them into
Spark's when the statement goes to Spark: JSON validity and types through Spark 4's VARIANT
(`try_parse_json`, `schema_of_variant`), `arg_max` as `max_by` over non-NULL values,
`list_contains` as `array_contains`, DuckDB's `range(n)` as Spark's (`id` column).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark
from sqlglot.generator import Generator

from anchorflow.errors import WarehouseError
from anchorflow.warehouse.dialect import Dialect


def _valid(text: str) -> str:
    return f"(CASE WHEN {text} IS NULL THEN NULL ELSE try_parse_json({text}) IS NOT NULL END)"


def _json_valid(self: Generator, e: exp.Expr) -> str:
    return _valid(self.sql(e, "this"))


# DuckDB's json_type names, from Spark's variant type names.
_JSON_TYPE = (
    "CASE WHEN {v} IS NULL THEN NULL WHEN is_variant_null({v}) THEN 'NULL' ELSE "
    "CASE upper(regexp_replace(schema_of_variant({v}), '[<(].*$', '')) "
    "WHEN 'OBJECT' THEN 'OBJECT' WHEN 'ARRAY' THEN 'ARRAY' WHEN 'STRING' THEN 'VARCHAR' "
    "WHEN 'BOOLEAN' THEN 'BOOLEAN' WHEN 'BIGINT' THEN 'BIGINT' WHEN 'DOUBLE' THEN 'DOUBLE' "
    "WHEN 'DECIMAL' THEN 'DOUBLE' ELSE 'VARCHAR' END END"
)


def _anonymous(self: Generator, e: exp.Anonymous) -> str:
    name = e.name.lower()
    args = [self.sql(a) for a in e.expressions]
    if name == "json_valid" and len(args) == 1:
        return _valid(args[0])
    if name == "json_type" and len(args) == 1:
        return _JSON_TYPE.format(v=f"try_parse_json({args[0]})")
    if name == "len" and len(args) == 1:
        return f"size({args[0]})"
    return str(Spark.Generator.anonymous_sql(self, e))


def _pick(self: Generator, e: exp.ArgMax | exp.ArgMin) -> str:
    """DuckDB's arg_max/arg_min: rows where the value or the order is NULL are skipped."""
    value, order = self.sql(e, "this"), self.sql(e, "expression")
    name = "max_by" if isinstance(e, exp.ArgMax) else "min_by"
    return f"{name}({value}, CASE WHEN {value} IS NOT NULL THEN {order} END)"


def _table(self: Generator, e: exp.Table, sep: str = " AS ") -> str:
    """DuckDB's `range(a, b)` and `generate_series(a, b)` tables as Spark's `range`."""
    series = e.this
    if not isinstance(series, exp.GenerateSeries):
        return str(Spark.Generator.table_sql(self, e, sep))
    start, end = self.sql(series, "start"), self.sql(series, "end")
    if not series.args.get("is_end_exclusive"):
        end = f"{end} + 1"
    step = f", {self.sql(series, 'step')}" if series.args.get("step") else ""
    alias = self.sql(e, "alias")
    return f"range({start}, {end}{step})" + (f" AS {alias}" if alias else "")


TRANSFORMS: dict[type[exp.Expr], Callable[..., str]] = {
    exp.Anonymous: _anonymous,
    exp.ArgMax: _pick,
    exp.ArgMin: _pick,
    exp.Placeholder: lambda self, e: "?",
    exp.Table: _table,
}
if hasattr(exp, "JSONValid"):
    TRANSFORMS[exp.JSONValid] = _json_valid


class AnchorflowSpark(Spark):
    class Generator(Spark.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS = {**Spark.Generator.TRANSFORMS, **TRANSFORMS}  # noqa: RUF012


def to_spark(tree: exp.Expr) -> str:
    """A parsed canonical statement (its tables already renamed for Spark) in Spark's SQL."""
    try:
        return tree.sql(dialect=AnchorflowSpark)
    except sqlglot.errors.SqlglotError as error:
        raise WarehouseError(f"cannot translate SQL for Spark: {error}") from None


@lru_cache(maxsize=4096)
def parse(sql: str) -> tuple[exp.Expr, ...]:
    """Canonical SQL parsed (cached: the steps run the same statements for every load)."""
    try:
        return tuple(t for t in sqlglot.parse(sql, read="duckdb") if t is not None)
    except sqlglot.errors.ParseError as error:
        raise WarehouseError(f"cannot translate SQL for Spark: {error}") from None


def spark_type(duckdb_type: str) -> str:
    """A catalog column type (DuckDB's name) as Spark's."""
    built = exp.DataType.build(duckdb_type, dialect="duckdb")
    if built.is_type(exp.DataType.Type.JSON):
        return "STRING"
    return built.sql(dialect=AnchorflowSpark)


class SparkDialect(Dialect):
    """The canonical spelling (the journal runs it; `to_spark` translates it for Spark), but
    where a construct has no translation."""

    name = "spark"

    def compressed(self, sql_type: str) -> str:
        return sql_type  # Parquet pages are compressed (snappy) by the writer

    def create_or_replace_table(self, name: str, select: str) -> str:
        return f"CREATE OR REPLACE TABLE {name} AS {select}"

    def reclaim_deleted(self) -> str | None:
        return None  # a deleted partition's files are deleted after the commit
