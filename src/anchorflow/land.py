"""The raw writer: every record of a batch reaches `raw.<source>_<stream>` as it arrived.

A line that is not a JSON object goes to `meta.quarantine` with its file, line number and the
parser's reason instead; the rest of the batch lands. JSON is checked by the engine in one pass;
only the (rare) rejected lines are looked at in Python, to word the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

from anchorflow.journal import utcnow
from anchorflow.sources.base import LandBatch, Rejected
from anchorflow.warehouse import Warehouse, table

# A JSON object, possibly after JSON whitespace (space, tab, CR, LF). The trim, which copies the
# string, only runs for the rare record that does not start with '{' (OR stops early).
IS_OBJECT = (
    "json_valid(record) AND (starts_with(record, '{') OR "
    "left(ltrim(record, ' ' || chr(9) || chr(10) || chr(13)), 1) = '{')"
)


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
        quarantine(warehouse, load_id, batch.source, batch.stream, "land", rejected)
    return Landed(landed, len(rejected))


def landed_records(view: str, load_id: int, landed: Landed, batch: LandBatch) -> str:
    """The rows `land_batch` put in raw, read from the in-flight batch instead of from raw.

    Same text, same filter; reading it back from the table would only cost a second pass. When
    every line landed (the usual case), the filter is skipped too: it would parse them again.
    """
    every_line = landed.rows == batch.rows
    where = "" if every_line else f" WHERE {IS_OBJECT}"
    return f"(SELECT {int(load_id)}::BIGINT AS load_id, origin, line_no, record FROM {view}{where})"


def quarantine(
    warehouse: Warehouse, load_id: int, source: str, stream: str, stage: str, rows: list[Rejected]
) -> None:
    if not rows:
        return
    data = pa.table(
        {
            "load_id": pa.array([load_id] * len(rows), pa.int64()),
            "source": [source] * len(rows),
            "stream": [stream] * len(rows),
            "stage": [stage] * len(rows),
            "origin": [r.origin for r in rows],
            "line_no": pa.array([r.line_no for r in rows], pa.int64()),
            "reason": [r.reason for r in rows],
            "record": [r.text for r in rows],
        }
    )
    warehouse.insert_arrow("meta", "quarantine", data)


def _explain(row: dict[str, object]) -> Rejected:
    text = str(row["record"])
    try:
        value = json.loads(text)
        reason = f"a JSON {type(value).__name__}, not an object"
    except json.JSONDecodeError as error:
        reason = f"not valid JSON: {error.msg} at column {error.colno}"
    return Rejected(str(row["origin"]), int(str(row["line_no"])), reason, text)
