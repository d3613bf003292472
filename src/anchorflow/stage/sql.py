"""The SQL of typing, generated from a model's mapping: one statement per model and batch.

The engine parses each record once (the dialect's `parse_record`), reading every top-level
key the mapping (or the selector, or the exploded array) needs, as text, or as JSON when
something inside it is wanted. Nested values are read from their parent's JSON, the selector
filters on the same structure, and typing is a cast. The value's text is kept next to its typed
value wherever the cast can fail, so a value that does not fit its type is visible instead of
vanishing into NULL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from anchorflow.config.staging import Column, StagingModel, parse_selector, selector_paths
from anchorflow.warehouse import ident, literal
from anchorflow.warehouse.dialect import Dialect

TEXT_TYPES = {"VARCHAR", "TEXT", "JSON"}
INTEGER_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
FLOAT_TYPES = {"DOUBLE", "FLOAT", "REAL"}
NUMBER_TYPES = INTEGER_TYPES | FLOAT_TYPES | {"DECIMAL"}
SALT_VARIABLE = "anchorflow_pii_salt"
ELEMENT = "__e"


def json_path(keys: Sequence[str]) -> str:
    return literal("$" + "".join(f'."{key}"' for key in keys))


def cast(text: str, sql_type: str, sql: Dialect) -> str:
    """`text` as `sql_type`, NULL when it does not fit (never rounded, never shifted)."""
    if sql_type in TEXT_TYPES:
        return text
    if sql_type in INTEGER_TYPES:  # a cast would round 1.5 to 2: a fraction is an error
        number = sql.try_cast(text, "DOUBLE")
        return f"CASE WHEN {sql.is_whole(number)} THEN {sql.try_cast(text, sql_type)} END"
    if sql_type in FLOAT_TYPES:  # NaN, Infinity and 1e400 are no numbers a sum can take
        value = sql.try_cast(text, sql_type)
        return f"CASE WHEN {sql.is_finite(value)} THEN {value} END"
    if sql_type == "TIMESTAMP":  # an offset or zone is applied (to UTC), not dropped
        return sql.utc_timestamp(text)
    if sql_type.startswith("DECIMAL"):  # more digits than the scale would be rounded away
        value = sql.try_cast(text, sql_type)
        return f"CASE WHEN {value} = {sql.try_cast(text, 'DOUBLE')} THEN {value} END"
    if sql_type == "DATE":  # a time of day would be dropped
        value = sql.try_cast(text, "DATE")
        return f"CASE WHEN {value} = {sql.try_cast(text, 'TIMESTAMP')} THEN {value} END"
    return sql.try_cast(text, sql_type)


@dataclass(frozen=True)
class TypedColumn:
    name: str
    spec: Column
    text: str  # the value as the record holds it (text, or JSON for JSON columns)
    sql: Dialect

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def typed(self) -> str:
        if self.spec.pii == "hash":
            return self.sql.sha256_hex(f"{self.sql.variable(SALT_VARIABLE)} || {self.text}")
        return cast(self.text, self.type, self.sql)

    @property
    def can_fail(self) -> bool:
        """Its value can be present and still not make it (a failed cast, a missing value)."""
        return self.type not in TEXT_TYPES or not self.spec.nullable


def mapped_parents(model: StagingModel) -> list[list[str]]:
    """The objects the mapping reads keys inside of (their keys are fields too), in order."""
    found: list[list[str]] = []
    for spec in model.columns.values():
        if not spec.in_element:
            found += [spec.keys[:d] for d in range(1, len(spec.keys)) if spec.keys[:d] not in found]
    return found


class Structure:
    """The top-level keys a model reads, and how (text or JSON), plus text expressions."""

    def __init__(
        self, model: StagingModel, sql: Dialect, extra_paths: Sequence[list[str]] = ()
    ) -> None:
        self.model = model
        self.sql = sql
        wanted: dict[str, str] = {}
        for spec in model.stored_columns.values():
            if spec.in_element or not spec.keys:
                continue
            whole_text = len(spec.keys) == 1 and spec.type != "JSON"
            self._want(wanted, spec.keys[0], "VARCHAR" if whole_text else "JSON")
        for path in [*self.selector_paths, *extra_paths]:
            self._want(wanted, path[0], "VARCHAR" if len(path) == 1 else "JSON")
        if model.explode:
            self._want(wanted, model.explode.keys[0], "JSON")
        self.keys = wanted

    @staticmethod
    def _want(wanted: dict[str, str], key: str, how: str) -> None:
        if wanted.get(key) != "JSON":
            wanted[key] = how

    @property
    def selector_paths(self) -> list[list[str]]:
        return selector_paths(self.model.selector)

    def transform(self) -> str:
        return literal(json.dumps(self.keys))

    def parse(self, text: str) -> str:
        """The record `text` parsed once into the structure the other expressions read (`s`)."""
        return self.sql.parse_record(text, self.keys)

    def text(self, keys: Sequence[str], as_json: bool = False, base: str = "s") -> str:
        """The value at `keys` (from the record's structure `s`) as text, or as JSON."""
        head = self.sql.record_field(base, keys[0], self.keys[keys[0]])
        if len(keys) == 1 and (self.keys[keys[0]] == "VARCHAR" or as_json):
            return head
        if len(keys) == 1:  # the key is read as JSON for another column: its text
            return self.sql.json_text(head)
        if as_json:
            return self.sql.json_value(head, keys[1:])
        return self.sql.json_text(head, keys[1:])

    def element_text(self, keys: Sequence[str], as_json: bool) -> str:
        if not keys:
            return ELEMENT if as_json else self.sql.json_text(ELEMENT)
        if as_json:
            return self.sql.json_value(ELEMENT, keys)
        return self.sql.json_text(ELEMENT, keys)

    def value(self, spec: Column, as_json: bool) -> str:
        if spec.in_element:
            return self.element_text(spec.keys, as_json)
        return self.text(spec.keys, as_json)

    def columns(self) -> list[TypedColumn]:
        return [
            TypedColumn(name, spec, self.value(spec, spec.type == "JSON"), self.sql)
            for name, spec in self.model.stored_columns.items()
        ]

    def selector(self) -> str | None:
        return self.selector_sql(self.model.selector) if self.model.selector else None

    def selector_sql(self, selector: str) -> str:
        """A selector over the structure: each field reference becomes its text.

        Fields are text, so a field compared with a number is read as a number first. Casts
        are TRY_CASTs: a value that is not a number (`'n/a'`), or does not fit an explicit cast,
        makes the selector NULL, so the record is not selected, instead of failing the batch.
        """
        tree = parse_selector(selector)

        def lenient(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast):
                return exp.TryCast(this=node.this, to=node.args["to"])
            if isinstance(node, NUMERIC_COMPARISONS):
                for side, other in (("this", "expression"), ("expression", "this")):
                    target = _literal_type(node.args[other])
                    if target and _literal_type(node.args[side]) is None:
                        node.set(side, _try_cast(node.args[side], target))
            elif isinstance(node, exp.In | exp.Between):
                values = node.expressions if isinstance(node, exp.In) else [
                    node.args["low"], node.args["high"]]  # fmt: skip
                types = {_literal_type(v) for v in values}
                if len(types) == 1 and None not in types:
                    node.set("this", _try_cast(node.this, types.pop() or ""))
                elif isinstance(node, exp.In):  # mixed: compare as text
                    node.set("expressions", [_as_text(v) for v in values])
            elif isinstance(node, exp.Not | exp.And | exp.Or):
                for key in ("this", "expression"):  # a bare field used as a condition
                    if _is_field(node.args.get(key)):
                        node.set(key, _try_cast(node.args[key], "BOOLEAN"))
            return node

        def rewrite(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column):
                keys = [p.name for p in node.parts]
                return sqlglot_raw(self.text(keys))
            return node

        tree = tree.transform(lenient)
        if _is_field(tree):  # the whole selector is a field: `is_paid`
            tree = _try_cast(tree, "BOOLEAN")
        return tree.transform(rewrite).sql("duckdb")


NUMERIC_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _literal_type(node: exp.Expression | None) -> str | None:
    """DOUBLE or BOOLEAN for a number or boolean literal; VARCHAR for a string; else None."""
    if isinstance(node, exp.Neg):
        node = node.this
    if isinstance(node, exp.Boolean):
        return "BOOLEAN"
    if isinstance(node, exp.Literal):
        return "DOUBLE" if node.is_number else "VARCHAR"
    return None


def _is_field(node: exp.Expression | None) -> bool:
    return isinstance(node, exp.Column | exp.Paren) and (
        isinstance(node, exp.Column) or isinstance(node.this, exp.Column)
    )


def _try_cast(node: exp.Expression, sql_type: str) -> exp.Expression:
    """Fields are text: read as `sql_type` where they meet a literal of it, NULL if they do not
    fit (so the record is not selected), never an error that stops the batch."""
    if sql_type == "VARCHAR":
        return node
    return exp.TryCast(this=node.copy(), to=exp.DataType.build(sql_type))


def _as_text(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return exp.Literal.string("-" + node.this.this)
    if isinstance(node, exp.Boolean):
        return exp.Literal.string("true" if node.this else "false")
    if isinstance(node, exp.Literal):
        return exp.Literal.string(node.this)
    return node


def _string_text(value: exp.Expression) -> str | None:
    """The JSON text a record must hold when a field read as text equals this literal.

    Only for a literal that only a JSON string can produce, without escapes: a field read as
    text is also the text of a number, boolean, null, object or array, whose JSON spelling can
    differ (1e2 is read as 100.0).
    """
    if not isinstance(value, exp.Literal) or not value.is_string:
        return None
    try:
        json.loads(value.this)
        return None  # the text of a JSON number, true, false, null, object or array
    except ValueError:
        pass
    text = json.dumps(value.this, ensure_ascii=False)
    if "\\" in text[1:-1] or value.this.lstrip().startswith(("{", "[")):
        return None
    return text


def _necessary(node: exp.Expr) -> str | None:
    """A condition on the record's text that every record meeting `node` meets, or None."""
    if isinstance(node, exp.Paren):
        return _necessary(node.this)
    if isinstance(node, exp.EQ):
        left, right = node.this, node.expression
        if isinstance(left, exp.Column) or isinstance(right, exp.Column):
            text = _string_text(right if isinstance(left, exp.Column) else left)
            return f"strpos(record, {literal(text)}) > 0" if text else None
        return None
    if isinstance(node, exp.In) and isinstance(node.this, exp.Column) and node.expressions:
        texts = [_string_text(v) for v in node.expressions]
        if all(texts):
            return " OR ".join(f"strpos(record, {literal(t)}) > 0" for t in texts if t)
        return None
    if isinstance(node, exp.And):
        found = [c for c in (_necessary(node.this), _necessary(node.expression)) if c]
        return " AND ".join(f"({c})" for c in found) if found else None
    if isinstance(node, exp.Or):
        both = [_necessary(node.this), _necessary(node.expression)]
        return " OR ".join(f"({c})" for c in both if c) if all(both) else None
    return None


def text_prefilter(selector: str | None) -> str | None:
    """A cheap test on the record's text that skips parsing records the selector cannot match.

    For `model = 'x'` (or IN, AND, OR of such), a record whose model is x holds the text "x"
    literally, unless it uses JSON escapes; a record with a backslash anywhere is therefore
    always parsed. So the test never drops a record the selector would take.
    """
    if not selector:
        return None
    condition = _necessary(parse_selector(selector))
    return f"(({condition}) OR strpos(record, '\\') > 0)" if condition else None


def sqlglot_raw(sql: str) -> exp.Expression:
    """An already generated SQL fragment, kept as is inside a sqlglot tree."""
    return exp.Var(this=sql)


def typed_select(
    model: StagingModel, sql: Dialect, source: str, where: str, sample: str | None = None
) -> tuple[str, list[TypedColumn]]:
    """The typed batch: load_id, origin, line_no, [position], typed columns, error flags.

    `__text_<i>` keeps the text of a column whose cast can fail, on the rows where it did not
    make it (and on sampled rows); `__bad` says some value of the row did not fit (a failed
    cast, or a NULL in a column that is not nullable).

    With `sample` (a condition on load_id, origin and line_no), the rows it picks also carry
    `__r`, their record's text, for the field statistics.
    """
    structure = Structure(model, sql)
    columns = structure.columns()
    prefilter = text_prefilter(model.selector)
    if prefilter:
        where = f"{where} AND {prefilter}"
    transform = structure.parse("record")
    kept = f", CASE WHEN {sample} THEN record END AS __r" if sample else ""
    parsed = f"""SELECT load_id, origin, line_no, {transform} AS s{kept}
        FROM {source} AS __source WHERE {where}{sql.computed_once()}"""
    selector = structure.selector()
    if selector:
        # Materialized, so the engine parses each record once: pushed into the scan's filter,
        # the selector would parse every record, and the projection the selected ones again.
        parsed = f"""WITH __parsed AS MATERIALIZED ({parsed})
            SELECT * FROM __parsed WHERE coalesce({selector}, false)"""
    position = ""
    extras = ", __r" if sample else ""
    if model.explode:
        parsed, position = _exploded(model, structure, parsed, extras)
        extras += ", __not_array"
    failing = [(i, c) for i, c in enumerate(columns) if c.can_fail]
    typed = ", ".join(f"{c.typed} AS {ident(c.name)}" for c in columns)
    texts = "".join(f", {c.text} AS __t_{i}" for i, c in failing)
    # A text is kept only where it is needed: for a value that did not make it, and for the
    # statistics' sample. Copying every text into the batch would cost as much as typing.
    wanted = " OR __r IS NOT NULL" if sample else ""
    kept_texts = "".join(
        f", CASE WHEN {ident(c.name)} IS NULL{wanted} THEN __t_{i} END AS __text_{i}"
        for i, c in failing
    )
    checks = [bad_value(c, i, text="__t_") for i, c in failing]
    names = ", ".join(ident(c.name) for c in columns)
    select = f"""SELECT load_id, origin, line_no{position}, {names}{kept_texts}{extras},
               {" OR ".join(checks) or "false"} AS __bad
        FROM (SELECT load_id, origin, line_no{position}, {typed}{texts}{extras}
              FROM ({parsed}) AS __p{sql.computed_once()}) AS __t"""
    return select, columns


def _exploded(
    model: StagingModel, structure: Structure, parsed: str, extras: str
) -> tuple[str, str]:
    """The parsed rows, one per element of the exploded array, and the position column."""
    assert model.explode is not None
    sql = structure.sql
    array = structure.text(model.explode.keys, as_json=True)
    kind = sql.json_type(array)
    # No array (missing, or JSON null) gives no rows; a value that is not an array gives
    # one row flagged `__not_array`, which is quarantined with the reason, never dropped.
    items = (f"CASE WHEN {kind} = 'ARRAY' THEN {sql.json_array_elements(array)} "
             f"WHEN {kind} <> 'NULL' THEN {sql.json_null_list()} END")  # fmt: skip
    position = f", {ident(model.explode.position)}"
    exploded = f"""SELECT load_id, origin, line_no, s{extras}, unnest({items}) AS {ELEMENT},
               CAST(generate_subscripts({items}, 1) - 1 AS INTEGER){position[1:]},
               coalesce({kind} NOT IN ('ARRAY', 'NULL'), false) AS __not_array
        FROM ({parsed}) AS __x"""
    return exploded, position


def bad_value(column: TypedColumn, index: int, row: str = "", text: str = "__text_") -> str:
    """The row's value of this column did not make it: a failed cast or a missing value.

    `row` qualifies the batch's columns (`n.`) where the batch is joined.
    """
    failed = f"({row}{text}{index} IS NOT NULL AND {row}{ident(column.name)} IS NULL)"
    if column.spec.nullable:
        return failed
    return f"({row}{ident(column.name)} IS NULL)"


def expected(column: TypedColumn, index: int) -> str:
    """Why the value of `bad_value` is bad, as SQL text."""
    if column.spec.nullable:
        return literal(column.type)
    return f"CASE WHEN __text_{index} IS NULL THEN 'NOT NULL' ELSE {literal(column.type)} END"
