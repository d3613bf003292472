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


def _cases(index: str, values: Sequence[str]) -> str:
    """`values[i]` for the row whose `index` is i (NULL when the list is empty)."""
    if not values:
        return "NULL"
    return f"CASE {index} " + " ".join(f"WHEN {i} THEN {v}" for i, v in enumerate(values)) + " END"


def _mapped(model: StagingModel, columns: list[TypedColumn], sql: Dialect) -> str:
    """One row per mapped column (`k.i` is its place in `columns`): its JSON types, counts,
    lengths and approximate distinct count over the sample `t`, and its range.

    The sample is read as one value per row and column (`u`, the columns' texts unpivoted)
    and aggregated by column in one pass: one aggregate per statistic instead of one per
    statistic and column, and one plan whatever the number of columns. The ranges compare
    typed values, so they are one row of `min`/`max` per ranged column (`r`)."""
    if not columns:
        return (
            "SELECT NULL::VARCHAR AS field, NULL::VARCHAR AS column_name, NULL::VARCHAR[] AS "
            "json_types, 0::BIGINT AS non_null, NULL::VARCHAR AS min_value, NULL::VARCHAR AS "
            "max_value, NULL::BIGINT AS min_length, NULL::BIGINT AS max_length, NULL::BIGINT AS "
            "approx_distinct, NULL::INTEGER AS i WHERE false"
        )
    ranged = [i for i, c in enumerate(columns) if c.type in RANGE_TYPES and not c.spec.pii]
    bounds = ", ".join(
        f"CAST({f}({ident(columns[i].name)}) AS VARCHAR) AS __{f}{i}"
        for i in ranged
        for f in ("min", "max")
    )
    lows = [f"r.__min{i}" if i in ranged else "NULL" for i in range(len(columns))]
    highs = [f"r.__max{i}" if i in ranged else "NULL" for i in range(len(columns))]
    text_typed = ", ".join(str(i) for i, c in enumerate(columns) if c.type in TEXT_TYPES) or "NULL"
    return f"""SELECT {_cases("k.i", [literal(field_path(model, c)) for c in columns])} AS field,
               {_cases("k.i", [literal(c.name) for c in columns])} AS column_name,
               y.json_types, coalesce(g.non_null, 0) AS non_null,
               {_cases("k.i", lows)} AS min_value, {_cases("k.i", highs)} AS max_value,
               CASE WHEN k.i IN ({text_typed}) THEN g.min_length END AS min_length,
               CASE WHEN k.i IN ({text_typed}) THEN g.max_length END AS max_length,
               coalesce(g.approx_distinct, 0) AS approx_distinct, k.i
        FROM k LEFT JOIN (
                SELECT i, count(v) AS non_null, min(length(v)) AS min_length,
                       max(length(v)) AS max_length, {sql.approx_distinct("v")} AS approx_distinct
                FROM u GROUP BY i) AS g ON g.i = k.i
             LEFT JOIN (
                SELECT i, list(ty ORDER BY ty) AS json_types
                FROM (SELECT DISTINCT i, ty FROM u WHERE ty <> 'NULL') AS d GROUP BY i
             ) AS y ON y.i = k.i
             CROSS JOIN ({f"SELECT {bounds} FROM t" if bounds else "SELECT NULL AS __none"}) AS r"""


def _unpivoted(columns: list[TypedColumn], texts: set[int], paths: list[str]) -> str:
    """The sample `t` as one row per sampled row and mapped column: `i` the column's place,
    `v` its value as text, `ty` its JSON type in the record."""
    values = [_text(c, i, texts) for i, c in enumerate(columns)]
    kinds = [_json_type(c, paths) for c in columns]
    return (
        f"SELECT k.i, {_cases('k.i', values)} AS v, {_cases('k.i', kinds)} AS ty "
        "FROM t CROSS JOIN k"
    )


def _frequent_values(columns: list[TypedColumn]) -> str:
    """Per column (but `pii` ones), its three most frequent values in the sample: counted
    exactly, ties broken by the value, so a sample gives the same list whatever order its rows
    are read in (`approx_top_k`'s order of equal counts follows the engine's threads)."""
    shown = ", ".join(str(i) for i, c in enumerate(columns) if not c.spec.pii) or "NULL"
    return f"""SELECT i, list(v ORDER BY n DESC, v) AS examples
        FROM (SELECT i, v, count(*) AS n,
                     row_number() OVER (PARTITION BY i ORDER BY count(*) DESC, v) AS place
              FROM u WHERE v IS NOT NULL AND i IN ({shown}) GROUP BY i, v) AS c
        WHERE place <= 3 GROUP BY i"""


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
    # (One row per mapped column: `k` numbers them; a model without mapped columns has none.)
    indices = ", ".join(f"({i})" for i in range(len(columns)))
    numbered = (
        f"SELECT * FROM (VALUES {indices}) AS v(i)" if columns else "SELECT 0 AS i WHERE false"
    )
    return insert_field_stats(
        warehouse,
        f"""WITH t AS (SELECT *, {types} AS __types, {sql.object_keys("__r", parents)} AS __keys
                   FROM {batch} WHERE __r IS NOT NULL),
             sampled AS (SELECT count(*) AS n FROM t),
             k AS ({numbered}),
             u AS ({_unpivoted(columns, texts, paths)}),
             mapped AS ({_mapped(model, columns, sql)}),
             frequent AS ({_frequent_values(columns)}),
             present AS ({sql.field_presence("t", "__keys", parents)})
        SELECT ?, ?, coalesce(m.field, p.field), m.column_name, ?, ?, s.n, m.json_types,
               coalesce(m.non_null, p.present), s.n - coalesce(m.non_null, p.present),
               m.min_value, m.max_value, m.min_length, m.max_length, m.approx_distinct,
               f.examples, now()::TIMESTAMP
        FROM mapped AS m FULL JOIN present AS p ON m.field = p.field
             LEFT JOIN frequent AS f ON f.i = m.i
             CROSS JOIN sampled AS s""",
        [batch_id, name, list(load_ids), model.sample_percent],
    )
