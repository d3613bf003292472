"""`meta.quarantine`: records set aside, with the reason, never dropped.

`stage` says which step set a record aside: `land` (not a JSON object; raw never held it) or
`stage` (typing refused it under the model's policy, or it had no usable key; raw holds it).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from anchorflow.journal.schema import delete_rows, delete_rows_of_records
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
    return delete_rows(warehouse, TABLE, load_ids, stage=stage, model=model)


def delete_quarantined_records(warehouse: Warehouse, relation: str) -> int:
    """Delete the rows of the records in `relation` (load_id, origin, line_no)."""
    return delete_rows_of_records(warehouse, TABLE, relation)


def delete_unparsable_mentioning(warehouse: Warehouse, pattern: str) -> int:
    """Delete quarantined records that are not JSON (a CSV row, a broken line) in which the
    regular expression `pattern` (an erased key as a whole word) matches."""
    return warehouse.insert(
        f"DELETE FROM meta.quarantine WHERE NOT {warehouse.sql.json_valid('record')} "
        "AND regexp_matches(record, ?)",
        [pattern],
    )


def scrub_reasons(warehouse: Warehouse, pattern: str) -> int:
    """Replace the erased key (`pattern`, with a group on each side) by [erased] in reasons."""
    return warehouse.insert(
        "UPDATE meta.quarantine SET reason = regexp_replace(reason, ?, '\\1[erased]\\2', 'g') "
        "WHERE regexp_matches(reason, ?)",
        [pattern, pattern],
    )


def delete_unparsable_quoting(warehouse: Warehouse, quoted: str) -> int:
    """Delete quarantined records that are not JSON and hold `quoted` (a JSON string)."""
    return warehouse.insert(
        f"DELETE FROM meta.quarantine WHERE NOT {warehouse.sql.json_valid('record')} "
        "AND strpos(record, ?) > 0",
        [quoted],
    )
