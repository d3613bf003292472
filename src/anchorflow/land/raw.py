"""The raw layer: every record of a batch reaches `raw.<source>_<stream>` as it arrived.

A line that is not a JSON object goes to the quarantine (`journal.quarantine`) with its file,
line number and the parser's reason instead; the rest of the batch lands. JSON is checked by the
engine in one pass; only the (rare) rejected lines are looked at in Python, to word the reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from anchorflow.errors import WarehouseError
from anchorflow.journal import utcnow
from anchorflow.journal.quarantine import quarantine_rejected
from anchorflow.sources.base import LandBatch, Rejected
from anchorflow.warehouse import Warehouse, table

# A JSON object, possibly after JSON whitespace (space, tab, CR, LF). The trim, which copies the
# string, only runs for the rare record that does not start with '{' (OR stops early). Never
# NULL: a record is landed or quarantined, it cannot fall between the two.
IS_OBJECT = (
    "coalesce(json_valid(record) AND (starts_with(record, '{') OR "
    "left(ltrim(record, ' ' || chr(9) || chr(10) || chr(13)), 1) = '{'), false)"
)


JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
              type(None): "null"}  # fmt: skip


def raw_table_name(source: str, stream: str) -> str:
    return f"{source}_{stream}"


def ensure_raw_table(warehouse: Warehouse, source: str, stream: str) -> str:
    name = raw_table_name(source, stream)
    # Long JSON text compresses several times better, and writes faster, with zstd than with
    # DuckDB's default string compression.
    compress = " USING COMPRESSION zstd" if warehouse.capabilities.column_compression else ""
    warehouse.execute(
        f"""CREATE TABLE IF NOT EXISTS {table("raw", name)} (
            load_id BIGINT NOT NULL,
            source VARCHAR NOT NULL,
            stream VARCHAR NOT NULL,
            origin VARCHAR NOT NULL,
            line_no BIGINT NOT NULL,
            received_at TIMESTAMP NOT NULL,
            record VARCHAR{compress} NOT NULL)"""
    )
    return name


@dataclass(frozen=True)
class Landed:
    rows: int
    quarantined: int


def land_batch(warehouse: Warehouse, batch: LandBatch, load_id: int, view: str) -> Landed:
    """Insert the batch (registered as `view`) into raw, and its bad lines into quarantine.

    The raw table exists already (`stage.prepare_tables`, before the window's transaction).
    """
    target = table("raw", raw_table_name(batch.source, batch.stream))
    context = [load_id, batch.source, batch.stream]
    with warehouse.transaction():
        landed = warehouse.insert(
            f"INSERT INTO {target} SELECT ?, ?, ?, origin, line_no, ?, record FROM {view} "
            f"WHERE {IS_OBJECT}",
            [*context, utcnow()],
        )
        rejected = list(batch.rejected)
        if landed < batch.rows:  # only then look for the lines that are not JSON objects
            bad = warehouse.query_arrow(
                f"SELECT origin, line_no, record FROM {view} WHERE NOT ({IS_OBJECT})"
            )
            rejected += map(_explain, bad.to_pylist())
            if landed + bad.num_rows != batch.rows:
                raise WarehouseError(
                    f"{batch.origin}: {batch.rows} records but {landed} landed and "
                    f"{bad.num_rows} set aside; nothing of the window was committed"
                )
        quarantine_rejected(warehouse, load_id, batch.source, batch.stream, rejected)
    return Landed(landed, len(rejected))


def landed_records(view: str, load_id: int, landed: Landed, batch: LandBatch) -> str:
    """The rows `land_batch` put in raw, read from the in-flight batch instead of from raw.

    Same text, same filter; reading it back from the table would only cost a second pass. When
    every line landed (the usual case), the filter is skipped too: it would parse them again.
    """
    every_line = landed.rows == batch.rows
    where = "" if every_line else f" WHERE {IS_OBJECT}"
    return f"(SELECT {int(load_id)}::BIGINT AS load_id, origin, line_no, record FROM {view}{where})"


def remove_raw(warehouse: Warehouse, source: str, stream: str, load_ids: Sequence[int]) -> int:
    """Delete the raw rows of these loads (replaced by a later delivery of their window)."""
    if not warehouse.table_exists("raw", raw_table_name(source, stream)):
        return 0
    return warehouse.insert(
        f"DELETE FROM {table('raw', raw_table_name(source, stream))} "
        "WHERE list_contains(?, load_id)",
        [list(load_ids)],
    )


def _explain(row: dict[str, object]) -> Rejected:
    text = "" if row["record"] is None else str(row["record"])
    try:
        value = json.loads(text)
        reason = f"a JSON {JSON_KINDS.get(type(value), 'value')}, not an object"
    except json.JSONDecodeError as error:
        reason = f"not valid JSON: {error.msg} at column {error.colno}"
    return Rejected(str(row["origin"]), int(str(row["line_no"])), reason, text)
