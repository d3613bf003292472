"""`meta.schema_events`: drift, and the outbox of its alerts.

One row per model, kind and batch lists the fields the batch found (`fields`, `field_count`;
`field` is the first of them), with each field's detail in `detail` (a JSON object keyed by
field); a field is reported once per kind and model, ever. Rows written before events were
grouped hold one field in `field`, `fields` NULL and that field's detail alone; they are read
as events of one field.

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
    field: str  # the first of `fields`
    detail: dict[str, Any]  # field → what was found about it
    first_load_id: int
    seen_at: datetime
    status: str  # open | acknowledged | baseline
    fields: list[str]  # every field the event is about, in the order found (`field` first)
    field_count: int


# An event of an older journal (`fields` NULL) is about its `field` alone.
FIELDS = "coalesce(fields, [field])"


def record_schema_event(
    warehouse: Warehouse,
    kind: str,
    stream: str,
    model: str,
    details: dict[str, dict[str, Any]],
    load_id: int,
    baseline: bool,
) -> list[str]:
    """Record one event for the fields of `details` (field → its detail) that no event of this
    kind and model ever listed; returns those fields (none: nothing recorded)."""
    reported = warehouse.query(
        f"SELECT DISTINCT f FROM (SELECT unnest({FIELDS}) AS f FROM meta.schema_events "
        "WHERE kind = ? AND model = ?) AS e WHERE list_contains(?, f)",
        [kind, model, list(details)],
    )
    known = {str(r[0]) for r in reported}
    fresh = {field: detail for field, detail in details.items() if field not in known}
    if not fresh:
        return []
    event_id = warehouse.scalar("SELECT coalesce(max(event_id), 0) + 1 FROM meta.schema_events")
    fields = list(fresh)
    warehouse.execute(
        "INSERT INTO meta.schema_events (event_id, kind, stream, model, field, detail, "
        "first_load_id, seen_at, status, alerted_at, fields, field_count) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            event_id, kind, stream, model, fields[0], json.dumps(fresh), load_id, utcnow(),
            "baseline" if baseline else "open", utcnow() if baseline else None, fields,
            len(fields),
        ],
    )  # fmt: skip
    return fields


def unalerted_events(warehouse: Warehouse) -> list[SchemaEventInfo]:
    return _events(warehouse, "WHERE alerted_at IS NULL")


def mark_alerted(warehouse: Warehouse, event_ids: Sequence[int]) -> None:
    warehouse.execute(
        "UPDATE meta.schema_events SET alerted_at = ? WHERE list_contains(?, event_id)",
        [utcnow(), list(event_ids)],
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


def open_event_counts(warehouse: Warehouse) -> tuple[int, int]:
    """How many events are open, and how many fields they list."""
    row = warehouse.query(
        f"SELECT count(*), coalesce(sum({warehouse.sql.list_length(FIELDS)}), 0) "
        "FROM meta.schema_events "
        "WHERE status = 'open'"
    )[0]
    return int(row[0]), int(row[1])


def _events(warehouse: Warehouse, where: str) -> list[SchemaEventInfo]:
    rows = warehouse.query(
        "SELECT event_id, kind, stream, model, field, detail, first_load_id, seen_at, status, "
        f"fields FROM meta.schema_events {where} ORDER BY event_id"
    )
    return [_event(r) for r in rows]


def _event(row: Sequence[Any]) -> SchemaEventInfo:
    event_id, kind, stream, model, field, detail, first_load_id, seen_at, status, fields = row
    details = json.loads(detail)
    if fields is None:  # an event of an older journal: one field, its detail alone
        fields, details = [field], {field: details}
    return SchemaEventInfo(
        int(event_id), kind, stream, model, field, details, int(first_load_id), seen_at, status,
        list(fields), len(fields),
    )  # fmt: skip
