"""What differs between engines in the SQL the steps write: one method per construct.

Steps write portable SQL in DuckDB's spelling (the canonical one: `::` casts, `FILTER (WHERE`,
`list_contains`, `strftime`, `?` parameters), and an engine whose SQL differs transpiles it with
sqlglot (`transpile`). What sqlglot cannot translate, because the engine spells it with another
structure or has no equivalent, is a method here, and each engine's dialect implements it:
JSON field extraction and typing, try-cast, the latest value per key, array explode, table
macros, compression, the hash used for sampling and the PII hash, session variables.

Every method returns a SQL fragment in the canonical spelling that the engine's `transpile`
turns into its own (for DuckDB, the fragment as it runs). Arguments that are SQL are trusted
fragments built by anchorflow; values come in through parameters or sqlglot literals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlglot import exp


def _string(value: str) -> str:
    return exp.Literal.string(value).sql("duckdb")


def json_path(keys: Sequence[str]) -> str:
    """A JSONPath of object keys (`$."a"."b"`), as a string literal."""
    return _string("$" + "".join(f'."{key}"' for key in keys))


def whole_match(generator: Any, e: exp.SimilarTo, operator: str) -> str:
    """DuckDB's `x SIMILAR TO p` (the regular expression p matched against the whole of x) with
    an engine's regular-expression `operator` (`~`, `RLIKE`), anchored. PostgreSQL's own
    SIMILAR TO is not the same: `.` is a literal dot there and `%` a wildcard."""
    pattern = e.expression
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        whole = generator.sql(exp.Literal.string(f"^(?:{pattern.this})$"))
    else:
        whole = f"concat('^(?:', {generator.sql(pattern)}, ')$')"
    return f"({generator.sql(e, 'this')} {operator} {whole})"


class Dialect:
    """The canonical (DuckDB) spelling of every engine-specific construct."""

    name = "duckdb"

    def transpile(self, sql: str) -> str:
        """Canonical SQL as this engine runs it."""
        return sql

    # -- JSON ------------------------------------------------------------------------------

    def parse_record(self, text: str, keys: dict[str, str]) -> str:
        """`text` parsed once into a value whose top-level `keys` (key → VARCHAR or JSON) are
        read with `record_field`."""
        import json

        return f"json_transform({text}, {_string(json.dumps(keys))})"

    def record_field(self, parsed: str, key: str, how: str) -> str:
        """The top-level `key` of a `parse_record` value, as text (VARCHAR) or JSON."""
        return f"{parsed}.{exp.to_identifier(key, quoted=True).sql('duckdb')}"

    def json_text(self, json: str, keys: Sequence[str] = ()) -> str:
        """The value at `keys` inside a JSON value, as text (a string without its quotes)."""
        return f"json_extract_string({json}, {json_path(keys)})"

    def json_value(self, json: str, keys: Sequence[str]) -> str:
        """The value at `keys` inside a JSON value, as JSON."""
        return f"json_extract({json}, {json_path(keys)})"

    def json_type(self, json: str) -> str:
        """The JSON type of a value: ARRAY, OBJECT, NULL, VARCHAR, BOOLEAN, BIGINT, UBIGINT or
        DOUBLE (DuckDB's names)."""
        return f"json_type({json})"

    def json_valid(self, text: str) -> str:
        """Whether `text` is one JSON value this engine can store and read back."""
        return f"json_valid({text})"

    def json_keys(self, json: str) -> str:
        """The keys of a JSON object, as a list of text."""
        return f"json_keys({json})"

    def json_array_elements(self, json: str) -> str:
        """A JSON array as a list of JSON values (for `unnest`)."""
        return f"CAST({json} AS JSON[])"

    # -- typing ----------------------------------------------------------------------------

    def try_cast(self, text: str, sql_type: str) -> str:
        """`text` as `sql_type`, NULL where it does not convert."""
        return f"TRY_CAST({text} AS {sql_type})"

    def is_finite(self, number: str) -> str:
        return f"isfinite({number})"

    def utc_timestamp(self, text: str) -> str:
        """`text` as a TIMESTAMP in UTC, NULL where it is none: an offset or zone it names is
        applied, not dropped; a time without one is taken as UTC."""
        return self.try_cast(
            f"{self.try_cast(text, 'TIMESTAMPTZ')} AT TIME ZONE 'UTC'", "TIMESTAMP"
        )

    # -- aggregation -----------------------------------------------------------------------

    def latest(self, value: str, order: str) -> str:
        """The aggregate: `value` of the row with the greatest `order` (rows where either is NULL
        are skipped)."""
        return f"arg_max({value}, {order})"

    def earliest(self, value: str, order: str) -> str:
        """The aggregate: `value` of the row with the least `order` (NULLs skipped)."""
        return f"arg_min({value}, {order})"

    # -- hashing ---------------------------------------------------------------------------

    def sha256_hex(self, text: str) -> str:
        """The SHA-256 of a text, as 64 hex digits (the PII hash: the same on every engine)."""
        return f"sha256({text})"

    def sample_hash(self, *values: str) -> str:
        """A well-spread unsigned 64-bit-range hash of the values, for sampling (engine's own;
        samples may differ between engines)."""
        return f"hash({', '.join(values)})"

    # -- session -----------------------------------------------------------------------------

    def variable(self, name: str) -> str:
        """The session variable `name` (set with `set_variable`)."""
        return f"getvariable({_string(name)})"

    def set_variable(self, name: str) -> str:
        """A statement that sets the session variable `name` to the one parameter."""
        return f"SET VARIABLE {exp.to_identifier(name).sql('duckdb')} = ?"

    # -- tables ------------------------------------------------------------------------------

    def compressed(self, sql_type: str) -> str:
        """A column type for large, repetitive text (the raw records)."""
        return f"{sql_type} USING COMPRESSION zstd"

    def lookup_index(self, schema: str, name: str, columns: list[str]) -> str | None:
        """A statement creating (if missing) an index for lookups by `columns`, or None where
        the engine finds rows without one (DuckDB's zone maps and hash joins)."""
        return None

    def serialize(self, name: str) -> str | None:
        """A statement making transactions that run it under the same `name` take turns until
        they end (where concurrent writers of the same rows would otherwise lock each other in
        any order), or None where they need none (DuckDB: writers of different columns of the
        same rows do not conflict)."""
        return None

    def create_or_replace_table(self, name: str, select: str) -> str:
        return f"CREATE OR REPLACE TABLE {name} AS {select}"

    def table_macro(self, name: str, params: Sequence[tuple[str, str]], body: str) -> str:
        """A statement creating (or replacing) a function of `params` ((name, type) pairs)
        that returns the rows of `body`; inside `body`, a parameter is `param(name)`."""
        names = ", ".join(p for p, _ in params)
        return f"CREATE OR REPLACE MACRO {name}({names}) AS TABLE {body}"

    def param(self, name: str) -> str:
        """A `table_macro` parameter inside its body."""
        return name

    def drop_table_macro(self, name: str, params: Sequence[tuple[str, str]]) -> str | None:
        """The statement dropping a `table_function`; None where the engine has none."""
        return f"DROP MACRO TABLE IF EXISTS {name}"

    # -- catalog -----------------------------------------------------------------------------

    def table_comments(self) -> str:
        """A query of (table, comment) for the schema given as its one parameter."""
        return (
            "SELECT table_name, TABLE_COMMENT FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema = ?"
        )

    def column_comments(self) -> str:
        """A query of (table, column, comment) for the schema given as its one parameter."""
        return (
            "SELECT table_name, column_name, COLUMN_COMMENT FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = ?"
        )

    # -- marts -------------------------------------------------------------------------------

    def dependent_views(self) -> str | None:
        """A query of the views (schema, name) that depend on the table given as its two
        parameters (schema, name); None where views are bound when read, so that replacing
        a table never meets them (DuckDB)."""
        return None

    # -- stage -------------------------------------------------------------------------------

    def is_whole(self, number: str) -> str:
        """Whether a DOUBLE is a whole number (NULL for NULL)."""
        return f"{number} % 1 = 0"

    def computed_once(self) -> str:
        """What ends a subquery whose computed columns the query around it reads several times
        (a parsed record): the engine computes each once per row, not once per reference."""
        return ""

    def json_null_list(self) -> str:
        """A list of one SQL NULL, of the type `json_array_elements` returns."""
        return "[NULL::JSON]"

    def json_types_at(self, text: str, paths: str) -> str:
        """The JSON types (as `json_type`) at each JSONPath of the list `paths` (SQL: a
        VARCHAR[] of `json_path`s) in the JSON `text`, as a list; the text is parsed once."""
        return f"json_type({text}, {paths})"

    def json_texts_at(self, text: str, paths: str) -> str:
        """The values (as `json_text`) at each JSONPath of the list `paths`, as a list."""
        return f"json_extract_string({text}, {paths})"

    def object_keys(self, text: str, parents: Sequence[str]) -> str:
        """The keys of the JSON object `text`, and of the objects at the dotted paths `parents`
        (parsed once), for `field_paths`."""
        listed = ", ".join(["'$'"] + [json_path(p.split(".")) for p in parents])
        return f"json_keys({text}, [{listed}])"

    def field_paths(self, keys: str, parents: Sequence[str]) -> str:
        """The field paths of an `object_keys` value, as a list: the keys, and `parent.key`."""
        lists = [f"coalesce({keys}[1], [])"]
        for index, parent in enumerate(parents, start=2):
            prefix = _string(parent + ".")
            lists.append(f"list_transform(coalesce({keys}[{index}], []), lambda k: {prefix} || k)")
        return f"list_concat({', '.join(lists)})" if len(lists) > 1 else lists[0]

    def field_presence(self, rows: str, keys: str, parents: Sequence[str]) -> str:
        """A query of (field, present): each field path of the `object_keys` values `keys` of
        the relation `rows`, and the number of rows that hold it."""
        return (
            f"SELECT f AS field, count(*) AS present FROM (SELECT unnest("
            f"{self.field_paths(keys, parents)}) AS f FROM {rows}) AS e GROUP BY f"
        )

    def approx_distinct(self, value: str) -> str:
        return f"approx_count_distinct({value})"

    def list_without(self, items: str, values: str) -> str:
        """The list `items` without the elements that are in the list `values`."""
        return f"list_filter({items}, lambda x: NOT list_contains({values}, x))"

    def json_map(self, json: str) -> str:
        """A JSON object (text or JSON) parsed into a value of its top-level entries, read with
        `map_keys` and `map_values` (two lists in the same order)."""
        return f"json_transform({json}, '\"MAP(VARCHAR, JSON)\"')"

    def map_keys(self, parsed: str) -> str:
        return f"map_keys({parsed})"

    def map_values(self, parsed: str) -> str:
        return f"map_values({parsed})"

    def column_types(self) -> str:
        """A query of (column, type) of the table whose schema and name are its parameters."""
        return (
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position"
        )

    # -- anchor model ------------------------------------------------------------------------

    def asof_left_join(
        self, right: str, alias: str, on: str, left_time: str, keys: Sequence[str], time: str
    ) -> str:
        """A join clause: per left row, the one row of `right` (a subquery, as `alias`) matching
        `on` (equality on its `keys` columns) with the greatest `time` column at or before
        `left_time` (NULLs where none)."""
        return f"ASOF LEFT JOIN ({right}) AS {alias} ON {on} AND {left_time} >= {alias}.{time}"

    def ranged_left_join(
        self, right: str, alias: str, on: str, left_time: str, keys: Sequence[str], time: str
    ) -> str:
        """`asof_left_join` in plain SQL, for an engine without ASOF joins: each right row with
        the time the next one of its key takes over, joined on the key with a range test (a
        LATERAL lookup per left row would run `right` again for every row)."""
        keys_listed = ", ".join(f"r.{k}" for k in keys)
        return (
            f"LEFT JOIN (SELECT r.*, lead(r.{time}) OVER (PARTITION BY {keys_listed} "
            f"ORDER BY r.{time}) AS __until FROM ({right}) AS r) AS {alias} "
            f"ON {on} AND {left_time} >= {alias}.{time} "
            f"AND ({alias}.__until IS NULL OR {left_time} < {alias}.__until)"
        )

    def replace_view(self, name: str, select: str) -> str:
        """A statement creating the view, or replacing it (its columns may change)."""
        return f"CREATE OR REPLACE VIEW {name} AS {select}"

    def table_function(
        self, name: str, params: Sequence[tuple[str, str]], body: str, rows_like: str
    ) -> str | None:
        """`table_macro`, for a body whose rows have the columns of the view `rows_like`
        (an engine that needs the columns of a function's rows takes them from it); None on
        an engine without table functions."""
        return self.table_macro(name, params, body)

    def comment_on_table(self, name: str, comment: str) -> str:
        """COMMENT ON the table or view `name`; `comment` is a string literal or NULL."""
        return f"COMMENT ON TABLE {name} IS {comment}"

    # -- land, journal, run ------------------------------------------------------------------

    # Whether text columns can hold the NUL character (U+0000); where not, a record that
    # holds one is quarantined instead of landed (see `land.raw.set_aside_nul`).
    text_holds_nul = True

    def json_text_at(self, json: str, path: str) -> str:
        """The value at a JSONPath given as SQL (a parameter), as text; NULL where the text is
        not JSON or holds nothing there."""
        return f"try(json_extract_string({json}, {path}))"

    def temp_table(self, name: str) -> str:
        """A (quoted) temporary table's name qualified by the temporary schema."""
        return f"temp.{name}"

    def list_length(self, values: str) -> str:
        """How many elements a list has."""
        return f"len({values})"

    def reclaim_deleted(self) -> str | None:
        """A statement after which deleted rows' bytes are free space, not data (erasure);
        None where the engine does that itself (`compact` rewrites the whole store)."""
        return "CHECKPOINT"


# The canonical spelling, for SQL built where no warehouse is at hand (a view's definition);
# the engine that runs it translates it (`transpile`).
CANONICAL = Dialect()
