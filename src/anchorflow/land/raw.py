"""The raw layer: every record of a batch reaches `raw.<source>_<stream>` as it arrived.

A line that is not a JSON object goes to the quarantine (`journal.quarantine`) with its file,
line number and the parser's reason instead; the rest of the batch lands. JSON is checked by the
engine in one pass; only the (rare) rejected lines are looked at in Python, to word the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc

from anchorflow.errors import WarehouseError
from anchorflow.journal import utcnow
from anchorflow.journal.quarantine import COLUMNS, quarantine_rejected
from anchorflow.journal.quarantine import TABLE as QUARANTINE
from anchorflow.sources.base import LandBatch, Rejected
from anchorflow.warehouse import Warehouse, table
from anchorflow.warehouse.dialect import Dialect


# A JSON object, possibly after JSON whitespace (space, tab, CR, LF). The trim, which copies the
# string, only runs for the rare record that does not start with '{' (OR stops early). Never
# NULL: a record is landed or quarantined, it cannot fall between the two.
def is_object(sql: Dialect) -> str:
    return (
        f"coalesce({sql.json_valid('record')} AND (starts_with(record, '{{') OR "
        "left(ltrim(record, ' ' || chr(9) || chr(10) || chr(13)), 1) = '{'), false)"
    )


# The engine's JSON types, in the words of JSON.
JSON_KINDS = {"ARRAY": "array", "VARCHAR": "string", "BIGINT": "number", "UBIGINT": "number",
              "DOUBLE": "number", "BOOLEAN": "boolean", "NULL": "null"}  # fmt: skip
INVALID_JSON = "not valid JSON"
# A NUL character (U+0000) in a line: on an engine whose text cannot hold one, the line is
# quarantined with this reason, its NULs written as the escape `\u0000`.
HOLDS_NUL = "holds a NUL character (U+0000), which the warehouse's text cannot store"
# Invalid lines of one batch whose reason says where the parser stopped; beyond, `INVALID_JSON`.
WORDED_REASONS = 1000
NUL = "\x00"
NUL_ESCAPE = re.compile(r"\\u0000")
LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def raw_table_name(source: str, stream: str) -> str:
    return f"{source}_{stream}"


def ensure_raw_table(warehouse: Warehouse, source: str, stream: str) -> str:
    name = raw_table_name(source, stream)
    # Long JSON text compresses several times better, and writes faster, with zstd than with
    # DuckDB's default string compression.
    record = (
        warehouse.sql.compressed("VARCHAR")
        if warehouse.capabilities.column_compression
        else "VARCHAR"
    )
    warehouse.execute(
        f"""CREATE TABLE IF NOT EXISTS {table("raw", name)} (
            load_id BIGINT NOT NULL,
            source VARCHAR NOT NULL,
            stream VARCHAR NOT NULL,
            origin VARCHAR NOT NULL,
            line_no BIGINT NOT NULL,
            received_at TIMESTAMP NOT NULL,
            record {record} NOT NULL)"""
    )
    return name


@dataclass(frozen=True)
class Landed:
    rows: int
    quarantined: int


def land_batch(
    warehouse: Warehouse, batch: LandBatch, load_id: int, view: str, suppressed: int = 0
) -> Landed:
    """Insert the batch (registered as `view`) into raw, and its bad lines into quarantine.

    `suppressed` records of the batch are not in `view` (their keys were erased). The raw
    table exists already (`stage.prepare_tables`, before the window's transaction).
    """
    target = table("raw", raw_table_name(batch.source, batch.stream))
    context = [load_id, batch.source, batch.stream]
    with warehouse.transaction():
        landed = warehouse.insert(
            f"INSERT INTO {target} SELECT ?, ?, ?, origin, line_no, ?, record FROM {view} "
            f"WHERE {is_object(warehouse.sql)}",
            [*context, utcnow()],
        )
        records = batch.rows - suppressed
        bad = 0
        if landed < records:  # only then look for the lines that are not JSON objects
            bad = _quarantine_bad_lines(warehouse, view, context)
            if landed + bad != records:
                raise WarehouseError(
                    f"{batch.origin}: {records} records but {landed} landed and "
                    f"{bad} set aside; nothing of the window was committed"
                )
        quarantine_rejected(warehouse, load_id, batch.source, batch.stream, batch.rejected)
    return Landed(landed, bad + len(batch.rejected))


def _quarantine_bad_lines(warehouse: Warehouse, view: str, context: list[object]) -> int:
    """Set the batch's lines that are not JSON objects aside, in the engine: a part of
    millions of such lines never becomes Python objects. The engine words the reason of valid
    JSON of another type; the reason of invalid JSON is worded here, for the first
    `WORDED_REASONS` of them (the parser's message needs Python), the rest say it plainly."""
    sql = warehouse.sql
    kind = sql.json_type("record")
    kinds = " ".join(f"WHEN {_sql_string(k)} THEN {_sql_string(v)}" for k, v in JSON_KINDS.items())
    bad = warehouse.insert(
        f"INSERT INTO {QUARANTINE} ({COLUMNS}) SELECT ?, ?, ?, 'land', origin, line_no, "
        f"CASE WHEN {sql.json_valid('record')} THEN 'a JSON ' || "
        f"CASE {kind} {kinds} ELSE lower({kind}) END || ', not an object' "
        f"ELSE '{INVALID_JSON}' END, record, NULL FROM {view} WHERE NOT ({is_object(sql)})",
        context,
    )
    if not bad:
        return 0
    invalid = warehouse.query_arrow(
        f"SELECT origin, line_no, record FROM {view} "
        f"WHERE NOT coalesce({sql.json_valid('record')}, false) ORDER BY origin, line_no "
        f"LIMIT {WORDED_REASONS}"
    )
    if invalid.num_rows:
        reasons = pa.table({
            "origin": invalid["origin"], "line_no": invalid["line_no"],
            "reason": [_why_invalid(str(text)) for text in invalid["record"].to_pylist()],
        })  # fmt: skip
        with warehouse.registered("__land_reasons", reasons) as worded:
            warehouse.execute(
                f"UPDATE {QUARANTINE} AS q SET reason = w.reason FROM {worded} AS w "
                "WHERE q.load_id = ? AND q.stage = 'land' AND q.origin = w.origin "
                "AND q.line_no = w.line_no",
                [context[0]],
            )
    return bad


def set_aside_nul(warehouse: Warehouse, batch: LandBatch) -> LandBatch:
    """The batch without its lines that hold a NUL character, on an engine whose text cannot
    store one: they join the lines the source set aside (quarantined with `HOLDS_NUL`), their
    NULs escaped as `\\u0000`, so that the rest of the window lands. (A line with a NUL is not
    valid JSON anyway: JSON escapes its control characters.) Elsewhere, the batch as it is."""
    if warehouse.sql.text_holds_nul:
        return batch
    rejected = [
        replace(r, text=_escape_nul(r.text)) if NUL in r.text else r for r in batch.rejected
    ]
    records = batch.records
    text = records.column("record").cast(pa.large_string())
    holds_nul = pc.match_substring(text, NUL)
    if not pc.any(holds_nul).as_py():
        return replace(batch, rejected=rejected)
    # (Arrow cannot filter string_view columns: the text is filtered as large strings.)
    readable = records.set_column(records.schema.get_field_index("record"), "record", text)
    nul = readable.filter(holds_nul)
    escaped = pc.replace_substring(nul.column("record"), NUL, "\\u0000")
    rejected += [
        Rejected(origin, line_no, HOLDS_NUL, line)
        for origin, line_no, line in zip(
            nul.column("origin").to_pylist(), nul.column("line_no").to_pylist(),
            escaped.to_pylist(), strict=True,
        )
    ]  # fmt: skip
    kept = readable.filter(pc.invert(holds_nul)).cast(records.schema)
    return replace(batch, records=kept, rejected=rejected)


def _escape_nul(text: str) -> str:
    return text.replace(NUL, "\\u0000")


def _sql_string(value: str) -> str:
    """A constant of this module as an SQL string (never a user value)."""
    return "'" + value.replace("'", "''") + "'"


def landed_records(sql: Dialect, view: str, load_id: int, landed: Landed, batch: LandBatch) -> str:
    """The rows `land_batch` put in raw, read from the in-flight batch instead of from raw.

    Same text, same filter; reading it back from the table would only cost a second pass. When
    every line landed (the usual case), the filter is skipped too: it would parse them again.
    """
    every_line = landed.rows == batch.rows  # (never so when some were suppressed)
    where = "" if every_line else f" WHERE {is_object(sql)}"
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


def _why_invalid(text: str) -> str:
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        return f"not valid JSON: {error.msg} at column {error.colno}"
    except RecursionError:
        return "not valid JSON (nested too deep to say where)"
    if LONE_SURROGATE.search(text):
        return "not valid JSON: a lone surrogate escape (such as \\ud800) is not text"
    if NUL_ESCAPE.search(text):
        return "not valid JSON for the engine: it cannot store the NUL escape \\u0000"
    return "not valid JSON for the engine"
