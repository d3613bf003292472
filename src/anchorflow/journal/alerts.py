"""`meta.alerts`: every alert delivery, delivered or not (its details, never a target's URL).

Also the alert outbox, `meta.alert_outbox` (alerts queued for a target and not delivered yet:
a run queues them and delivers the queue when it ends), and `meta.alert_targets` (per target:
failures in a row and when it may be tried again). A target is keyed by a hash of its kind and
URL, so reordering the project's targets keeps each one's queue and backoff.
Every text is redacted before it is stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anchorflow.journal.schema import utcnow
from anchorflow.redact import redact, redact_value
from anchorflow.warehouse import Warehouse


@dataclass(frozen=True)
class QueuedAlert:
    alert_id: int
    kind: str
    subject: str
    details: dict[str, Any]


@dataclass(frozen=True)
class TargetState:
    """A target's backoff and queue, as `status` shows it."""

    target: str
    pending: int
    failures: int
    next_attempt_at: datetime | None
    last_error: str | None


def record_delivery(
    warehouse: Warehouse,
    kind: str,
    subject: str,
    details: dict[str, Any],
    target: str,
    delivered: bool,
    attempts: int,
    error: str | None,
) -> None:
    warehouse.execute(
        "INSERT INTO meta.alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            utcnow(), kind, redact(subject), json.dumps(redact_value(details)), target,
            "delivered" if delivered else "failed", attempts,
            redact(error) if error is not None else None,
        ],
    )  # fmt: skip


def queue_alert(
    warehouse: Warehouse,
    kind: str,
    subject: str,
    details: dict[str, Any],
    targets: list[tuple[str, str]],
    now: datetime,
) -> None:
    """Queue one alert for each (target name, target key)."""
    if not targets:
        return
    with warehouse.transaction():
        alert_id = int(
            warehouse.scalar("SELECT coalesce(max(alert_id), 0) + 1 FROM meta.alert_outbox")
        )
        text = json.dumps(redact_value(details))
        for name, key in targets:
            warehouse.execute(
                "INSERT INTO meta.alert_outbox VALUES (?, ?, ?, ?, ?, ?, ?)",
                [alert_id, name, key, kind, redact(subject), text, now],
            )


def queued_alerts(warehouse: Warehouse, key: str) -> list[QueuedAlert]:
    rows = warehouse.query(
        "SELECT alert_id, kind, subject, details FROM meta.alert_outbox WHERE target_key = ? "
        "ORDER BY alert_id",
        [key],
    )
    return [QueuedAlert(int(r[0]), str(r[1]), str(r[2]), json.loads(r[3] or "{}")) for r in rows]


def remove_queued(warehouse: Warehouse, alert_id: int, key: str) -> None:
    warehouse.execute(
        "DELETE FROM meta.alert_outbox WHERE alert_id = ? AND target_key = ?", [alert_id, key]
    )


def drop_queues_except(warehouse: Warehouse, keys: list[str]) -> int:
    """Forget the queues and backoffs of targets the project no longer has."""
    dropped = warehouse.insert(
        "DELETE FROM meta.alert_outbox WHERE NOT list_contains(?, target_key)", [keys]
    )
    warehouse.execute("DELETE FROM meta.alert_targets WHERE NOT list_contains(?, target_key)",
                      [keys])  # fmt: skip
    return dropped


def target_backoff(warehouse: Warehouse, key: str) -> tuple[int, datetime | None]:
    """(failures in a row, when the target may be tried again) of a target; (0, None) when
    its last delivery got through or it never failed."""
    rows = warehouse.query(
        "SELECT failures, next_attempt_at FROM meta.alert_targets WHERE target_key = ?", [key]
    )
    return (int(rows[0][0]), rows[0][1]) if rows else (0, None)


def record_target(
    warehouse: Warehouse,
    key: str,
    name: str,
    failures: int,
    next_attempt_at: datetime | None,
    error: str | None,
) -> None:
    with warehouse.transaction():
        warehouse.execute("DELETE FROM meta.alert_targets WHERE target_key = ?", [key])
        warehouse.execute(
            "INSERT INTO meta.alert_targets VALUES (?, ?, ?, ?, ?, ?)",
            [key, name, failures, next_attempt_at, redact(error) if error else None, utcnow()],
        )


def target_states(warehouse: Warehouse) -> list[TargetState]:
    """Every target with alerts waiting or a failure on record, by name."""
    rows = warehouse.query(
        "WITH queued AS (SELECT target_key, min(target) AS target, count(*) AS pending "
        "FROM meta.alert_outbox GROUP BY target_key) "
        "SELECT coalesce(t.target, q.target), coalesce(q.pending, 0), coalesce(t.failures, 0), "
        "t.next_attempt_at, t.last_error FROM queued AS q "
        "FULL OUTER JOIN meta.alert_targets AS t USING (target_key) "
        "WHERE coalesce(q.pending, 0) > 0 OR coalesce(t.failures, 0) > 0 ORDER BY 1"
    )
    return [TargetState(str(r[0]), int(r[1]), int(r[2]), r[3], r[4]) for r in rows]


def scrub_alerts(warehouse: Warehouse, quoted: str) -> int:
    """Replace the JSON string `quoted` by "[erased]" in every alert's details (sent or
    queued)."""
    changed = 0
    for table in ("meta.alerts", "meta.alert_outbox"):
        changed += warehouse.insert(
            f"UPDATE {table} SET details = replace(details, ?, '\"[erased]\"') "
            "WHERE strpos(details, ?) > 0",
            [quoted, quoted],
        )
    return changed
