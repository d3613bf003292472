"""`meta.cursors`: where each source stream resumes, as the source's own JSON.

A cursor moves in the transaction that commits the data it covers (the window commit), or on
its own for a position that covers no data yet (a remote export requested, not yet downloaded).
"""

from __future__ import annotations

import json
from typing import Any

from anchorflow.journal.schema import utcnow
from anchorflow.warehouse import Warehouse


def read_cursor(warehouse: Warehouse, source: str, stream: str) -> dict[str, Any] | None:
    """The stream's cursor, or None when it has never loaded."""
    text = warehouse.scalar(
        "SELECT cursor FROM meta.cursors WHERE source = ? AND stream = ?", [source, stream]
    )
    return json.loads(text) if text is not None else None


def write_cursor(
    warehouse: Warehouse, source: str, stream: str, cursor: dict[str, Any], load_id: int | None
) -> None:
    """Store the stream's cursor; inside a transaction, it commits with it."""
    text = json.dumps(cursor, sort_keys=True, separators=(",", ":"))
    with warehouse.transaction():
        warehouse.execute(
            "DELETE FROM meta.cursors WHERE source = ? AND stream = ?", [source, stream]
        )
        warehouse.execute(
            "INSERT INTO meta.cursors VALUES (?, ?, ?, ?, ?)",
            [source, stream, text, load_id, utcnow()],
        )
