"""PostgreSQL's dialect: the steps' canonical SQL transpiled by sqlglot, and the constructs
PostgreSQL spells otherwise, mostly as calls to the helper functions in `functions.sql`
(installed in the `anchorflow` schema when the warehouse is opened)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.generator import Generator

from anchorflow.errors import WarehouseError
from anchorflow.warehouse.base import ident, table
from anchorflow.warehouse.dialect import Dialect, whole_match

# A statement that starts with this marker is PostgreSQL already (DDL that the canonical
# spelling cannot say, such as a function's body): it is sent as written.
NATIVE = "/*native*/"
PARAM = "\x00anchorflow-param\x00"
SETTING_PREFIX = "anchorflow."

# TRY_CAST targets with a helper `af_try_<name>(text)`; any other type goes through the generic
# one, which is slower (dynamic SQL per value).
_TRY_FUNCTIONS = {
    "BIGINT": "bigint",
    "INT": "integer",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "DOUBLE PRECISION": "double",
    "REAL": "real",
    "BOOLEAN": "boolean",
    "TIMESTAMP": "timestamp",
    "TIMESTAMPTZ": "timestamptz",
    "DATE": "date",
    "TIME": "time",
    "INTERVAL": "interval",
    "UUID": "uuid",
    "JSONB": "jsonb",
    "JSON": "jsonb",
}


def _try_cast(self: Generator, expression: exp.TryCast) -> str:
    target = expression.args["to"]
    text = f"CAST({self.sql(expression, 'this')} AS TEXT)"
    name = self.sql(target)
    if target.is_type(exp.DataType.Type.TINYINT):  # written SMALLINT: its range is kept
        return f"af_try_tinyint({text})"
    helper = _TRY_FUNCTIONS.get(name.upper())
    if helper:
        return f"af_try_{helper}({text})"
    if target.is_type(*exp.DataType.TEXT_TYPES):
        return text
    if target.is_type(exp.DataType.Type.DECIMAL):
        params = [self.sql(p) for p in target.expressions] or ["18", "3"]
        if len(params) == 1:
            params.append("0")
        return f"CAST(af_try_numeric({text}, {params[0]}, {params[1]}) AS {name})"
    return f"CAST(af_try_cast({text}, {self.sql(exp.Literal.string(name))}) AS {name})"


def _pick(self: Generator, expression: exp.ArgMax | exp.ArgMin) -> str:
    """DuckDB's arg_max/arg_min: the first of the values ordered by `order`, rows where either
    is NULL skipped."""
    value, order = self.sql(expression, "this"), self.sql(expression, "expression")
    direction = " DESC" if isinstance(expression, exp.ArgMax) else ""
    return (
        f"(ARRAY_AGG({value} ORDER BY {order}{direction}) "
        f"FILTER(WHERE {value} IS NOT NULL AND {order} IS NOT NULL))[1]"
    )


def _window(self: Generator, expression: exp.Window) -> str:
    if isinstance(expression.this, exp.ArgMax | exp.ArgMin):
        # PostgreSQL has no ordered aggregate as a window function: say so, not a syntax error
        raise WarehouseError(
            "arg_max/arg_min as a window function has no PostgreSQL translation; write "
            "first_value(value) OVER (PARTITION BY ... ORDER BY ... DESC)"
        )
    return str(Postgres.Generator.window_sql(self, expression))


_TO_CHAR = {
    "Y": "YYYY",
    "m": "MM",
    "d": "DD",
    "H": "HH24",
    "M": "MI",
    "S": "SS",
    "f": "US",
    "j": "DDD",
    "y": "YY",
    "g": "MS",
    "b": "Mon",
    "B": "FMMonth",
    "a": "Dy",
    "A": "FMDay",
    "I": "HH12",
    "p": "AM",
}


def to_char_format(strftime: str) -> str:
    """A strftime format as `to_char`'s, every other character quoted as literal text (so
    the T of `%Y%m%dT%H` is not read as an ordinal suffix)."""
    out, literal_run, i = [], "", 0
    while i < len(strftime):
        char = strftime[i]
        if char == "%" and i + 1 < len(strftime) and strftime[i + 1] in _TO_CHAR:
            if literal_run:
                out.append('"' + literal_run.replace('"', '\\"') + '"')
                literal_run = ""
            out.append(_TO_CHAR[strftime[i + 1]])
            i += 2
            continue
        if char == "%" and strftime[i + 1 : i + 2] == "%":
            i += 1
        elif char == "%":
            raise WarehouseError(
                f"the date format {strftime!r}: %{strftime[i + 1 : i + 2]} has no PostgreSQL "
                "equivalent that anchorflow knows"
            )
        literal_run += char
        i += 1
    if literal_run:
        out.append('"' + literal_run.replace('"', '\\"') + '"')
    return "".join(out)


def _time_to_str(self: Generator, expression: exp.TimeToStr) -> str:
    fmt = expression.args["format"]
    if not isinstance(fmt, exp.Literal):
        raise WarehouseError("strftime on PostgreSQL needs a literal format")
    pattern = self.sql(exp.Literal.string(to_char_format(fmt.this)))
    return f"TO_CHAR({self.sql(expression, 'this')}, {pattern})"


def _anonymous(self: Generator, expression: exp.Anonymous) -> str:
    """A function of no known name; a quoted name (a table function such as
    `anchor."User_as_of"(...)`) keeps its quotes and case."""
    name = expression.this
    if isinstance(name, exp.Identifier) and name.quoted:
        return f"{self.sql(name)}({self.expressions(expression, flat=True)})"
    return Postgres.Generator.anonymous_sql(self, expression)


def _str_to_time(self: Generator, expression: exp.StrToTime) -> str:
    """strptime as to_timestamp with the format's literal text quoted, as a TIMESTAMP (DuckDB's
    strptime of a format without a zone)."""
    fmt = expression.args["format"]
    if not isinstance(fmt, exp.Literal):
        raise WarehouseError("strptime on PostgreSQL needs a literal format")
    pattern = self.sql(exp.Literal.string(to_char_format(fmt.this)))
    return f"CAST(TO_TIMESTAMP({self.sql(expression, 'this')}, {pattern}) AS TIMESTAMP)"


class AnchorflowPostgres(Postgres):
    """sqlglot's PostgreSQL, with DuckDB's TRY_CAST and arg_max kept exact, and parameters
    left for the adapter to number."""

    class Generator(Postgres.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS = {  # noqa: RUF012
            **Postgres.Generator.TRANSFORMS,
            exp.TryCast: _try_cast,
            exp.ArgMax: _pick,
            exp.ArgMin: _pick,
            exp.Window: _window,
            exp.Placeholder: lambda self, e: PARAM,
            exp.TimeToStr: _time_to_str,
            exp.Anonymous: _anonymous,
            exp.StrToTime: _str_to_time,  # land, journal, run
            exp.SimilarTo: lambda self, e: whole_match(self, e, "~"),  # DuckDB's meaning
            # no sketch built in: exact (the semantic layer's approx_count_distinct)
            exp.ApproxDistinct: lambda self, e: f"COUNT(DISTINCT {self.sql(e, 'this')})",
        }


@lru_cache(maxsize=4096)
def transpile(sql: str) -> str:
    """Canonical (DuckDB-spelled) SQL as PostgreSQL runs it, parameters marked for `bind`."""
    if sql.lstrip().startswith(NATIVE):
        return _parameters(sql)
    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError as error:
        raise WarehouseError(f"cannot translate SQL for PostgreSQL: {error}") from None
    out: list[str] = []
    for tree in trees:
        if tree is None:
            continue
        tree = expand_all(tree)
        if isinstance(tree, exp.Create) and tree.args.get("replace") and tree.kind == "TABLE":
            tree = tree.copy()
            tree.set("replace", False)
            name = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
            out.append(f"DROP TABLE IF EXISTS {name.sql(dialect=AnchorflowPostgres)}")
        out.append(tree.sql(dialect=AnchorflowPostgres))
    return "; ".join(out)


# -- marts: DuckDB's GROUP BY ALL and ORDER BY ALL, which PostgreSQL does not have -----------------


def _aggregates(expression: exp.Expr) -> bool:
    """Whether an expression aggregates at its own level (not inside a subquery or window)."""
    if isinstance(expression, exp.AggFunc):
        return True
    if isinstance(expression, exp.Subquery | exp.Query | exp.Window):
        return False
    return any(_aggregates(child) for child in expression.iter_expressions())


def expand_all(tree: exp.Expr) -> exp.Expr:
    """`GROUP BY ALL` as the positions of the SELECT items that do not aggregate (as DuckDB
    groups), and `ORDER BY ALL` as every position, left to right."""
    selects = [s for s in tree.find_all(exp.Select) if _has_all(s)]
    if not selects:
        return tree
    tree = tree.copy()
    for select in tree.find_all(exp.Select):
        items = select.expressions
        group = select.args.get("group")
        if isinstance(group, exp.Group) and group.args.get("all"):
            keys = [
                exp.Literal.number(i + 1)
                for i, item in enumerate(items)
                if not _aggregates(item) and not isinstance(item.unalias(), exp.Window)
            ]
            select.set("group", exp.Group(expressions=keys) if keys else None)
        order = select.args.get("order")
        if isinstance(order, exp.Order) and _order_all(order):
            how = order.expressions[0]
            ordered = [
                exp.Ordered(this=exp.Literal.number(i + 1), desc=how.args.get("desc"),
                            nulls_first=how.args.get("nulls_first"))
                for i in range(len(items))
            ]  # fmt: skip
            select.set("order", exp.Order(expressions=ordered))
    return tree


def _order_all(order: exp.Order) -> bool:
    first = order.expressions[0] if len(order.expressions) == 1 else None
    return isinstance(first, exp.Ordered) and (
        isinstance(first.this, exp.Var) and first.this.name.upper() == "ALL"
    )


def _has_all(select: exp.Select) -> bool:
    group, order = select.args.get("group"), select.args.get("order")
    return bool(
        (isinstance(group, exp.Group) and group.args.get("all"))
        or (isinstance(order, exp.Order) and _order_all(order))
    )


def bind(statement: str, with_params: bool) -> str:
    """A transpiled statement as psycopg takes it: with parameters, `%s` for each and every
    other `%` doubled; without, as it is (psycopg reads no placeholder then)."""
    if not with_params:
        if PARAM in statement:
            raise WarehouseError("a statement with ? parameters was run without values")
        return statement
    return statement.replace("%", "%%").replace(PARAM, "%s")


_QUOTED_OR_PARAM = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?)")


def _parameters(sql: str) -> str:
    """Native SQL with each `?` outside quotes marked as a parameter."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        return PARAM if token == "?" else token

    return _QUOTED_OR_PARAM.sub(swap, sql.replace(NATIVE, "", 1))


def _text(value: str) -> str:
    return exp.Literal.string(value).sql("duckdb")


class PostgresDialect(Dialect):
    name = "postgres"

    def transpile(self, sql: str) -> str:
        return transpile(sql)

    def parse_record(self, text: str, keys: dict[str, str]) -> str:
        return f"CAST({text} AS JSONB)"

    def record_field(self, parsed: str, key: str, how: str) -> str:
        helper = "af_json" if how == "JSON" else "af_text"
        return f"{helper}({parsed}, {_text(key)})"

    def json_text(self, json: str, keys: Sequence[str] = ()) -> str:
        if not keys:
            return f"af_text0({json})"
        return f"af_text({json}, {', '.join(_text(k) for k in keys)})"

    def json_value(self, json: str, keys: Sequence[str]) -> str:
        return f"af_json({json}, {', '.join(_text(k) for k in keys)})"

    def json_type(self, json: str) -> str:
        return f"af_json_type({json})"

    def json_valid(self, text: str) -> str:
        return f"af_json_valid({text})"

    def json_keys(self, json: str) -> str:
        return f"af_json_keys({json})"

    def json_array_elements(self, json: str) -> str:
        return f"af_json_elements({json})"

    def is_finite(self, number: str) -> str:
        return f"af_isfinite({number})"

    def sha256_hex(self, text: str) -> str:
        return f"af_sha256({text})"

    def sample_hash(self, *values: str) -> str:
        return f"af_hash(concat_ws('|', {', '.join(values)}))"

    def variable(self, name: str) -> str:
        return f"current_setting({_text(SETTING_PREFIX + name)})"

    def set_variable(self, name: str) -> str:
        return f"SELECT set_config({_text(SETTING_PREFIX + name)}, ?, false)"

    def compressed(self, sql_type: str) -> str:
        return sql_type  # TOAST compresses large values (lz4 where the server has it)

    def lookup_index(self, schema: str, name: str, columns: list[str]) -> str | None:
        # A row store finds the value in force (LATERAL ... ORDER BY ... LIMIT 1) and the rows
        # not stored yet (NOT EXISTS) by index; without one, each is a scan per row.
        digest = hashlib.sha1("\x00".join(columns).encode()).hexdigest()[:8]
        index = ident(f"{name[:40]}__{digest}")
        listed = ", ".join(ident(c) for c in columns)
        return f"{NATIVE}CREATE INDEX IF NOT EXISTS {index} ON {table(schema, name)} ({listed})"

    def serialize(self, name: str) -> str | None:
        return f"{NATIVE}SELECT pg_advisory_xact_lock(hashtext({_text(name)}))"

    def create_or_replace_table(self, name: str, select: str) -> str:
        return f"DROP TABLE IF EXISTS {name}; CREATE TABLE {name} AS {select}"

    def table_macro(self, name: str, params: Sequence[tuple[str, str]], body: str) -> str:
        raise WarehouseError("table functions on PostgreSQL need their columns: use a view")

    def param(self, name: str) -> str:
        return name

    def drop_table_macro(self, name: str, params: Sequence[tuple[str, str]]) -> str:
        types = ", ".join(sql_type for _, sql_type in params)
        return f"{NATIVE}DROP FUNCTION IF EXISTS {name}({types})"

    def table_comments(self) -> str:
        return (
            f"{NATIVE}SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class AS c "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ? AND c.relkind IN ('r', 'v', 'm', 'p', 'f')"
        )

    def column_comments(self) -> str:
        return (
            f"{NATIVE}SELECT c.relname, a.attname, col_description(c.oid, a.attnum) "
            "FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = ? "
            "AND c.relkind IN ('r', 'v', 'm', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped"
        )

    # -- marts -------------------------------------------------------------------------------

    def dependent_views(self) -> str | None:
        return (
            f"{NATIVE}SELECT DISTINCT vn.nspname, v.relname FROM pg_depend AS d "
            "JOIN pg_rewrite AS r ON r.oid = d.objid JOIN pg_class AS v ON v.oid = r.ev_class "
            "JOIN pg_namespace AS vn ON vn.oid = v.relnamespace "
            "JOIN pg_class AS t ON t.oid = d.refobjid "
            "JOIN pg_namespace AS tn ON tn.oid = t.relnamespace "
            "WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
            "AND tn.nspname = ? AND t.relname = ? AND v.oid <> t.oid ORDER BY 1, 2"
        )

    # -- stage -------------------------------------------------------------------------------

    def is_whole(self, number: str) -> str:
        return f"af_is_whole({number})"  # no % on double precision

    def computed_once(self) -> str:
        return " OFFSET 0"  # keeps the planner from inlining the expressions into each reference

    def json_null_list(self) -> str:
        return "ARRAY[CAST(NULL AS JSONB)]"

    def json_types_at(self, text: str, paths: str) -> str:
        return f"af_json_types(CAST({text} AS JSONB), {paths})"

    def json_texts_at(self, text: str, paths: str) -> str:
        return f"af_json_texts(CAST({text} AS JSONB), {paths})"

    def object_keys(self, text: str, parents: Sequence[str]) -> str:
        listed = ", ".join(_text(p) for p in parents)
        return f"af_field_paths(CAST({text} AS JSONB), CAST(ARRAY[{listed}] AS TEXT[]))"

    def field_paths(self, keys: str, parents: Sequence[str]) -> str:
        return keys  # `object_keys` gave the paths already

    def approx_distinct(self, value: str) -> str:
        return f"count(DISTINCT {value})"  # exact: PostgreSQL has no sketch built in

    def list_without(self, items: str, values: str) -> str:
        return f"ARRAY(SELECT x FROM unnest({items}) AS x WHERE NOT x = ANY({values}))"

    def json_map(self, json: str) -> str:
        return f"CAST({json} AS JSONB)"

    def map_keys(self, parsed: str) -> str:
        return f"af_json_keys({parsed})"

    def map_values(self, parsed: str) -> str:
        return f"af_json_values({parsed})"

    def column_types(self) -> str:
        return (
            f"{NATIVE}SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = ? "
            "AND c.relname = ? AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        )

    # -- anchor model ------------------------------------------------------------------------

    def asof_left_join(
        self, right: str, alias: str, on: str, left_time: str, keys: Sequence[str], time: str
    ) -> str:
        return self.ranged_left_join(right, alias, on, left_time, keys, time)

    def replace_view(self, name: str, select: str) -> str:
        # CREATE OR REPLACE VIEW cannot drop, rename or retype a column: then the view is
        # dropped and made anew (refused, in one line, while another view depends on it).
        create = self.transpile(f"CREATE OR REPLACE VIEW {name} AS {select}")
        fresh = self.transpile(f"CREATE VIEW {name} AS {select}")
        return (
            f"{NATIVE}DO $af_do$ BEGIN EXECUTE $af_sql${create}$af_sql$; "
            "EXCEPTION WHEN invalid_table_definition THEN "
            f"EXECUTE $af_sql$DROP VIEW {name}$af_sql$; EXECUTE $af_sql${fresh}$af_sql$; "
            "END $af_do$"
        )

    def table_function(
        self, name: str, params: Sequence[tuple[str, str]], body: str, rows_like: str
    ) -> str:
        args = ", ".join(
            f"{p} {exp.DataType.build(t, dialect='duckdb').sql(AnchorflowPostgres)}"
            for p, t in params
        )
        return (
            f"{NATIVE}CREATE OR REPLACE FUNCTION {name}({args}) RETURNS SETOF {rows_like} "
            f"LANGUAGE sql STABLE AS $af_fn${self.transpile(body)}$af_fn$"
        )

    def comment_on_table(self, name: str, comment: str) -> str:
        # PostgreSQL says which kind of relation it comments on (TABLE is refused on a view).
        target = self.transpile(f"SELECT * FROM {name}")[len("SELECT * FROM ") :]
        kind = (
            f"CASE (SELECT relkind FROM pg_class WHERE oid = to_regclass({_text(target)})) "
            "WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' "
            "WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END"
        )
        text = self.transpile(f"SELECT {comment}")[len("SELECT ") :]
        return (
            f"{NATIVE}DO $af_do$ BEGIN EXECUTE format('COMMENT ON %s %s IS %L', {kind}, "
            f"{_text(target)}, CAST({text} AS TEXT)); END $af_do$"
        )

    # -- land, journal, run ------------------------------------------------------------------

    text_holds_nul = False

    def json_text_at(self, json: str, path: str) -> str:
        return f"af_text_path({json}, {path})"

    def temp_table(self, name: str) -> str:
        return f"pg_temp.{name}"

    def list_length(self, values: str) -> str:
        return f"cardinality({values})"

    def reclaim_deleted(self) -> str | None:
        return None  # autovacuum frees dead rows; CHECKPOINT needs a superuser and frees nothing
