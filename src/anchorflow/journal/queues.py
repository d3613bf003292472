"""`meta.queue_depths`: the depth of each queue in front of a landing directory, sampled at each
loader run, with the alarm it raised (too deep, growing) and whether it was alerted."""

from __future__ import annotations

from datetime import datetime

from anchorflow.warehouse import Warehouse


def record_depth(
    warehouse: Warehouse, source: str, queue: str, sampled_at: datetime, depth: int,
    alarm: str | None, alerted: bool,
) -> None:  # fmt: skip
    warehouse.execute(
        "INSERT INTO meta.queue_depths VALUES (?, ?, ?, ?, ?, ?)",
        [source, queue, sampled_at, depth, alarm, alerted],
    )


def depths_since(
    warehouse: Warehouse, source: str, queue: str, since: datetime
) -> list[tuple[datetime, int]]:
    """The samples taken at `since` or later, oldest first, after the last one taken before it
    (which tells whether the samples cover the whole span)."""
    rows = warehouse.query(
        "SELECT sampled_at, depth FROM meta.queue_depths WHERE source = ? AND queue = ? "
        "AND sampled_at >= coalesce((SELECT max(sampled_at) FROM meta.queue_depths "
        "WHERE source = ? AND queue = ? AND sampled_at < ?), ?) ORDER BY sampled_at",
        [source, queue, source, queue, since, since],
    )
    return [(row[0], int(row[1])) for row in rows]


def last_alarm(warehouse: Warehouse, source: str, queue: str) -> tuple[str | None, datetime | None]:
    """The alarm of the queue's latest sample, and when the queue was last alerted."""
    rows = warehouse.query(
        "SELECT (SELECT alarm FROM meta.queue_depths WHERE source = ? AND queue = ? "
        "ORDER BY sampled_at DESC LIMIT 1), (SELECT max(sampled_at) FROM meta.queue_depths "
        "WHERE source = ? AND queue = ? AND alerted)",
        [source, queue, source, queue],
    )
    return (rows[0][0], rows[0][1]) if rows else (None, None)


def prune_depths(warehouse: Warehouse, source: str, queue: str, before: datetime) -> int:
    """Forget the queue's samples taken before `before`; how many."""
    return warehouse.insert(
        "DELETE FROM meta.queue_depths WHERE source = ? AND queue = ? AND sampled_at < ?",
        [source, queue, before],
    )
