"""`meta.field_stats`: per typed batch, model and field, what a deterministic sample held.

Written by staging in the batch's transaction (`record_field_stats`), read by drift detection
and by `anchorflow fields`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anchorflow.journal.schema import delete_rows
from anchorflow.warehouse import Warehouse

# The columns, in order, that the SELECT given to `record_field_stats` produces.
COLUMNS = (
    "batch_id, model, field, column_name, load_ids, sample_percent, sampled, json_types, "
    "non_null, nulls, min_value, max_value, min_length, max_length, approx_distinct, examples, "
    "computed_at"
)


@dataclass(frozen=True)
class FieldStat:
    """One field of a batch's sample."""

    field: str
    column: str | None  # the staging column it is mapped to (None: not mapped)
    sampled: int
    json_types: list[str]
    non_null: int
    nulls: int
    min_value: str | None
    max_value: str | None
    min_length: int | None
    max_length: int | None
    approx_distinct: int | None
    examples: list[str]


def record_field_stats(warehouse: Warehouse, select: str, params: Sequence[object]) -> int:
    """Insert the rows of `select` (columns `COLUMNS`); returns how many fields it described."""
    return warehouse.insert(f"INSERT INTO meta.field_stats ({COLUMNS}) {select}", list(params))


def batch_stats(warehouse: Warehouse, model: str, batch_id: int) -> dict[str, tuple[Any, ...]]:
    """field → (field, column_name, json_types, non_null, nulls, sampled) of one batch."""
    rows = warehouse.query(
        "SELECT field, column_name, json_types, non_null, nulls, sampled FROM meta.field_stats "
        "WHERE model = ? AND batch_id = ?",
        [model, batch_id],
    )
    return {r[0]: r for r in rows}


# A batch's place in time: the newest window start of its loads, then its id (windows without a
# time, such as files, are in typing order). A backfill's older hours take their own place.
_BATCH_PLACES = """SELECT t.batch_id,
        (coalesce(max(l.window_start), TIMESTAMP '-infinity'), t.batch_id) AS place
    FROM meta.transfers AS t JOIN meta.loads AS l USING (load_id)
    WHERE t.model = ? GROUP BY t.batch_id"""


def batch_before(
    warehouse: Warehouse, model: str, batch_id: int, at: datetime | None
) -> int | None:
    """The model's batch that sampled any row just before batch `batch_id`, whose loads' newest
    window starts `at` (None: windows without a time), in time: what the batch is compared
    with, so that older hours replayed after newer ones are compared with the hours before
    them, not with the newest. (`at` is given: a window typed in its commit has no load record
    yet.)"""
    found = warehouse.scalar(
        f"""WITH places AS ({_BATCH_PLACES})
        SELECT batch_id FROM places
        WHERE place < (coalesce(CAST(? AS TIMESTAMP), TIMESTAMP '-infinity'), CAST(? AS BIGINT))
        AND batch_id IN (
            SELECT batch_id FROM meta.field_stats WHERE model = ? AND sampled > 0)
        ORDER BY place DESC LIMIT 1""",
        [model, at, batch_id, model],
    )
    return int(found) if found is not None else None


def is_first_batch(warehouse: Warehouse, model: str, batch_id: int) -> bool:
    """No other batch of the model sampled any row: this one is its baseline."""
    return not warehouse.scalar(
        "SELECT count(*) FROM meta.field_stats WHERE model = ? AND batch_id <> ? AND sampled > 0",
        [model, batch_id],
    )


def seen_types(warehouse: Warehouse, model: str, batch_id: int) -> dict[str, list[str]]:
    """field → every JSON type its values had in the model's other batches (older or newer: a
    type is new only if no batch ever had it)."""
    rows = warehouse.query(
        "SELECT field, list(DISTINCT t ORDER BY t) FROM (SELECT field, unnest(json_types) AS t "
        "FROM meta.field_stats WHERE model = ? AND batch_id <> ? AND json_types IS NOT NULL) "
        "AS s GROUP BY field",
        [model, batch_id],
    )
    return {str(f): list(t or []) for f, t in rows}


def seen_fields(warehouse: Warehouse, model: str, batch_id: int) -> set[str]:
    """Fields that held a value in some other batch of the model (older or newer)."""
    rows = warehouse.query(
        "SELECT DISTINCT field FROM meta.field_stats WHERE model = ? AND batch_id <> ? "
        "AND non_null > 0",
        [model, batch_id],
    )
    return {str(r[0]) for r in rows}


def latest_stats(warehouse: Warehouse, model: str) -> tuple[int | None, list[int], list[FieldStat]]:
    """The model's latest batch: its id, its loads, and its fields (mapped first)."""
    batch = warehouse.scalar("SELECT max(batch_id) FROM meta.field_stats WHERE model = ?", [model])
    if batch is None:
        return None, [], []
    rows = warehouse.query(
        """SELECT field, column_name, sampled, json_types, non_null, nulls, min_value, max_value,
                  min_length, max_length, approx_distinct, examples
        FROM meta.field_stats WHERE model = ? AND batch_id = ?
        ORDER BY column_name IS NULL, field, column_name""",
        [model, batch],
    )
    loads = warehouse.scalar(
        "SELECT load_ids FROM meta.field_stats WHERE model = ? AND batch_id = ? LIMIT 1",
        [model, batch],
    )
    fields = [
        FieldStat(r[0], r[1], int(r[2]), list(r[3] or []), int(r[4]), int(r[5]), r[6], r[7],
                  r[8], r[9], r[10], list(r[11] or []))
        for r in rows
    ]  # fmt: skip
    return int(batch), [int(x) for x in loads or []], fields


def delete_field_stats(
    warehouse: Warehouse, load_ids: Sequence[int] | None = None, model: str | None = None
) -> int:
    """Delete the statistics of batches that read any of these loads, or of one model."""
    return delete_rows(
        warehouse,
        "meta.field_stats",
        load_ids,
        "list_has_any(load_ids, CAST(? AS BIGINT[]))",
        model=model,
    )


def scrub_field_stats(warehouse: Warehouse, values: Sequence[str]) -> int:
    """Remove `values` from every example list and min/max of the statistics, in one statement
    however many there are (a person's every event id)."""
    kept = warehouse.sql.list_without("examples", "?")
    clear, condition, params = _extremes(values)
    return warehouse.insert(
        f"UPDATE meta.field_stats SET examples = {kept}, {clear} "
        f"WHERE list_has_any(examples, CAST(? AS VARCHAR[])) OR {condition}",
        [list(values), *params, list(values), *params],
    )


def scrub_record_values(
    warehouse: Warehouse, model: str, held: dict[str, list[str]]
) -> dict[str, int]:
    """Clear each column's minimum and maximum where they equal a value an erased record held
    for it (`held`: column → values): the extreme may have been that person's (an id). Rows
    changed per journal table."""
    changed = 0
    for column, values in held.items():
        clear, condition, params = _extremes(values)
        changed += warehouse.insert(
            f"UPDATE meta.field_stats SET {clear} "
            f"WHERE model = ? AND column_name = ? AND ({condition})",
            [*params, model, column, *params],
        )
    return {"meta.field_stats": changed}


def _extremes(values: Sequence[str]) -> tuple[str, str, list[object]]:
    """(SET clearing min/max equal to one of `values`, the condition that one is, their
    parameters). Compared as text and as a number: an id `100000299` is the maximum
    `100000299.0` of a DOUBLE field on one engine and `100000299` on another."""
    texts = list(values)
    numbers = [number for number in map(_number, values) if number is not None]
    low, high = (
        f"(list_contains(?, {c}) OR list_contains(?, TRY_CAST({c} AS DOUBLE)))"
        for c in ("min_value", "max_value")
    )
    clear = (
        f"min_value = CASE WHEN {low} THEN NULL ELSE min_value END, "
        f"max_value = CASE WHEN {high} THEN NULL ELSE max_value END"
    )
    return clear, f"{low} OR {high}", [texts, numbers, texts, numbers]


def _number(text: str) -> float | None:
    """The number a text spells, if it is a finite one."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
