"""Field statistics: per typed batch, model and field, in one engine query over a sample.

The sample is deterministic (a hash of each record's load, file and line), so a rerun computes
the same numbers. Every mapped column gets its observed JSON types, non-null and null counts,
min/max (numbers and timestamps) or lengths (text), an approximate distinct count and up to
three frequent values (never for a column marked `pii`). Every other field the records hold, at
the levels the mapping describes (the top level and inside the objects it reads from), gets its
presence count, which is what drift detection needs to see a new or vanished field.
"""

from __future__ import annotations

from collections.abc import Sequence

from anchorflow.project import Project, StagingModel
from anchorflow.stage.batch import loads_filter, raw_of
from anchorflow.stage.sql import NUMBER_TYPES, TypedColumn, typed_select
from anchorflow.warehouse import Warehouse, ident, literal

RANGE_TYPES = NUMBER_TYPES | {"TIMESTAMP", "DATE", "TIMESTAMPTZ", "TIME"}


def sample_filter(percent: float) -> str:
    if percent >= 100:
        return "true"
    return f"hash(load_id, origin, line_no) % 10000 < {round(percent * 100)}"


def field_path(model: StagingModel, column: TypedColumn) -> str:
    path = column.spec.path
    if column.spec.in_element and model.explode:
        return model.explode.path + path
    return path


def _column_stats(model: StagingModel, column: TypedColumn, index: int) -> str:
    text = f"CAST(__text_{index} AS VARCHAR)"
    value = ident(column.name)
    ranged = column.type in RANGE_TYPES and not column.spec.pii
    lengths = column.type in {"VARCHAR", "JSON"}
    examples = "NULL" if column.spec.pii else f"approx_top_k({text}, 3)"
    return f"""struct_pack(
        field := {literal(field_path(model, column))},
        column_name := {literal(column.name)},
        json_types := list(DISTINCT __type_{index}) FILTER (__type_{index} <> 'NULL'),
        non_null := count(__text_{index}),
        min_value := {f"CAST(min({value}) AS VARCHAR)" if ranged else "NULL::VARCHAR"},
        max_value := {f"CAST(max({value}) AS VARCHAR)" if ranged else "NULL::VARCHAR"},
        min_length := {f"min(length({text}))" if lengths else "NULL::BIGINT"},
        max_length := {f"max(length({text}))" if lengths else "NULL::BIGINT"},
        approx_distinct := approx_count_distinct({text}),
        examples := CAST({examples} AS VARCHAR[]))"""


def record_field_stats(
    warehouse: Warehouse,
    project: Project,
    name: str,
    load_ids: Sequence[int],
    batch_id: int,
    records: str | None = None,
) -> int:
    """Insert the batch's statistics into meta.field_stats; returns the number of fields."""
    model = project.staging[name]
    if model.sample_percent <= 0:
        return 0
    where, params = loads_filter(load_ids)
    select, columns = typed_select(
        model,
        records or raw_of(project, model),
        f"{where} AND {sample_filter(model.sample_percent)}",
        stats=True,
    )
    structs = ", ".join(_column_stats(model, c, i) for i, c in enumerate(columns))
    mapped = (
        f"SELECT unnest([{structs}], recursive := true) FROM t"
        if columns
        else "SELECT NULL::VARCHAR AS field, NULL::VARCHAR AS column_name, NULL::VARCHAR[] AS "
        "json_types, 0::BIGINT AS non_null, NULL::VARCHAR AS min_value, NULL::VARCHAR AS "
        "max_value, NULL::BIGINT AS min_length, NULL::BIGINT AS max_length, NULL::BIGINT AS "
        "approx_distinct, NULL::VARCHAR[] AS examples WHERE false"
    )
    return warehouse.insert(
        f"""INSERT INTO meta.field_stats
        WITH t AS MATERIALIZED ({select}),
             sampled AS (SELECT count(*) AS n FROM t),
             mapped AS ({mapped}),
             present AS (SELECT f AS field, count(*) AS present
                         FROM (SELECT unnest(__keys) AS f FROM t) GROUP BY f)
        SELECT ?, ?, coalesce(m.field, p.field), m.column_name, ?, ?, s.n, m.json_types,
               coalesce(m.non_null, p.present), s.n - coalesce(m.non_null, p.present),
               m.min_value, m.max_value, m.min_length, m.max_length, m.approx_distinct,
               m.examples, now()::TIMESTAMP
        FROM mapped AS m FULL JOIN present AS p ON m.field = p.field CROSS JOIN sampled AS s""",
        [*params, batch_id, name, list(load_ids), model.sample_percent],
    )
