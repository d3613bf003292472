"""`meta.suppressions`: the keys `forget` erased, so that landing a window again (a backfill, a
re-delivered file) cannot bring the person back.

A key is stored per raw stream with the JSON paths its values are read from (the paths `forget`
found the person's records by), hashed: `sha256(pii_salt || to_json([value, ...]))`. The salt is
the project's secret, kept outside the file, so the file alone does not tell whose keys these
are. The same expression over a batch's records (`key_hash_sql`) finds the records to drop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from anchorflow.warehouse import Warehouse


def key_hash_sql(warehouse: Warehouse, values: Sequence[str]) -> str:
    """The hash of a key whose values are the SQL expressions `values` (VARCHAR); it takes the
    salt as its first parameter."""
    key = f"CAST(to_json(CAST([{', '.join(values)}] AS VARCHAR[])) AS VARCHAR)"
    return warehouse.sql.sha256_hex(f"? || {key}")


def suppress_key(
    warehouse: Warehouse,
    erasure_id: int,
    source: str,
    stream: str,
    paths: Sequence[str],
    key: Sequence[str],
    salt: str,
) -> None:
    """Keep the key, hashed, as one to drop from the stream's records read at `paths`."""
    hashed = key_hash_sql(warehouse, ["?"] * len(key))
    warehouse.execute(
        f"INSERT INTO meta.suppressions SELECT ?, ?, ?, ?, {hashed}",
        [erasure_id, source, stream, json.dumps(list(paths)), salt, *key],
    )


def suppressed_paths(warehouse: Warehouse, source: str, stream: str) -> list[list[str]]:
    """The path sets the stream's suppressed keys are read at (none: nothing to drop)."""
    rows = warehouse.query(
        "SELECT DISTINCT paths FROM meta.suppressions WHERE source = ? AND stream = ? "
        "ORDER BY paths",
        [source, stream],
    )
    return [list(json.loads(str(r[0]))) for r in rows]


def hashes_at(source: str, stream: str, paths: Sequence[str]) -> tuple[str, list[object]]:
    """A subquery of the stream's key hashes read at `paths`, and its parameters."""
    return (
        "(SELECT key_hash FROM meta.suppressions WHERE source = ? AND stream = ? AND paths = ?)",
        [source, stream, json.dumps(list(paths))],
    )
