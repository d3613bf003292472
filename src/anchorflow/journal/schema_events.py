"""`meta.schema_events`: drift, one row per (kind, model, field) ever, and the outbox of its alerts.

An event is written in the transaction of the batch that found it and alerted after the commit
(`alerted_at` is set once a target took it), so a crash between commit and alert only delays
the alert to the next run. Events of a model's first batch are its `baseline`: recorded,
never alerted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anchorflow.journal.schema import utcnow
from anchorflow.warehouse import Warehouse


@dataclass(frozen=True)
class SchemaEventInfo:
    event_id: int
    kind: str
    stream: str
    model: str
    field: str
    detail: dict[str, Any]
    first_load_id: int
    seen_at: datetime
    status: str  # open | acknowledged | baseline


def record_schema_event(
    warehouse: Warehouse,
    kind: str,
    stream: str,
    model: str,
    field: str,
    detail: dict[str, Any],
    load_id: int,
    baseline: bool,
) -> bool:
    """Record the event unless one of its kind, model and field was ever recorded."""
    exists = warehouse.scalar(
        "SELECT count(*) FROM meta.schema_events WHERE kind = ? AND model = ? AND field = ?",
        [kind, model, field],
    )
    if exists:
        return False
    event_id = warehouse.scalar("SELECT coalesce(max(event_id), 0) + 1 FROM meta.schema_events")
    warehouse.execute(
        "INSERT INTO meta.schema_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            event_id, kind, stream, model, field, json.dumps(detail), load_id, utcnow(),
            "baseline" if baseline else "open", utcnow() if baseline else None,
        ],
    )  # fmt: skip
    return True


def unalerted_events(warehouse: Warehouse) -> list[SchemaEventInfo]:
    return _events(warehouse, "WHERE alerted_at IS NULL")


def mark_alerted(warehouse: Warehouse, event_id: int) -> None:
    warehouse.execute(
        "UPDATE meta.schema_events SET alerted_at = ? WHERE event_id = ?", [utcnow(), event_id]
    )


def schema_events(warehouse: Warehouse, everything: bool = False) -> list[SchemaEventInfo]:
    """Open events, or every event (baseline and acknowledged too) with `everything`."""
    return _events(warehouse, "" if everything else "WHERE status = 'open'")


def reported_events(warehouse: Warehouse) -> list[SchemaEventInfo]:
    """Every event that was (or will be) alerted: all but the baseline's."""
    return _events(warehouse, "WHERE status <> 'baseline'")


def acknowledge(warehouse: Warehouse, event_ids: Sequence[int]) -> int:
    """Close events (they are never reported again); returns how many were open."""
    ids = list(event_ids)
    count = warehouse.scalar(
        "SELECT count(*) FROM meta.schema_events WHERE status = 'open' "
        "AND list_contains(?, event_id)",
        [ids],
    )
    warehouse.execute(
        "UPDATE meta.schema_events SET status = 'acknowledged' WHERE list_contains(?, event_id)",
        [ids],
    )
    return int(count)


def scrub_schema_events(warehouse: Warehouse, quoted: str) -> int:
    """Replace the JSON string `quoted` by "[erased]" in every event's detail."""
    return warehouse.insert(
        "UPDATE meta.schema_events SET detail = replace(detail, ?, '\"[erased]\"') "
        "WHERE strpos(detail, ?) > 0",
        [quoted, quoted],
    )


def _events(warehouse: Warehouse, where: str) -> list[SchemaEventInfo]:
    rows = warehouse.query(
        "SELECT event_id, kind, stream, model, field, detail, first_load_id, seen_at, status "
        f"FROM meta.schema_events {where} ORDER BY event_id"
    )
    return [
        SchemaEventInfo(int(r[0]), r[1], r[2], r[3], r[4], json.loads(r[5]), int(r[6]), r[7],
                        r[8])
        for r in rows
    ]  # fmt: skip
