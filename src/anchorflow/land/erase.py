"""Raw records that carry an erased person's key, found by the JSON paths their key is read
from, and their removal (`forget` erases raw too: raw is the only copy that would bring the
person back)."""

from __future__ import annotations

from collections.abc import Sequence

from anchorflow.land.raw import raw_table_name
from anchorflow.warehouse import Warehouse, ident, table

ERASED = ident("__erased")


def find_records(
    warehouse: Warehouse,
    source: str,
    stream: str,
    path_sets: Sequence[Sequence[str]],
    key: Sequence[str],
) -> str | None:
    """Gather into a temp table (returned) the stream's raw records whose values at one of the
    path sets equal the key; None when the stream has no raw table."""
    if not warehouse.table_exists("raw", raw_table_name(source, stream)):
        return None
    matches = " OR ".join(
        "(" + " AND ".join(f"{warehouse.sql.json_text_at('record', '?')} = ?" for _ in paths) + ")"
        for paths in path_sets
    )
    params = [v for paths in path_sets for p, k in zip(paths, key, strict=True) for v in (p, k)]
    # Dropped, then created: a statement with parameters must be one statement on every engine.
    warehouse.execute(f"DROP TABLE IF EXISTS {warehouse.sql.temp_table(ERASED)}")
    warehouse.execute(
        f"CREATE TEMP TABLE {ERASED} AS SELECT load_id, origin, line_no, record "
        f"FROM {table('raw', raw_table_name(source, stream))} WHERE {matches}",
        params,
    )
    return ERASED


def erase_records(warehouse: Warehouse, source: str, stream: str, relation: str) -> int:
    """Delete the raw records listed in `relation` (load_id, origin, line_no)."""
    return warehouse.insert(
        f"DELETE FROM {table('raw', raw_table_name(source, stream))} AS r USING {relation} AS e "
        "WHERE r.load_id = e.load_id AND r.origin = e.origin AND r.line_no = e.line_no"
    )
