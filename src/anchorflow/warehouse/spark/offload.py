"""Statements the journal store runs for Spark: an INSERT into a journal table whose rows come
from Spark's temporary tables only (no lake table), such as staging's field statistics over
the typed batch's sample.

On Spark such a statement costs one Spark job per aggregate and subquery (the field statistics
of a batch: about 70 jobs, most of a window's time), whatever the rows; the journal (embedded
DuckDB) runs it in milliseconds over an Arrow copy of the temporary tables. The rows end in the
journal either way (the Spark path collects them into Arrow and inserts them there too), so
the SQL is run as written, in its canonical spelling: `SparkDialect`'s `af_*` fragments are
written back as the canonical dialect's (`to_journal`). A statement with a fragment that has no
canonical twin here (the sampling hash, whose values are Spark's: the batch's sample was drawn
with it) stays on Spark, and so does one over a temporary table larger than `MAX_ROWS`.

A count of a partitioned lake table's rows per load (`SELECT load_id, count(*) AS n FROM
staging.events WHERE <load_id only> GROUP BY load_id`, as the journal's transfers do) is read
from the manifest instead (`per_load_counts`): it lists every file of the table with its rows,
in the open transaction too, so the sum of a load's files is its count; the statement then
names no lake table and the journal runs it, without copying its journal tables to Spark.

A temporary table over `MAX_ROWS` is copied still when every read of it in the statement is a
scan with one same condition on its own columns (`scan_filter`: the field statistics read only
the sampled rows of a typed batch, `WHERE __r IS NOT NULL`), and no more than `MAX_ROWS` rows
pass it: the copy holds those rows only, which the statement's own condition keeps whole.

`TempCopies` keeps the Arrow copy of each temporary table (and of each filtered scan of it)
until the table changes (replaced, rows deleted, dropped, rolled back), keyed by a version the
adapter bumps at each change.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.generator import Generator

from anchorflow.journal import lake as manifest
from anchorflow.warehouse.dialect import Dialect
from anchorflow.warehouse.spark.lake import PARTITION

# Temporary tables up to this many rows are copied to the journal (a window's typed batch).
MAX_ROWS = 250_000
_CANONICAL = Dialect()


def _keys(e: exp.Anonymous, start: int) -> list[str]:
    return [str(a.this) for a in e.expressions[start:] if isinstance(a, exp.Literal)]


# af_* fragment → its canonical SQL, from the generated SQL of its arguments (and the literal
# keys or parents that follow the first argument).
_TWINS: dict[str, Callable[[exp.Anonymous, list[str]], str]] = {
    "af_text": lambda e, a: _CANONICAL.json_text(a[0], _keys(e, 1)),
    "af_json": lambda e, a: _CANONICAL.json_value(a[0], _keys(e, 1)),
    "af_keys": lambda e, a: _CANONICAL.json_keys(a[0]),
    "af_elements": lambda e, a: _CANONICAL.json_array_elements(a[0]),
    "af_null_list": lambda e, a: _CANONICAL.json_null_list(),
    "af_types_at": lambda e, a: _CANONICAL.json_types_at(a[0], a[1]),
    "af_texts_at": lambda e, a: _CANONICAL.json_texts_at(a[0], a[1]),
    "af_object_keys": lambda e, a: _CANONICAL.object_keys(a[0], _keys(e, 1)),
    "af_field_paths": lambda e, a: _CANONICAL.field_paths(a[0], _keys(e, 1)),
    "af_text_at": lambda e, a: _CANONICAL.json_text_at(a[0], a[1]),
    "af_size": lambda e, a: _CANONICAL.list_length(a[0]),
}


def _anonymous(self: Generator, e: exp.Anonymous) -> str:
    name = e.name.lower()
    if name in _TWINS:
        return _TWINS[name](e, [self.sql(a) for a in e.expressions])
    return str(DuckDB.Generator.anonymous_sql(self, e))


class _Canonical(DuckDB):
    class Generator(DuckDB.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS = {**DuckDB.Generator.TRANSFORMS, exp.Anonymous: _anonymous}  # noqa: RUF012


def fragments(tree: exp.Expr) -> set[str]:
    """The `af_*` fragments (the Spark dialect's spelling) the statement holds."""
    return {
        a.name.lower() for a in tree.find_all(exp.Anonymous) if a.name.lower().startswith("af_")
    }


def translatable(tree: exp.Expr) -> bool:
    """Whether every `af_*` fragment of the statement has a canonical twin."""
    return fragments(tree) <= _TWINS.keys()


def to_journal(tree: exp.Expr, temps: set[str]) -> str:
    """The statement as the journal runs it: fragments in the canonical spelling, temporary
    tables named bare (the Arrow copies registered under their names)."""
    tree = tree.copy()
    for table in tree.find_all(exp.Table):
        if table.db == "temp" and table.name in temps:
            table.set("db", None)
    return tree.sql(dialect=_Canonical)


def scan_filter(tree: exp.Expr, name: str) -> exp.Expr | None:
    """The condition every read of the temporary table `name` in the statement has, when each
    is `SELECT ... FROM name [AS a] WHERE <condition>` (no join; no subquery nor parameter in
    the condition) with the same condition on that table's columns; None otherwise. Its
    columns are named bare."""
    found: exp.Expr | None = None
    for table in tree.find_all(exp.Table):
        if table.name != name:
            continue
        select = table.parent.parent if isinstance(table.parent, exp.From) else None
        where = select.args.get("where") if isinstance(select, exp.Select) else None
        if (
            select is None or where is None or select.args.get("joins")
            or where.find(exp.Select, exp.Placeholder, exp.Parameter) is not None
            or any(c.table not in ("", table.alias_or_name) for c in where.find_all(exp.Column))
        ):  # fmt: skip
            return None
        condition = where.this.copy()
        for column in condition.find_all(exp.Column):
            column.set("table", None)
        if found is not None and condition != found:
            return None
        found = condition
    return found


def _load_ids_only(node: exp.Expr | None) -> bool:
    return node is not None and all(c.name == PARTITION for c in node.find_all(exp.Column))


def _counted_table(select: exp.Select, partitioned: Callable[[exp.Table], bool]) -> str | None:
    """The alias of the count when `select` counts a partitioned lake table's rows per load
    (one table, a condition on load_id only, grouped by load_id), else None."""
    source = select.args.get("from_")
    table = source.this if source is not None else None
    shape = select.expressions
    if (
        not isinstance(table, exp.Table) or not partitioned(table) or len(shape) != 2
        or select.args.get("joins") or select.args.get("having") or select.args.get("with_")
        or select.args.get("distinct") or select.args.get("limit")
    ):  # fmt: skip
        return None
    key, count = shape
    group = select.args.get("group")
    grouped = [g.name if isinstance(g, exp.Column) else str(g) for g in
               (group.expressions if group is not None else [])]  # fmt: skip
    if (
        not (isinstance(key, exp.Column) and key.name == PARTITION)
        or not (isinstance(count, exp.Alias) and isinstance(count.this, exp.Count))
        or not isinstance(count.this.this, exp.Star) or grouped not in (["1"], [PARTITION])
        or (select.args.get("where") is not None and not _load_ids_only(select.args["where"]))
    ):  # fmt: skip
        return None
    return count.alias


def per_load_counts(tree: exp.Expr, partitioned: Callable[[exp.Table], bool]) -> exp.Expr | None:
    """The statement with each per-load count of a partitioned lake table read from the
    manifest (`journal.lake.partition_counts`); None when it has none."""
    if not any(_counted_table(s, partitioned) for s in tree.find_all(exp.Select)):
        return None
    tree = tree.copy()
    for select in list(tree.find_all(exp.Select)):
        alias = _counted_table(select, partitioned)
        if alias is None:
            continue
        table = select.args["from_"].this
        counts = sqlglot.parse_one(manifest.partition_counts(table.db, table.name), read="duckdb")
        assert isinstance(counts, exp.Select)
        counts.expressions[1].set("alias", exp.to_identifier(alias))
        where = select.args.get("where")
        if where is not None:
            condition = where.this.copy()
            for column in condition.find_all(exp.Column):
                column.set("table", None)
            counts = counts.where(condition, copy=False)
        select.replace(counts)
    return tree


class TempCopies:
    """Arrow copies of Spark's temporary tables, each kept until its table changes."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._rows: dict[str, int] = {}
        self._copies: dict[tuple[str, str], tuple[int, pa.Table | None]] = {}

    def changed(self, name: str, rows: int | None) -> None:
        """The table was made, replaced or had rows deleted (`rows`: how many it holds now,
        None when unknown), or dropped (None)."""
        self._versions[name] = self._versions.get(name, 0) + 1
        for key in [k for k in self._copies if k[0] == name]:
            del self._copies[key]
        if rows is None:
            self._rows.pop(name, None)
        else:
            self._rows[name] = rows

    def small(self, name: str) -> bool:
        rows = self._rows.get(name)
        return rows is not None and rows <= MAX_ROWS

    def copy(
        self, name: str, fetch: Callable[[], pa.Table | None], scan: str = ""
    ) -> pa.Table | None:
        """The table's rows, or those of its scan `scan` (a condition's SQL), fetched from
        Spark when the table changed since the last copy (None: the fetch found too many)."""
        version = self._versions.get(name, 0)
        held = self._copies.get((name, scan))
        if held is not None and held[0] == version:
            return held[1]
        data = fetch()
        self._copies[(name, scan)] = (version, data)
        return data
