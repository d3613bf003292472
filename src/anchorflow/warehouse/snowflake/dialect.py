"""Snowflake's dialect: the steps' canonical SQL transpiled by sqlglot, every identifier quoted
(Snowflake folds unquoted names to upper case; quoted, they keep the project's case), and the
constructs sqlglot does not translate exactly: JSON as VARIANT (`PARSE_JSON`, `GET`,
`GET_PATH`), `TRY_CAST` of text, an exploded array as `LATERAL FLATTEN`, the PII hash
(`SHA2`), session variables (`$name`), table functions (`RETURNS TABLE`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp
from sqlglot.dialects.snowflake import Snowflake
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
# The staged files COPY reads: NDJSON, plain or compressed.
PATTERN = exp.Literal.string(r".*[.](json|ndjson|jsonl)([.]gz|[.]zst)?").sql("snowflake")


def _path(keys: Sequence[str]) -> str:
    """A GET_PATH path of quoted keys (`"a"."b"`), as a Snowflake string literal."""
    return exp.Literal.string(".".join(f'"{k}"' for k in keys)).sql("snowflake")


def _arg(self: Generator, expression: exp.Anonymous, index: int = 0) -> str:
    return str(self.sql(expression.expressions[index]))


def _field(self: Generator, e: exp.Anonymous) -> str:
    key, how = literal_args(e)
    got = f"GET({_arg(self, e)}, {exp.Literal.string(key).sql('snowflake')})"
    return got if how == "JSON" else f"CAST({got} AS VARCHAR)"


def _text(self: Generator, e: exp.Anonymous) -> str:
    keys = literal_args(e)
    value = f"GET_PATH({_arg(self, e)}, {_path(keys)})" if keys else _arg(self, e)
    return f"CAST({value} AS VARCHAR)"  # a string without its quotes, JSON null as NULL


def _finite(self: Generator, e: exp.Anonymous) -> str:
    # NaN compares greater than every number on Snowflake: outside the range, as infinities
    return f"({_arg(self, e)} BETWEEN -{LARGEST_DOUBLE} AND {LARGEST_DOUBLE})"


NATIVES = {
    # 'd': a key twice in an object keeps its last value, where strict parsing fails the load
    "af_parse": lambda self, e: f"PARSE_JSON({_arg(self, e)}, 'd')",
    "af_field": _field,
    "af_text": _text,
    "af_json": lambda self, e: f"GET_PATH({_arg(self, e)}, {_path(literal_args(e))})",
    "af_json_type": lambda self, e: (
        f"DECODE(TYPEOF({_arg(self, e)}), 'NULL_VALUE', 'NULL', TYPEOF({_arg(self, e)}))"
    ),
    "af_json_valid": lambda self, e: f"(TRY_PARSE_JSON({_arg(self, e)}, 'd') IS NOT NULL)",
    "af_json_elements": lambda self, e: _arg(self, e),
    "af_json_null_list": lambda self, e: "PARSE_JSON('[null]')",
    "af_is_finite": _finite,
    "af_is_whole": lambda self, e: f"({_arg(self, e)} = FLOOR({_arg(self, e)}))",
    "af_sha256": lambda self, e: f"SHA2({_arg(self, e)}, 256)",
    "af_variable": lambda self, e: f"${literal_args(e)[0]}",
}


def _try_cast(self: Generator, expression: exp.TryCast) -> str:
    """TRY_CAST takes text only on Snowflake: a value converted from a timestamp (the UTC
    wall time of a parsed offset) is a plain CAST, which cannot fail."""
    target = self.sql(expression, "to")
    inner = expression.this
    if expression.args["to"].is_type(exp.DataType.Type.UUID):  # no UUID type: its text
        pattern = exp.Literal.string(UUID_PATTERN).sql("snowflake")
        value = self.sql(inner)
        return f"CASE WHEN REGEXP_LIKE({value}, {pattern}) THEN LOWER({value}) END"
    if isinstance(inner, exp.AtTimeZone | exp.ConvertTimezone):
        return f"CAST({self.sql(inner)} AS {target})"
    return f"TRY_CAST({self.sql(inner)} AS {target})"


class AnchorflowSnowflake(Snowflake):
    class Generator(Snowflake.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS = {  # noqa: RUF012
            **Snowflake.Generator.TRANSFORMS,
            exp.Anonymous: anonymous_sql(NATIVES),
            exp.TryCast: _try_cast,
        }
        TYPE_MAPPING = {  # noqa: RUF012
            **Snowflake.Generator.TYPE_MAPPING,
            exp.DataType.Type.UUID: "VARCHAR",
        }


def _flatten(select: exp.Select, items: exp.Expr, position: str) -> None:
    """One row per element: `LATERAL FLATTEN` (no row for a missing array, as DuckDB's
    unnest), its VALUE as the element and its INDEX as the position."""
    array = items.sql(dialect=AnchorflowSnowflake, identify=True)
    select.append("expressions", exp.alias_(exp.Var(this='"__f"."VALUE"'), "__e"))
    select.append(
        "expressions",
        exp.alias_(exp.Var(this='CAST("__f"."INDEX" AS INT)'), exp.to_identifier(position)),
    )
    select.append(
        "joins", exp.Join(this=exp.Var(this=f'LATERAL FLATTEN(INPUT => {array}) AS "__f"'))
    )


class SnowflakeDialect(SqlOnlyDialect):
    name = "snowflake"
    sqlglot_dialect = AnchorflowSnowflake
    landing_columns = {"origin": "VARCHAR", "line_no": "BIGINT", "record": "VARCHAR"}  # noqa: RUF012

    def landed_at(self, location: str) -> tuple[str, str]:
        """The origin and line number of a landing row (the staged file, its line)."""
        return "l.origin", "l.line_no"

    def __init__(self, function_columns: dict[str, list[tuple[str, str]]] | None = None) -> None:
        # The columns of each table function's rows, by the (canonical) view they match:
        # Snowflake's RETURNS TABLE names them.
        self.function_columns = function_columns or {}

    def prepare(self, tree: exp.Expr) -> exp.Expr:
        return exploded(super().prepare(tree), _flatten)

    def table_function(
        self, name: str, params: Sequence[tuple[str, str]], body: str, rows_like: str
    ) -> str:
        columns = ", ".join(
            f"{self.transpile(f'SELECT {c}')[len('SELECT ') :]} {self.sql_type(t)}"
            for c, t in self.function_columns[rows_like]
        )
        args = ", ".join(f'"{p}" {self.sql_type(t)}' for p, t in params)  # as the body reads it
        target = self.table_name(name)
        return (
            f"{NATIVE}CREATE OR REPLACE FUNCTION {target}({args}) RETURNS TABLE ({columns}) "
            f"AS $$ {self.transpile(body)} $$"
        )

    def copy_raw(self, landing: str, location: str) -> str:
        # One column per line, as it was: no field delimiter, no quoting, no escapes.
        target = self.table_name(landing)
        stage = f"@ANCHORFLOW_STAGE/{location}/"
        return (
            f'{NATIVE}COPY INTO {target} ("origin", "line_no", "record") FROM '
            f"(SELECT METADATA$FILENAME, METADATA$FILE_ROW_NUMBER, $1 FROM {stage}) "
            "FILE_FORMAT = (TYPE = CSV FIELD_DELIMITER = NONE RECORD_DELIMITER = '\\n' "
            "ESCAPE = NONE ESCAPE_UNENCLOSED_FIELD = NONE FIELD_OPTIONALLY_ENCLOSED_BY = NONE "
            f"COMPRESSION = AUTO) PATTERN = {PATTERN}"
        )
