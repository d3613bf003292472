"""`meta.transfers`: which loads each staging model has typed, in which batch, with what counts;
`meta.staging_mappings`: the mapping each staging table's rows were typed with.

A batch's transfer rows commit with its staging rows, so "typed" and "in staging" never differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from anchorflow.journal.schema import delete_rows, utcnow
from anchorflow.warehouse import Warehouse


@dataclass(frozen=True)
class Pending:
    """A committed load that a staging model has not typed yet."""

    load_id: int
    rows: int
    loaded_at: datetime
    window_start: datetime | None = None  # the time its window covers, where it has one


@dataclass(frozen=True)
class ModelTotals:
    """What a staging model holds, summed over its transfer log."""

    model: str
    loads: int
    staged: int
    type_errors: int
    quarantined: int


def pending_loads(warehouse: Warehouse, source: str, stream: str, model: str) -> list[Pending]:
    """Committed loads of the stream that `model` has not typed, oldest first."""
    rows = warehouse.query(
        """SELECT l.load_id, l.rows, l.finished_at, l.window_start FROM meta.loads AS l
        WHERE l.source = ? AND l.stream = ? AND l.status = 'committed'
          AND NOT EXISTS (SELECT 1 FROM meta.transfers AS t
                          WHERE t.load_id = l.load_id AND t.model = ?)
        ORDER BY l.load_id""",
        [source, stream, model],
    )
    return [Pending(int(r[0]), int(r[1] or 0), r[2], r[3]) for r in rows]


def typed_loads(warehouse: Warehouse, model: str) -> list[int]:
    rows = warehouse.query(
        "SELECT load_id FROM meta.transfers WHERE model = ? ORDER BY load_id", [model]
    )
    return [int(r[0]) for r in rows]


def last_typed_at(warehouse: Warehouse, model: str) -> datetime | None:
    """When the model last typed a load with rows (empty loads are typed whenever they come:
    they are no run of the model, and must not restart its `max_age`)."""
    value = warehouse.scalar(
        "SELECT max(t.typed_at) FROM meta.transfers AS t JOIN meta.loads AS l USING (load_id) "
        "WHERE t.model = ? AND l.rows > 0",
        [model],
    )
    return value if isinstance(value, datetime) else None


def next_batch_id(warehouse: Warehouse) -> int:
    # A batch's statistics are written with its transfer rows, and forgotten with them.
    return int(warehouse.scalar("SELECT coalesce(max(batch_id), 0) + 1 FROM meta.transfers"))


def record_transfers(
    warehouse: Warehouse, model: str, staging_table: str, load_ids: Sequence[int], batch_id: int
) -> None:
    """One row per load: it is typed, with what its rows became (counted per load from
    `staging_table`, the quarantine and the type errors of the model)."""
    ids = list(load_ids)
    lo, hi = min(ids), max(ids)
    warehouse.execute(
        f"""INSERT INTO meta.transfers
        WITH loads AS (SELECT unnest(CAST(? AS BIGINT[])) AS load_id),
             staged AS (SELECT load_id, count(*) AS n FROM {staging_table}
                        WHERE load_id BETWEEN ? AND ? AND list_contains(?, load_id) GROUP BY 1),
             quarantined AS (SELECT load_id, count(*) AS n FROM meta.quarantine
                             WHERE model = ? AND list_contains(?, load_id) GROUP BY 1),
             errors AS (SELECT load_id, count(*) AS n FROM meta.type_errors
                        WHERE model = ? AND list_contains(?, load_id) GROUP BY 1)
        SELECT l.load_id, ?, ?, coalesce(s.n, 0), coalesce(q.n, 0), coalesce(e.n, 0), ?
        FROM loads AS l LEFT JOIN staged AS s USING (load_id)
             LEFT JOIN quarantined AS q USING (load_id) LEFT JOIN errors AS e USING (load_id)""",
        [ids, lo, hi, ids, model, ids, model, ids, model, batch_id, utcnow()],
    )


def delete_transfers(
    warehouse: Warehouse, load_ids: Sequence[int] | None = None, model: str | None = None
) -> int:
    return delete_rows(warehouse, "meta.transfers", load_ids, model=model)


def model_totals(warehouse: Warehouse) -> list[ModelTotals]:
    rows = warehouse.query(
        "SELECT model, count(DISTINCT load_id), sum(staged), sum(type_errors), "
        "sum(quarantined) FROM meta.transfers GROUP BY model ORDER BY model"
    )
    return [ModelTotals(str(r[0]), *(int(v or 0) for v in r[1:])) for r in rows]


def known_mapping(warehouse: Warehouse, model: str) -> str | None:
    found = warehouse.scalar("SELECT mapping FROM meta.staging_mappings WHERE model = ?", [model])
    return str(found) if found is not None else None


def store_mapping(warehouse: Warehouse, model: str, mapping: str) -> None:
    warehouse.execute("DELETE FROM meta.staging_mappings WHERE model = ?", [model])
    warehouse.execute("INSERT INTO meta.staging_mappings VALUES (?, ?)", [model, mapping])
