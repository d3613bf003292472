"""`meta.alerts`: every alert delivery, delivered or not (its details, never a target's URL)."""

from __future__ import annotations

import json
from typing import Any

from anchorflow.journal.schema import utcnow
from anchorflow.warehouse import Warehouse


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
            utcnow(), kind, subject, json.dumps(details), target,
            "delivered" if delivered else "failed", attempts, error,
        ],
    )  # fmt: skip


def scrub_alerts(warehouse: Warehouse, quoted: str) -> int:
    """Replace the JSON string `quoted` by "[erased]" in every alert's details."""
    return warehouse.insert(
        "UPDATE meta.alerts SET details = replace(details, ?, '\"[erased]\"') "
        "WHERE strpos(details, ?) > 0",
        [quoted, quoted],
    )
