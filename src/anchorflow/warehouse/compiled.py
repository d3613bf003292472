"""What the engines anchorflow only writes SQL for (Snowflake, BigQuery) share: no adapter, a
dialect whose `transpile` turns the steps' canonical SQL into the engine's, every identifier
quoted (so the case the project wrote is the case the warehouse keeps).

The dialect methods return canonical fragments that call `af_*` pseudo-functions; the engine's
sqlglot generator writes each as the engine's own construct (`native_functions`). A construct
sqlglot cannot translate exactly is refused in one line (`CompileError`), never written
approximately.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.generator import Generator

from anchorflow.errors import AnchorflowError
from anchorflow.warehouse.dialect import Dialect

# A statement that starts with this marker is the engine's SQL already: written as it is.
NATIVE = "/*native*/"
ELEMENT = "__e"  # stage.sql's exploded element column


# A UUID as DuckDB's TRY_CAST reads it in its usual spelling (8-4-4-4-12 hex digits); the
# spellings DuckDB also reads (braces, no hyphens) are NULL on the compiled engines.
UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class CompileError(AnchorflowError):
    """A part of the project that has no SQL for the engine asked for."""


def lit(value: str) -> str:
    """A canonical string literal."""
    return exp.Literal.string(value).sql("duckdb")


def call(name: str, *args: str) -> str:
    return f"{name}({', '.join(args)})"


def checked_keys(keys: Sequence[str]) -> list[str]:
    for key in keys:
        if '"' in key or "\\" in key:
            raise CompileError(f"the JSON key {key!r} holds a quote or backslash: no path for it")
    return list(keys)


def literal_args(expression: exp.Anonymous) -> list[str]:
    """The string literals among a pseudo-function's arguments (keys, names)."""
    return [a.this for a in expression.expressions if isinstance(a, exp.Literal) and a.is_string]


Native = Callable[[Generator, exp.Anonymous], str]


def anonymous_sql(natives: dict[str, Native]) -> Callable[[Generator, exp.Anonymous], str]:
    """An `exp.Anonymous` generator: `af_*` pseudo-functions as the engine's constructs."""

    def generate(self: Generator, expression: exp.Anonymous) -> str:
        name = expression.name.lower()
        if name in natives:
            return natives[name](self, expression)
        if name.startswith("af_"):
            raise CompileError(f"{name} has no translation for this engine")
        return str(Generator.anonymous_sql(self, expression))

    return generate


def unmaterialized(tree: exp.Expr) -> exp.Expr:
    """`WITH x AS MATERIALIZED (...)` without the hint neither engine takes."""
    for cte in tree.find_all(exp.CTE):
        if cte.args.get("materialized") is not None:
            cte.set("materialized", None)
    return tree


Explode = Callable[[exp.Select, exp.Expr, str], None]


def exploded(tree: exp.Expr, rewrite: Explode) -> exp.Expr:
    """stage.sql's explode (`unnest(items) AS __e, generate_subscripts(items, 1) - 1 AS pos`
    in a projection) handed to `rewrite(select, items, position)`, which joins the engine's
    table function instead."""
    for select in list(tree.find_all(exp.Select)):
        found = [
            p for p in select.expressions
            if isinstance(p, exp.Alias) and p.alias == ELEMENT
            and isinstance(p.this, exp.Unnest | exp.Explode)
        ]  # fmt: skip
        if not found:
            continue
        projection = found[0]
        inner = projection.this
        items = inner.expressions[0] if isinstance(inner, exp.Unnest) else inner.this
        positions = [
            p for p in select.expressions
            if isinstance(p, exp.Alias) and "generate_subscripts" in p.sql("duckdb").lower()
        ]  # fmt: skip
        if len(positions) != 1:
            raise CompileError("an exploded array without its position has no translation")
        position = positions[0].alias
        select.set(
            "expressions",
            [p for p in select.expressions if p is not projection and p is not positions[0]],
        )
        rewrite(select, items, position)
    return tree


class SqlOnlyDialect(Dialect):
    """A dialect for an engine anchorflow writes SQL for and never connects to."""

    name = "sql-only"
    sqlglot_dialect: type[sqlglot.Dialect]
    landing_columns: dict[str, str] = {}  # noqa: RUF012

    def landed_at(self, location: str) -> tuple[str, str]:
        raise NotImplementedError

    def prepare(self, tree: exp.Expr) -> exp.Expr:
        """The engine's tree rewrites before generation."""
        return unmaterialized(tree)

    def table_name(self, name: str) -> str:
        """A canonical table name (`"schema"."name"`) as the engine spells it."""
        return self.transpile(f"SELECT * FROM {name}")[len("SELECT * FROM ") :]

    def sql_type(self, sql_type: str) -> str:
        """A canonical (DuckDB) type as the engine spells it."""
        return str(exp.DataType.build(sql_type, dialect="duckdb").sql(self.sqlglot_dialect))

    def transpile(self, sql: str) -> str:
        """Canonical SQL as the engine runs it, statements joined by `;`."""
        return ";\n".join(self.statements(sql))

    def statements(self, sql: str) -> list[str]:
        if sql.lstrip().startswith(NATIVE):
            return [sql.lstrip()[len(NATIVE) :]]
        try:
            trees = sqlglot.parse(sql, read="duckdb")
            return [
                self.prepare(tree).sql(
                    dialect=self.sqlglot_dialect, identify=True,
                    unsupported_level=ErrorLevel.RAISE, pretty=False,
                )
                for tree in trees if tree is not None
            ]  # fmt: skip
        except SqlglotError as error:
            first = str(error).splitlines()[0]
            raise CompileError(f"no {self.name} translation: {first}") from None

    # -- what the compiled SQL reads through pseudo-functions --------------------------------

    def parse_record(self, text: str, keys: dict[str, str]) -> str:
        return call("af_parse", text)

    def record_field(self, parsed: str, key: str, how: str) -> str:
        return call("af_field", parsed, lit(checked_keys([key])[0]), lit(how))

    def json_text(self, json: str, keys: Sequence[str] = ()) -> str:
        return call("af_text", json, *(lit(k) for k in checked_keys(keys)))

    def json_value(self, json: str, keys: Sequence[str]) -> str:
        return call("af_json", json, *(lit(k) for k in checked_keys(keys)))

    def json_type(self, json: str) -> str:
        return call("af_json_type", json)

    def json_valid(self, text: str) -> str:
        return call("af_json_valid", text)

    def json_array_elements(self, json: str) -> str:
        return call("af_json_elements", json)

    def json_null_list(self) -> str:
        return call("af_json_null_list")

    def is_finite(self, number: str) -> str:
        return call("af_is_finite", number)

    def is_whole(self, number: str) -> str:
        return call("af_is_whole", number)

    def sha256_hex(self, text: str) -> str:
        return call("af_sha256", text)

    def variable(self, name: str) -> str:
        return call("af_variable", lit(name))

    def compressed(self, sql_type: str) -> str:
        return sql_type  # both engines compress their columnar storage themselves

    def drop_table_macro(self, name: str, params: Sequence[tuple[str, str]]) -> str:
        return ""  # CREATE OR REPLACE replaces a function whose rows changed too: no drop

    def replace_view(self, name: str, select: str) -> str:
        return f"CREATE OR REPLACE VIEW {name} AS {select}"

    # -- what only the compiled load says ------------------------------------------------------

    def copy_raw(self, landing: str, location: str) -> str:
        """A statement appending every line of the staged NDJSON files under `location` (the
        stream's folder of the user's stage or bucket) to the `landing` table (origin,
        line_no, line)."""
        raise NotImplementedError
