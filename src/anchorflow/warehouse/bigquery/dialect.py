"""BigQuery's dialect: the steps' canonical SQL transpiled by sqlglot, every identifier quoted,
and the constructs sqlglot does not translate exactly: JSON (`PARSE_JSON`, `JSON_VALUE`,
`JSON_QUERY`; text of an object or array as its JSON), an exploded array as `UNNEST ... WITH
OFFSET`, `LEAST`/`GREATEST` that skip NULLs (as DuckDB's), the PII hash (`TO_HEX(SHA256())`),
variables as query parameters (`@name`), table functions (`CREATE TABLE FUNCTION`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.generator import Generator

from anchorflow.warehouse.compiled import (
    NATIVE,
    UUID_PATTERN,
    SqlOnlyDialect,
    anonymous_sql,
    exploded,
    literal_args,
)

LARGEST_DOUBLE = "1.7976931348623157e308"


def _path(keys: Sequence[str]) -> str:
    """A JSONPath of quoted keys (`$."a"."b"`), as a BigQuery string literal."""
    return exp.Literal.string("$" + "".join(f'."{k}"' for k in keys)).sql("bigquery")


def _arg(self: Generator, expression: exp.Anonymous, index: int = 0) -> str:
    return str(self.sql(expression.expressions[index]))


def _as_text(json: str, path: str) -> str:
    """The value at `path` as text: a string without its quotes, a number or boolean as
    written, an object or array as its JSON (as DuckDB's json_extract_string), JSON null as
    NULL."""
    return (
        f"CASE WHEN JSON_TYPE(JSON_QUERY({json}, {path})) IN ('object', 'array') "
        f"THEN TO_JSON_STRING(JSON_QUERY({json}, {path})) ELSE JSON_VALUE({json}, {path}) END"
    )


def _field(self: Generator, e: exp.Anonymous) -> str:
    key, how = literal_args(e)
    path = _path([key])
    if how == "JSON":
        return f"JSON_QUERY({_arg(self, e)}, {path})"
    return _as_text(_arg(self, e), path)


def _finite(self: Generator, e: exp.Anonymous) -> str:
    # comparisons with NaN are false on BigQuery: outside the range, as infinities
    return f"({_arg(self, e)} BETWEEN -{LARGEST_DOUBLE} AND {LARGEST_DOUBLE})"


NATIVES = {
    "af_parse": lambda self, e: f"PARSE_JSON({_arg(self, e)}, wide_number_mode => 'round')",
    "af_field": _field,
    "af_text": lambda self, e: _as_text(_arg(self, e), _path(literal_args(e))),
    "af_json": lambda self, e: f"JSON_QUERY({_arg(self, e)}, {_path(literal_args(e))})",
    "af_json_type": lambda self, e: f"UPPER(JSON_TYPE({_arg(self, e)}))",
    "af_json_valid": lambda self, e: f"(SAFE.PARSE_JSON({_arg(self, e)}) IS NOT NULL)",
    "af_json_elements": lambda self, e: f"JSON_QUERY_ARRAY({_arg(self, e)})",
    "af_json_null_list": lambda self, e: "[JSON 'null']",
    "af_is_finite": _finite,
    "af_is_whole": lambda self, e: f"({_arg(self, e)} = FLOOR({_arg(self, e)}))",
    "af_sha256": lambda self, e: f"TO_HEX(SHA256({_arg(self, e)}))",
    "af_variable": lambda self, e: f"@{literal_args(e)[0]}",
}


def _skipping_nulls(name: str) -> Callable[[Generator, exp.Least | exp.Greatest], str]:
    """LEAST/GREATEST of the values that are not NULL (NULL when all are), as DuckDB's: on
    BigQuery one NULL argument makes them NULL. Each argument is replaced by itself or, when
    NULL, by another one, so the result is the extreme of the non-NULL values."""

    def generate(self: Generator, expression: exp.Least | exp.Greatest) -> str:
        values = [self.sql(v) for v in [expression.this, *expression.expressions]]
        if len(values) == 1:
            return values[0]
        rotated = [f"COALESCE({', '.join(values[i:] + values[:i])})" for i in range(len(values))]
        return f"{name}({', '.join(rotated)})"

    return generate


def _try_cast(self: Generator, expression: exp.TryCast) -> str:
    inner = self.sql(expression.this)
    if expression.args["to"].is_type(exp.DataType.Type.UUID):  # no UUID type: its text
        pattern = exp.Literal.string(f"^{UUID_PATTERN}$").sql("bigquery")
        return f"CASE WHEN REGEXP_CONTAINS({inner}, {pattern}) THEN LOWER({inner}) END"
    return f"SAFE_CAST({inner} AS {self.sql(expression, 'to')})"


class AnchorflowBigQuery(BigQuery):
    class Generator(BigQuery.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS = {  # noqa: RUF012
            **BigQuery.Generator.TRANSFORMS,
            exp.Anonymous: anonymous_sql(NATIVES),
            exp.Least: _skipping_nulls("LEAST"),
            exp.Greatest: _skipping_nulls("GREATEST"),
            exp.TryCast: _try_cast,
        }


def _unnest(select: exp.Select, items: exp.Expr, position: str) -> None:
    """One row per element: `CROSS JOIN UNNEST(...) WITH OFFSET` (no row for a missing array,
    as DuckDB's unnest)."""
    array = items.sql(dialect=AnchorflowBigQuery, identify=True)
    select.append("expressions", exp.alias_(exp.Var(this="`__elem`"), "__e"))
    select.append(
        "expressions",
        exp.alias_(exp.Var(this="CAST(`__pos` AS INT64)"), exp.to_identifier(position)),
    )
    select.append(
        "joins",
        exp.Join(
            this=exp.Var(this=f"UNNEST({array}) AS `__elem` WITH OFFSET AS `__pos`"),
            kind="CROSS",
        ),
    )


class BigQueryDialect(SqlOnlyDialect):
    name = "bigquery"
    sqlglot_dialect = AnchorflowBigQuery
    landing_columns = {"record": "VARCHAR"}  # noqa: RUF012

    def landed_at(self, location: str) -> tuple[str, str]:
        """The origin and line number of a landing row: LOAD DATA keeps neither, so the
        stream's folder and a number in no particular order."""
        uri = exp.Literal.string(f"gs://ANCHORFLOW_BUCKET/{location}/").sql("duckdb")
        return uri, "row_number() OVER ()"

    def prepare(self, tree: exp.Expr) -> exp.Expr:
        tree = exploded(super().prepare(tree), _unnest)
        if isinstance(tree, exp.Delete) and not tree.args.get("where"):
            tree.set("where", exp.Where(this=exp.true()))  # BigQuery wants a WHERE
        return tree

    def table_function(
        self, name: str, params: Sequence[tuple[str, str]], body: str, rows_like: str
    ) -> str:
        args = ", ".join(f"`{p}` {self.sql_type(t)}" for p, t in params)  # as the body reads it
        target = self.table_name(name)
        return (
            f"{NATIVE}CREATE OR REPLACE TABLE FUNCTION {target}({args}) AS ({self.transpile(body)})"
        )

    def copy_raw(self, landing: str, location: str) -> str:
        # One column per line, as it was: a delimiter no JSON text holds unescaped (a control
        # character), no quoting. LOAD DATA names no file nor line: origin and line_no are
        # filled when the lines are landed (see README.txt).
        target = self.table_name(landing)
        uri = f"gs://ANCHORFLOW_BUCKET/{location}/*"
        return (
            f"{NATIVE}LOAD DATA INTO {target} (`record` STRING) FROM FILES (format = 'CSV', "
            f"field_delimiter = '\\x01', quote = '', allow_quoted_newlines = false, "
            f"uris = ['{uri}'])"
        )
