"""Staging rows of an erased person: the rows carrying its key, and the rows of every other
model typed from the raw records that carry it."""

from __future__ import annotations

import json
from collections.abc import Sequence

from anchorflow.config.project import Project
from anchorflow.warehouse import Warehouse, ident, table


def json_path(keys: Sequence[str]) -> str:
    return "$" + "".join("." + json.dumps(k) for k in keys)


def key_paths(project: Project, model: str, columns: Sequence[str]) -> list[str] | None:
    """The JSON paths in the record that a model's key columns are read from, or None when one
    of them is not read from the record itself (an array element)."""
    spec = project.staging[model]
    found = [spec.columns[c] for c in columns if c in spec.columns]
    if len(found) != len(columns) or any(c.in_element for c in found):
        return None
    return [json_path(c.keys) for c in found]


def erase_rows_with_key(
    warehouse: Warehouse,
    model: str,
    columns: Sequence[str],
    key_types: Sequence[str],
    key: Sequence[str],
) -> int:
    """Delete staging.<model>'s rows whose `columns` hold the key."""
    if not warehouse.table_exists("staging", model):
        return 0
    same = " AND ".join(
        f"{ident(c)} = TRY_CAST(? AS {t})" for c, t in zip(columns, key_types, strict=True)
    )
    return warehouse.insert(f"DELETE FROM {table('staging', model)} WHERE {same}", list(key))


def record_key_values(
    warehouse: Warehouse, project: Project, model: str, records: str
) -> list[str]:
    """The unique key values that staging.<model> reads from the raw `records`, as text the
    way the records hold them and the way staging types them: what the model's statistics may
    show as examples. A value that does not fit its type is taken as it is (never an error)."""
    spec = project.staging[model]
    keys = [k for k in spec.key_columns if k in spec.columns and not spec.columns[k].in_element]
    if not keys:
        return []
    texts = []
    for k in keys:
        text = warehouse.sql.json_text_at("record", "?")
        texts += [text, f"CAST(TRY_CAST({text} AS {spec.columns[k].type}) AS VARCHAR)"]
    found = warehouse.scalar(
        f"SELECT list(DISTINCT v) FILTER (v IS NOT NULL) FROM "
        f"(SELECT unnest([{', '.join(texts)}]) AS v FROM {records} AS r) AS k",
        [json_path(spec.columns[k].keys) for k in keys for _ in range(2)],
    )
    return [str(v) for v in found or []]


def record_column_values(
    warehouse: Warehouse, project: Project, model: str, records: str
) -> dict[str, list[str]]:
    """Per column of staging.<model> read from the record itself, every value the raw
    `records` hold for it, as text and as staging types it: what the column's minimum or maximum
    in the statistics may be."""
    spec = project.staging[model]
    found: dict[str, list[str]] = {}
    for name, column in spec.stored_columns.items():
        if column.in_element or not column.keys:
            continue
        text = warehouse.sql.json_text_at("record", "?")
        typed = f"CAST(TRY_CAST({text} AS {column.type}) AS VARCHAR)"
        values = warehouse.scalar(
            f"SELECT list(DISTINCT v) FILTER (v IS NOT NULL) FROM "
            f"(SELECT unnest([{text}, {typed}]) AS v FROM {records} AS r) AS k",
            [json_path(column.keys)] * 2,
        )
        if values:
            found[name] = [str(v) for v in values]
    return found


def erase_rows_typed_from(warehouse: Warehouse, project: Project, model: str, records: str) -> int:
    """Delete staging.<model>'s rows typed from the raw `records`, matched by the model's
    unique key read from those records."""
    spec = project.staging[model]
    keys = [k for k in spec.key_columns if k in spec.columns and not spec.columns[k].in_element]
    if not keys or not warehouse.table_exists("staging", model):
        return 0
    extracted = ", ".join(
        f"TRY_CAST({warehouse.sql.json_text_at('record', '?')} AS {spec.columns[k].type}) "
        f"AS {ident(k)}"
        for k in keys
    )
    same = " AND ".join(f"s.{ident(k)} = x.{ident(k)}" for k in keys)
    return warehouse.insert(
        f"DELETE FROM {table('staging', model)} AS s "
        f"USING (SELECT {extracted} FROM {records} AS r) AS x WHERE {same}",
        [json_path(spec.columns[k].keys) for k in keys],
    )
