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

import json
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark
from sqlglot.generator import Generator

from anchorflow.errors import WarehouseError
from anchorflow.warehouse.dialect import Dialect, whole_match


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


def variant_path(duckdb_path: str) -> str:
    """A JSONPath of quoted keys (`$."a"."b"`, see `dialect.json_path`) as Spark's variant
    path (`$["a"]["b"]`)."""
    keys = re.findall(r'\."((?:[^"]|"")*)"', duckdb_path)
    return "$" + "".join("[" + json.dumps(k) + "]" for k in keys)


def _path(keys: Sequence[str]) -> str:
    return exp.Literal.string("$" + "".join("[" + json.dumps(k) + "]" for k in keys)).sql("spark")


def _variant(json_text: str) -> str:
    return f"try_parse_json({json_text})"


def _literals(node: exp.Expr) -> list[str] | None:
    """The strings of a literal list (`CAST([...] AS VARCHAR[])` or `[...]`), or None."""
    while isinstance(node, exp.Cast):
        node = node.this
    if isinstance(node, exp.Array) and all(isinstance(x, exp.Literal) for x in node.expressions):
        return [str(x.this) for x in node.expressions]
    return None


def _keys_of(e: exp.Anonymous, start: int) -> list[str]:
    return [str(a.this) for a in e.expressions[start:] if isinstance(a, exp.Literal)]


def _af(self: Generator, name: str, e: exp.Anonymous, args: list[str]) -> str | None:
    """anchorflow's own functions (SparkDialect's fragments) in Spark SQL."""
    if name == "af_parse":
        return _variant(args[0])
    if name == "af_field":
        key, how = _keys_of(e, 1)
        got = f"try_variant_get({args[0]}, {_path([key])}, 'variant')"
        return (
            f"to_json({got})"
            if how == "JSON"
            else f"try_variant_get({args[0]}, {_path([key])}, 'string')"
        )
    if name == "af_text":
        return f"try_variant_get({_variant(args[0])}, {_path(_keys_of(e, 1))}, 'string')"
    if name == "af_json":
        return f"to_json(try_variant_get({_variant(args[0])}, {_path(_keys_of(e, 1))}, 'variant'))"
    if name == "af_elements":
        return f"transform(try_cast({_variant(args[0])} AS ARRAY<VARIANT>), af_e -> to_json(af_e))"
    if name == "af_null_list":
        return "array(CAST(NULL AS STRING))"
    if name == "af_hash":
        return f"(xxhash64({', '.join(args)}) & 9223372036854775807)"
    if name == "af_keys":
        return f"json_object_keys({args[0]})"
    if name in ("af_types_at", "af_texts_at"):
        paths = _literals(e.expressions[1])
        if paths is None:
            raise WarehouseError("JSON paths on Spark must be a literal list")
        value = _variant(args[0])
        items = []
        for path in paths:
            got = f"try_variant_get({value}, {_string(variant_path(path))}, 'variant')"
            items.append(
                _JSON_TYPE.format(v=got)
                if name == "af_types_at"
                else f"try_variant_get({value}, {_string(variant_path(path))}, 'string')"
            )
        return f"array({', '.join(items)})" if items else "array()"
    if name == "af_object_keys":
        parents = _keys_of(e, 1)
        lists = [f"json_object_keys({args[0]})"] + [
            f"json_object_keys(to_json(try_variant_get({_variant(args[0])}, "
            f"{_path(p.split('.'))}, 'variant')))"
            for p in parents
        ]
        return f"array({', '.join(lists)})"
    if name == "af_field_paths":
        parents = _keys_of(e, 1)
        lists = [f"coalesce({args[0]}[0], array())"] + [
            f"transform(coalesce({args[0]}[{i}], array()), "
            f"af_k -> concat({_string(p + '.')}, af_k))"
            for i, p in enumerate(parents, start=1)
        ]
        return f"concat({', '.join(lists)})" if len(lists) > 1 else lists[0]
    if name == "af_size":
        return f"size({args[0]})"
    if name == "af_text_at":
        return f"get_json_object({args[0]}, {args[1]})"
    if name == "getvariable":
        return f"system.session.{_keys_of(e, 0)[0]}"
    return None


def _string(value: str) -> str:
    return exp.Literal.string(value).sql("spark")


def _anonymous(self: Generator, e: exp.Anonymous) -> str:
    name = e.name.lower()
    args = [self.sql(a) for a in e.expressions]
    if name.startswith("af_") or name == "getvariable":
        done = _af(self, name, e, args)
        if done is not None:
            return done
    if name == "json_valid" and len(args) == 1:
        return _valid(args[0])
    if name == "json_type" and len(args) == 1:
        return _JSON_TYPE.format(v=f"try_parse_json({args[0]})")
    if name == "isfinite" and len(args) == 1:
        x = args[0]
        return f"(NOT isnan({x}) AND abs({x}) <> double('Infinity'))"
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


def _epoch(self: Generator, e: exp.Extract) -> str:
    """DuckDB's `extract(epoch FROM ...)`: the seconds of a timestamp, or of the difference of
    two (Spark's interval has no epoch; its microseconds since 1970 do the same)."""
    part = e.this.name.upper() if isinstance(e.this, exp.Var | exp.Column) else ""
    if part != "EPOCH":
        return str(Spark.Generator.extract_sql(self, e))
    inner = e.expression
    if isinstance(inner, exp.Paren):
        inner = inner.unnest()
    if isinstance(inner, exp.Sub):
        left, right = self.sql(inner, "this"), self.sql(inner, "expression")
        micros = f"unix_micros(CAST({left} AS TIMESTAMP)) - unix_micros(CAST({right} AS TIMESTAMP))"
    else:
        micros = f"unix_micros(CAST({self.sql(inner)} AS TIMESTAMP))"
    return f"(({micros}) / 1000000)"


TRANSFORMS: dict[type[exp.Expr], Callable[..., str]] = {
    exp.Extract: _epoch,
    exp.SimilarTo: lambda self, e: whole_match(self, e, "RLIKE"),
    exp.Anonymous: _anonymous,
    exp.ArgMax: _pick,
    exp.ArgMin: _pick,
    exp.Placeholder: lambda self, e: "?",
    exp.Table: _table,
}
TRANSFORMS[exp.JSONType] = lambda self, e: _JSON_TYPE.format(v=_variant(self.sql(e, "this")))
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


def _lit(value: str) -> str:
    return exp.Literal.string(value).sql("duckdb")


class SparkDialect(Dialect):
    """The canonical spelling where sqlglot translates it (the journal runs it as written), and
    `af_*` functions that `to_spark` writes in Spark's SQL where it does not: JSON through
    Spark's VARIANT, the sampling hash. The `af_*` fragments only appear in statements that
    read the lake or a registered batch, which the adapter runs on Spark."""

    name = "spark"

    def parse_record(self, text: str, keys: dict[str, str]) -> str:
        return f"af_parse({text})"

    def record_field(self, parsed: str, key: str, how: str) -> str:
        return f"af_field({parsed}, {_lit(key)}, {_lit(how)})"

    def json_text(self, json: str, keys: Sequence[str] = ()) -> str:
        return f"af_text({', '.join([json, *(_lit(k) for k in keys)])})"

    def json_value(self, json: str, keys: Sequence[str]) -> str:
        return f"af_json({', '.join([json, *(_lit(k) for k in keys)])})"

    def json_keys(self, json: str) -> str:
        return f"af_keys({json})"

    def json_array_elements(self, json: str) -> str:
        return f"af_elements({json})"

    def json_null_list(self) -> str:
        return "af_null_list()"

    def sample_hash(self, *values: str) -> str:
        return f"af_hash({', '.join(values)})"

    def json_types_at(self, text: str, paths: str) -> str:
        return f"af_types_at({text}, {paths})"

    def json_texts_at(self, text: str, paths: str) -> str:
        return f"af_texts_at({text}, {paths})"

    def object_keys(self, text: str, parents: Sequence[str]) -> str:
        return f"af_object_keys({', '.join([text, *(_lit(p) for p in parents)])})"

    def field_paths(self, keys: str, parents: Sequence[str]) -> str:
        return f"af_field_paths({', '.join([keys, *(_lit(p) for p in parents)])})"

    def json_text_at(self, json: str, path: str) -> str:
        return f"af_text_at({json}, {path})"

    def list_length(self, values: str) -> str:
        return f"af_size({values})"

    def is_whole(self, number: str) -> str:
        return f"({number} = floor({number}))"

    def compressed(self, sql_type: str) -> str:
        return sql_type  # Parquet pages are compressed (snappy) by the writer

    def create_or_replace_table(self, name: str, select: str) -> str:
        return f"CREATE OR REPLACE TABLE {name} AS {select}"

    def reclaim_deleted(self) -> str | None:
        return None  # a deleted partition's files are deleted after the commit

    def asof_left_join(
        self, right: str, alias: str, on: str, left_time: str, keys: Sequence[str], time: str
    ) -> str:
        return self.ranged_left_join(right, alias, on, left_time, keys, time)

    def drop_table_macro(self, name: str, params: Sequence[tuple[str, str]]) -> str | None:
        return None

    def table_function(
        self, name: str, params: Sequence[tuple[str, str]], body: str, rows_like: str
    ) -> str | None:
        # Spark's SQL table functions live in a session, not in a catalog the lake keeps: the
        # as-of perspective is not made on Spark (the history view answers the same question).
        return None


def reads_only(sql: str) -> bool:
    """Whether the statements change nothing (a query, DESCRIBE, SHOW; SQL that does not
    parse changed nothing either)."""
    try:
        return all(isinstance(t, exp.Query | exp.Describe | exp.Show) for t in parse(sql))
    except WarehouseError:
        return True


def catalog_only(tree: exp.Expr) -> bool:
    """DDL that changes the catalog alone: CREATE TABLE with columns, a view, DROP, ALTER."""
    if isinstance(tree, exp.Drop | exp.Alter | exp.Comment | exp.Command):
        return True
    return isinstance(tree, exp.Create) and (tree.kind == "VIEW" or not tree.expression)


def count_star_as_count(node: exp.Expr) -> exp.Expr:
    """DuckDB's catalog spells `count(*)` as `count_star()` (a view read back from it)."""
    if isinstance(node, exp.Anonymous) and node.name.lower() == "count_star":
        return exp.Count(this=exp.Star())
    return node
