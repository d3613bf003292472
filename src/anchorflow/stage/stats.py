"""Field statistics: per typed batch, model and field, in one engine query over a sample.

The sample is deterministic (a hash of each row's load, file and line), so a rerun computes the
same numbers, and it is taken from the typed batch itself: the typed values are already there,
and the sampled rows carry their record's text (`__r`): one `json_type` call with every mapped
path and one `json_keys` call with the top level and the mapped parents read each sampled record
once more. Raw is not read again.

Every mapped column gets its observed JSON types (sorted), non-null and null counts, min/max
(numbers and timestamps) or lengths (text), an approximate distinct count and its three most
frequent values, counted exactly, equal counts in the order of the value (never for a column
marked `pii`): two runs over the same data record the same rows. Every other field the records
hold, at the levels the mapping describes (the top level and inside the objects it reads from),
gets its presence count, which is what drift detection needs to see a new or vanished field.
In an exploded model the rows are the array's elements; the JSON types of element fields are
not collected.
"""

from __future__ import annotations

from collections.abc import Sequence

from anchorflow.config.staging import StagingModel
from anchorflow.journal.field_stats import record_field_stats as insert_field_stats
from anchorflow.stage.sql import NUMBER_TYPES, TEXT_TYPES, TypedColumn, json_path, mapped_parents
from anchorflow.warehouse import Warehouse, ident, literal
from anchorflow.warehouse.dialect import Dialect

RANGE_TYPES = NUMBER_TYPES | {"TIMESTAMP", "DATE", "TIMESTAMPTZ", "TIME"}


def sample_filter(percent: float, sql: Dialect) -> str:
    if percent >= 100:
        return "true"
    return f"{sql.sample_hash('load_id', 'origin', 'line_no')} % 10000 < {round(percent * 100)}"


def field_path(model: StagingModel, column: TypedColumn) -> str:
    path = column.spec.path
    if column.spec.in_element and model.explode:
        return model.explode.path + path
    return path


def _record_paths(columns: list[TypedColumn]) -> list[str]:
    """The distinct record paths of the columns, in order: `__types[k]` is the k-th one's."""
    paths: list[str] = []
    for column in columns:
        if not column.spec.in_element and column.spec.path not in paths:
            paths.append(column.spec.path)
    return paths


def _json_type(column: TypedColumn, paths: list[str]) -> str:
    """The JSON type of the column's value in the sampled row's record."""
    if column.spec.in_element or not column.spec.keys:
        return "NULL::VARCHAR"
    return f"__types[{paths.index(column.spec.path) + 1}]"


def _text(column: TypedColumn, index: int, texts: set[int]) -> str:
    """The column's value as text: its text in the record where the batch kept it."""
    if column.spec.pii == "hash" or index not in texts:
        return f"CAST({ident(column.name)} AS VARCHAR)"  # text types: the text (or its hash)
    return f"CAST(__text_{index} AS VARCHAR)"


# The statistics of one mapped column, in the order of `MAPPED`.
MAPPED = ("json_types", "non_null", "min_value", "max_value", "min_length", "max_length",
          "approx_distinct")  # fmt: skip


def _column_stats(
    column: TypedColumn, index: int, texts: set[int], paths: list[str], sql: Dialect
) -> list[str]:
    """The column's aggregates over the sample `t`, in the order of `MAPPED`."""
    value = ident(column.name)
    text = _text(column, index, texts)
    kind = _json_type(column, paths)
    ranged = column.type in RANGE_TYPES and not column.spec.pii
    lengths = column.type in TEXT_TYPES
    return [
        f"list(DISTINCT {kind} ORDER BY {kind}) FILTER ({kind} <> 'NULL')",
        f"count({text})",
        f"CAST(min({value}) AS VARCHAR)" if ranged else "NULL::VARCHAR",
        f"CAST(max({value}) AS VARCHAR)" if ranged else "NULL::VARCHAR",
        f"min(length({text}))" if lengths else "NULL::BIGINT",
        f"max(length({text}))" if lengths else "NULL::BIGINT",
        sql.approx_distinct(text),
    ]


def _mapped(model: StagingModel, columns: list[TypedColumn], texts: set[int],
            paths: list[str], sql: Dialect) -> str:  # fmt: skip
    """One row per mapped column: its aggregates, computed in one pass over the sample `t`
    (into one row, `a`), then one row per column read from it."""
    if not columns:
        return (
            "SELECT NULL::VARCHAR AS field, NULL::VARCHAR AS column_name, NULL::VARCHAR[] AS "
            "json_types, 0::BIGINT AS non_null, NULL::VARCHAR AS min_value, NULL::VARCHAR AS "
            "max_value, NULL::BIGINT AS min_length, NULL::BIGINT AS max_length, NULL::BIGINT AS "
            "approx_distinct WHERE false"
        )
    aggregates = ", ".join(
        f"{aggregate} AS __c{i}_{name}"
        for i, c in enumerate(columns)
        for name, aggregate in zip(MAPPED, _column_stats(c, i, texts, paths, sql), strict=True)
    )
    rows = " UNION ALL ".join(
        f"SELECT {literal(field_path(model, c))} AS field, {literal(c.name)} AS column_name, "
        + ", ".join(f"__c{i}_{name} AS {name}" for name in MAPPED)
        + " FROM a"
        for i, c in enumerate(columns)
    )
    return f"WITH a AS (SELECT {aggregates} FROM t) {rows}"


def _frequent_values(columns: list[TypedColumn], texts: set[int]) -> str:
    """Per column (but `pii` ones), its three most frequent values in the sample: counted
    exactly, ties broken by the value, so a sample gives the same list whatever order its rows
    are read in (`approx_top_k`'s order of equal counts follows the engine's threads). One
    top-3 aggregate over the sample (`t`) per column: half the time of one aggregate over all
    the columns' values unnested."""
    tops = [
        f"""(SELECT {literal(column.name)} AS column_name,
                   list(__v ORDER BY __n DESC, __v) AS examples
            FROM (SELECT {text} AS __v, count(*) AS __n FROM t WHERE {text} IS NOT NULL
                  GROUP BY __v ORDER BY __n DESC, __v LIMIT 3) AS top)"""
        for index, column in enumerate(columns)
        if not column.spec.pii
        for text in [_text(column, index, texts)]
    ]
    empty = "SELECT NULL::VARCHAR AS column_name, NULL::VARCHAR[] AS examples WHERE false"
    return " UNION ALL ".join(tops) or empty


def record_field_stats(
    warehouse: Warehouse,
    model: StagingModel,
    name: str,
    batch: str,
    columns: list[TypedColumn],
    load_ids: Sequence[int],
    batch_id: int,
) -> int:
    """Record the typed batch's statistics in the journal; returns the number of fields.

    `batch` is the typed batch built with a sample (rows whose `__r` is set).
    """
    if model.sample_percent <= 0:
        return 0
    texts = {i for i, c in enumerate(columns) if c.can_fail}
    paths = _record_paths(columns)
    sql = warehouse.sql
    listed = ", ".join(json_path(p.split(".")) for p in paths)
    types = (
        sql.json_types_at("__r", f"CAST([{listed}] AS VARCHAR[])") if paths else "NULL::VARCHAR[]"
    )
    parents = [".".join(p) for p in mapped_parents(model)]
    return insert_field_stats(
        warehouse,
        f"""WITH t AS (SELECT *, {types} AS __types, {sql.object_keys("__r", parents)} AS __keys
                   FROM {batch} WHERE __r IS NOT NULL),
             sampled AS (SELECT count(*) AS n FROM t),
             mapped AS ({_mapped(model, columns, texts, paths, sql)}),
             frequent AS ({_frequent_values(columns, texts)}),
             present AS (SELECT f AS field, count(*) AS present
                         FROM (SELECT unnest({sql.field_paths("__keys", parents)}) AS f FROM t) AS k
                         GROUP BY f)
        SELECT ?, ?, coalesce(m.field, p.field), m.column_name, ?, ?, s.n, m.json_types,
               coalesce(m.non_null, p.present), s.n - coalesce(m.non_null, p.present),
               m.min_value, m.max_value, m.min_length, m.max_length, m.approx_distinct,
               f.examples, now()::TIMESTAMP
        FROM mapped AS m FULL JOIN present AS p ON m.field = p.field
             LEFT JOIN frequent AS f ON f.column_name = m.column_name
             CROSS JOIN sampled AS s""",
        [batch_id, name, list(load_ids), model.sample_percent],
    )
