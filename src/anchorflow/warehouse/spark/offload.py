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

`TempCopies` keeps the Arrow copy of each temporary table until the table changes (replaced,
rows deleted, dropped, rolled back), keyed by a version the adapter bumps at each change.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.generator import Generator

from anchorflow.warehouse.dialect import Dialect

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


def translatable(tree: exp.Expr) -> bool:
    """Whether every `af_*` fragment of the statement has a canonical twin."""
    return all(
        a.name.lower() in _TWINS
        for a in tree.find_all(exp.Anonymous)
        if a.name.lower().startswith("af_")
    )


def to_journal(tree: exp.Expr, temps: set[str]) -> str:
    """The statement as the journal runs it: fragments in the canonical spelling, temporary
    tables named bare (the Arrow copies registered under their names)."""
    tree = tree.copy()
    for table in tree.find_all(exp.Table):
        if table.db == "temp" and table.name in temps:
            table.set("db", None)
    return tree.sql(dialect=_Canonical)


class TempCopies:
    """Arrow copies of Spark's temporary tables, each kept until its table changes."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._rows: dict[str, int] = {}
        self._copies: dict[str, tuple[int, pa.Table]] = {}

    def changed(self, name: str, rows: int | None) -> None:
        """The table was made, replaced or had rows deleted (`rows`: how many it holds now,
        None when unknown), or dropped (None)."""
        self._versions[name] = self._versions.get(name, 0) + 1
        self._copies.pop(name, None)
        if rows is None:
            self._rows.pop(name, None)
        else:
            self._rows[name] = rows

    def small(self, name: str) -> bool:
        rows = self._rows.get(name)
        return rows is not None and rows <= MAX_ROWS

    def copy(self, name: str, fetch: Callable[[], pa.Table]) -> pa.Table:
        """The table's rows (fetched from Spark when it changed since the last copy)."""
        version = self._versions.get(name, 0)
        held = self._copies.get(name)
        if held is not None and held[0] == version:
            return held[1]
        data = fetch()
        self._copies[name] = (version, data)
        return data
