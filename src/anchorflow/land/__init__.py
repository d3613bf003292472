"""Landing: every record of a source window reaches `raw` unchanged, or the quarantine with why.

- `raw`: the raw tables, the land writer (JSON checked by the engine in one pass) and removal;
- `step`: the land step (a stream's due windows, fetched and committed one by one);
- `erase`: raw records that carry a person's key, for `forget`.
"""

from __future__ import annotations

from anchorflow.land.raw import (
    Landed,
    ensure_raw_table,
    land_batch,
    landed_records,
    raw_table_name,
    remove_raw,
)

__all__ = [
    "Landed",
    "ensure_raw_table",
    "land_batch",
    "landed_records",
    "raw_table_name",
    "remove_raw",
]
