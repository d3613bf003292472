"""`meta.quarantine`: records set aside, with the reason, never dropped.

`stage` says which step set a record aside: `land` (not a JSON object; raw never held it) or
`stage` (typing refused it under the model's policy, or it had no usable key; raw holds it).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from anchorflow.sources.base import Rejected
from anchorflow.warehouse import Warehouse

TABLE = "meta.quarantine"
COLUMNS = "load_id, source, stream, stage, origin, line_no, reason, record, model"


def quarantine_rejected(
    warehouse: Warehouse, load_id: int, source: str, stream: str, rows: Sequence[Rejected]
) -> None:
    """Records the land step could not take (not text, not a JSON object)."""
    if not rows:
        return
    data = pa.table(
        {
            "load_id": pa.array([load_id] * len(rows), pa.int64()),
            "source": [source] * len(rows),
            "stream": [stream] * len(rows),
            "stage": ["land"] * len(rows),
            "origin": [r.origin for r in rows],
            "line_no": pa.array([r.line_no for r in rows], pa.int64()),
            "reason": [r.reason for r in rows],
            "record": [r.text for r in rows],
        }
    )
    warehouse.insert_arrow("meta", "quarantine", data)


def quarantine_select(warehouse: Warehouse, select: str, params: Sequence[object] = ()) -> int:
    """Insert the rows of `select`, whose columns are `COLUMNS` in order; returns how many."""
    return warehouse.insert(f"INSERT INTO meta.quarantine ({COLUMNS}) {select}", list(params))


def count_quarantined(warehouse: Warehouse) -> int:
    return int(warehouse.scalar("SELECT count(*) FROM meta.quarantine"))


def delete_quarantined(
    warehouse: Warehouse,
    load_ids: Sequence[int] | None = None,
    stage: str | None = None,
    model: str | None = None,
) -> int:
    """Delete the quarantine rows of these loads (all loads when None), of one step or of one
    staging model when given."""
    where: list[str] = ["true"]
    params: list[object] = []
    if load_ids is not None:
        where.append("list_contains(?, load_id)")
        params.append(list(load_ids))
    if stage is not None:
        where.append("stage = ?")
        params.append(stage)
    if model is not None:
        where.append("model = ?")
        params.append(model)
    return warehouse.insert(f"DELETE FROM meta.quarantine WHERE {' AND '.join(where)}", params)


def delete_quarantined_records(warehouse: Warehouse, relation: str) -> int:
    """Delete the rows of the records in `relation` (load_id, origin, line_no)."""
    return warehouse.insert(
        f"DELETE FROM meta.quarantine AS q USING {relation} AS e WHERE q.load_id = e.load_id "
        "AND q.origin = e.origin AND q.line_no = e.line_no"
    )


def delete_unparsable_quoting(warehouse: Warehouse, quoted: str) -> int:
    """Delete quarantined records that are not JSON and hold `quoted` (a JSON string)."""
    return warehouse.insert(
        "DELETE FROM meta.quarantine WHERE NOT json_valid(record) AND strpos(record, ?) > 0",
        [quoted],
    )
