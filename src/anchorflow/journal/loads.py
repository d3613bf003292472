"""`meta.loads`: one row per committed load of a source window.

A load is `committed` until a later load of the same window (same source, stream and window key)
replaces it; then it is `replaced` and its rows are gone from every layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anchorflow.journal.schema import utcnow
from anchorflow.warehouse import Warehouse


@dataclass(frozen=True)
class LoadRecord:
    load_id: int
    source: str
    stream: str
    window_key: str
    window_start: datetime | None
    window_end: datetime | None
    origin: str
    files: int
    rows: int
    bytes: int
    quarantined: int
    staged: int
    type_errors: int
    started_at: datetime
    note: str | None = None  # something suspicious about the delivery (an empty archive)
    suppressed: int = 0  # records not landed: they carry a key erased by `forget`
    run_id: int | None = None  # the command that committed it (`meta.runs`)


@dataclass(frozen=True)
class LoadInfo:
    """A load as `status` lists it."""

    load_id: int
    source: str
    stream: str
    window: str
    files: int
    rows: int
    quarantined: int
    staged: int
    status: str
    finished_at: datetime | None
    note: str | None = None


def next_load_id(warehouse: Warehouse) -> int:
    return int(warehouse.scalar("SELECT coalesce(max(load_id), 0) + 1 FROM meta.loads"))


def record_load(warehouse: Warehouse, load: LoadRecord) -> None:
    warehouse.execute(
        "INSERT INTO meta.loads (load_id, source, stream, window_key, window_start, window_end, "
        "origin, files, rows, bytes, quarantined, staged, type_errors, status, started_at, "
        "finished_at, note, suppressed, run_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'committed', ?, ?, ?, ?, ?)",
        [
            load.load_id, load.source, load.stream, load.window_key, load.window_start,
            load.window_end, load.origin, load.files, load.rows, load.bytes, load.quarantined,
            load.staged, load.type_errors, load.started_at, utcnow(), load.note, load.suppressed,
            load.run_id,
        ],
    )  # fmt: skip


def committed_loads(warehouse: Warehouse, source: str, stream: str, key: str) -> list[int]:
    """Committed loads of the window `key` (a re-delivery replaces them)."""
    rows = warehouse.query(
        "SELECT load_id FROM meta.loads WHERE source = ? AND stream = ? AND window_key = ? "
        "AND status = 'committed' ORDER BY load_id",
        [source, stream, key],
    )
    return [int(r[0]) for r in rows]


def loaded_keys(warehouse: Warehouse, source: str, stream: str, keys: Sequence[str]) -> set[str]:
    """Which of these window keys have a committed load."""
    if not keys:
        return set()
    rows = warehouse.query(
        "SELECT DISTINCT window_key FROM meta.loads WHERE source = ? AND stream = ? "
        "AND status = 'committed' AND list_contains(?, window_key)",
        [source, stream, list(keys)],
    )
    return {str(r[0]) for r in rows}


def mark_replaced(warehouse: Warehouse, load_ids: Sequence[int]) -> None:
    if load_ids:
        warehouse.execute(
            "UPDATE meta.loads SET status = 'replaced' WHERE list_contains(?, load_id)",
            [list(load_ids)],
        )


def load_of(warehouse: Warehouse, load_id: int) -> tuple[str, str, str] | None:
    """(status, source, stream) of a load, or None when there is no such load."""
    rows = warehouse.query(
        "SELECT status, source, stream FROM meta.loads WHERE load_id = ?", [load_id]
    )
    return (str(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None


def is_first_load(warehouse: Warehouse, source: str, stream: str, load_id: int) -> bool:
    """No load of the stream with rows came before this one (its drift is the stream's
    baseline: a first hour without data leaves it to the first hour with some)."""
    return not warehouse.scalar(
        "SELECT count(*) FROM meta.loads WHERE source = ? AND stream = ? AND load_id < ? "
        "AND rows > 0",
        [source, stream, load_id],
    )


def recent_loads(warehouse: Warehouse, limit: int = 10) -> list[LoadInfo]:
    rows = warehouse.query(
        "SELECT load_id, source, stream, coalesce(window_key, ''), files, rows, quarantined, "
        "staged, status, finished_at, note FROM meta.loads ORDER BY load_id DESC LIMIT ?",
        [limit],
    )
    return [LoadInfo(*_ints(r, 0, 4, 5, 6, 7)) for r in rows]


def noted_loads(warehouse: Warehouse, limit: int = 10) -> list[LoadInfo]:
    """The latest committed loads whose delivery looked suspicious (their `note`), newest first:
    `status` warns about them however many loads came after."""
    rows = warehouse.query(
        "SELECT load_id, source, stream, coalesce(window_key, ''), files, rows, quarantined, "
        "staged, status, finished_at, note FROM meta.loads "
        "WHERE note IS NOT NULL AND status = 'committed' ORDER BY load_id DESC LIMIT ?",
        [limit],
    )
    return [LoadInfo(*_ints(r, 0, 4, 5, 6, 7)) for r in rows]


def committed_totals(warehouse: Warehouse) -> tuple[int, int]:
    """How many loads are committed, and the raw rows they hold."""
    row = warehouse.query(
        "SELECT count(*), coalesce(sum(rows), 0) FROM meta.loads WHERE status = 'committed'"
    )[0]
    return int(row[0]), int(row[1])


def _ints(row: Sequence[Any], *positions: int) -> list[Any]:
    """The row with the values at `positions` as int (NULL as 0)."""
    return [int(v or 0) if i in positions else v for i, v in enumerate(row)]
