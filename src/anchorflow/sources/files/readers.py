"""A file's bytes as records: one JSON object text per record, with where it came from.

- **ndjson**: every non-empty line is a record, as it is (no Python object per line, see
  `sources.lines`);
- **json**: a document holding an array gives one record per element; a single object is one
  record. Elements are parsed by the engine and written back compact (whitespace between tokens
  is not kept; keys, values and their order are);
- **csv**: every row is a JSON object keyed by the header, values as text (an empty field is
  null unless `empty_as_null: false`);
- **parquet**: every row is a JSON object keyed by column name, values as the engine writes them
  (timestamps as text, nested structs as objects).

Inflating (gzip, zstd) happens first, with the source's `max_inflation_ratio`: a file inflating
past it is one quarantined record saying so. NDJSON is inflated and split a few MiB at a time
and comes out in parts of about `max_part_bytes` (one load; see `sources.lines`), with lines
longer than `max_line_bytes` quarantined by length and prefix; the other formats are read
whole. Parsing is done by Arrow and DuckDB, never row by row in
Python. A file that cannot be read (an unknown extension, a corrupt stream, not its format) is
one quarantined record saying why: it never blocks the files after it, and once it is fixed its
new version is loaded and replaces that record's load.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from anchorflow.sources.base import RECORD_SCHEMA, ReadLimits, Rejected
from anchorflow.sources.files.config import CsvOptions
from anchorflow.sources.inflate import CorruptStream, InflationRefused, inflated_pieces
from anchorflow.sources.lines import (
    Piece,
    bounded_parts,
    joined,
    repeated_string,
    split_lines,
    split_pieces,
)

COMPRESSED = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
FORMAT_OF = {
    ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json", ".csv": "csv", ".tsv": "csv",
    ".txt": "ndjson", ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip
PREVIEW = 200  # characters of an unreadable file kept in its quarantine record
BOM = b"\xef\xbb\xbf"
TSV = re.compile(r"\.tsv(\.(gz|gzip|zst|zstd))?$")
JSON_KINDS = {"VARCHAR": "string", "BIGINT": "number", "UBIGINT": "number", "DOUBLE": "number",
              "BOOLEAN": "boolean", "NULL": "null"}  # fmt: skip


@dataclass(frozen=True)
class FileKind:
    format: str  # ndjson | json | csv | parquet
    compression: str  # none | gzip | zstd


class Unreadable(Exception):
    """The file cannot be read as configured; the message says why (and what to set)."""


def kind_of(path: str, fmt: str, compression: str) -> FileKind:
    """The file's format and compression: as configured, or from its extensions when `auto`."""
    name = path.rsplit("/", 1)[-1].lower()
    stem, dot, ext = name.rpartition(".")
    found_compression = COMPRESSED.get(f".{ext}", "none") if dot else "none"
    if found_compression != "none":
        name = stem
    if compression == "auto":
        compression = found_compression
    if fmt == "auto":
        suffix = "." + name.rpartition(".")[2] if "." in name else ""
        if suffix not in FORMAT_OF:
            raise Unreadable(
                "cannot tell the format from the file's name; set format: ndjson, json, csv or "
                "parquet on the source (or narrow its path)"
            )
        fmt = FORMAT_OF[suffix]
    return FileKind(fmt, compression)


def inflated(origin: str, data: bytes, compression: str, limits: ReadLimits) -> Iterator[bytes]:
    """The file's text a few MiB at a time; raises Unreadable for a corrupt or bomb stream."""
    stream: BinaryIO = io.BytesIO(data)
    if compression == "zstd":
        stream = pa.input_stream(pa.BufferReader(data), compression="zstd")
    try:
        yield from inflated_pieces(
            stream, len(data), compression == "gzip", limits.max_inflation_ratio, origin
        )
    except CorruptStream as error:
        raise Unreadable(str(error)) from None
    except (OSError, pa.ArrowInvalid) as error:  # zstd
        raise Unreadable(f"the zstd stream is corrupt ({error})") from None
    except InflationRefused as error:
        raise Unreadable(str(error).removeprefix(f"{origin}: ")) from None


def read_file(
    origin: str, data: bytes, fmt: str, compression: str, csv_options: CsvOptions,
    limits: ReadLimits | None = None,
) -> tuple[pa.Table, list[Rejected]]:  # fmt: skip
    """The file's records (origin, line_no, record) and what could not become a record, all
    at once (`read_parts` gives them a part at a time)."""
    parts = read_parts(origin, data, fmt, compression, csv_options, limits or ReadLimits())
    whole = joined([piece for piece, _ in parts])
    return whole.records, whole.rejected


def read_parts(
    origin: str, data: bytes, fmt: str, compression: str, csv_options: CsvOptions,
    limits: ReadLimits,
) -> Iterator[tuple[Piece, bool]]:  # fmt: skip
    """The file's records in parts of about `limits.max_part_bytes`, each with whether it is
    the last.

    Never raises for what the file holds: a file no reader can take is one rejected record
    with the reason (in the part where it turned out so), so it never keeps the files after
    it from loading.
    """
    try:
        kind = kind_of(origin, fmt, compression)
        texts = inflated(origin, data, kind.compression, limits)
        if kind.format == "ndjson":
            yield from bounded_parts(
                split_pieces(origin, _without_bom(texts), limits.max_line_bytes),
                limits.max_part_bytes,
            )
            return
        records, rejected = read_records(origin, b"".join(texts), kind, csv_options)
        yield Piece(records, rejected), True
    except Unreadable as error:
        yield Piece(_empty(), [_unreadable(origin, "", str(error))]), True
    except Exception as error:  # a reader's own failure on odd input (csv, Arrow, DuckDB)
        reason = f"unreadable ({type(error).__name__}: {_first_line(error)})"
        yield Piece(_empty(), [_unreadable(origin, "", reason)]), True


def _without_bom(texts: Iterator[bytes]) -> Iterator[bytes]:
    """A byte-order mark is no part of the first record."""
    first = True
    for text in texts:
        if first and text.startswith(BOM):
            text = text[len(BOM) :]
        first = False
        yield text


def read_records(
    origin: str, data: bytes, kind: FileKind, csv_options: CsvOptions
) -> tuple[pa.Table, list[Rejected]]:
    """The records of an inflated file."""
    if kind.format in ("ndjson", "json") and data.startswith(BOM):
        data = data[len(BOM) :]  # a byte-order mark is no part of the first record
    if kind.format == "ndjson":
        return split_lines(origin, data)
    if kind.format == "json":
        return _json_document(origin, data)
    if kind.format == "csv":
        if TSV.search(origin.lower()) and "delimiter" not in csv_options.model_fields_set:
            csv_options = csv_options.model_copy(update={"delimiter": "\t"})
        return _csv_rows(origin, data, csv_options)
    return _parquet_rows(origin, data)


def _json_document(origin: str, data: bytes) -> tuple[pa.Table, list[Rejected]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        preview = data[:PREVIEW].decode("utf-8", "replace")
        return _empty(), [_unreadable(origin, preview, f"not valid UTF-8 ({error.reason})")]
    if not text.strip():
        return _empty(), []  # an empty file holds no record, as an empty NDJSON file
    con = duckdb.connect()
    try:
        # A null element is a SQL NULL once the array is cast: keep it as the text `null`, so
        # the land step quarantines it like any element that is not an object.
        values = con.sql(
            "SELECT coalesce(unnest(CASE json_type(j) WHEN 'ARRAY' THEN CAST(j AS JSON[]) "
            "WHEN 'OBJECT' THEN [j] END)::VARCHAR, 'null') FROM (SELECT ?::JSON AS j)",
            params=[text],
        ).to_arrow_table()
        if values.num_rows == 0:  # an empty array, or a document of another kind
            kind = con.execute("SELECT json_type(?::JSON)", [text]).fetchall()
            if kind and kind[0][0] not in ("ARRAY", "OBJECT"):
                found = JSON_KINDS.get(str(kind[0][0]), str(kind[0][0]).lower())
                reason = f"a JSON {found}, not an array or an object"
                return _empty(), [_unreadable(origin, text, reason)]
        return _records(origin, values.column(0)), []
    except duckdb.Error as error:
        reason = f"not a valid JSON document ({str(error).splitlines()[0]})"
        return _empty(), [_unreadable(origin, text, reason)]
    finally:
        con.close()


def _csv_rows(origin: str, data: bytes, options: CsvOptions) -> tuple[pa.Table, list[Rejected]]:
    data = data.lstrip(b"\r\n")  # blank lines before the header are no header
    header, body = _header(data, options)
    if header is None:
        return _empty(), []
    problem = header_problem(header)
    if problem:
        text = data[:PREVIEW].decode("utf-8", "replace")
        return _empty(), [_unreadable(origin, text, problem)]
    if not body.strip():
        return _empty(), []  # a header and no row
    rejected: list[Rejected] = []

    def set_aside(row: pa_csv.InvalidRow) -> str:
        # A ragged row goes to the quarantine with its text; the file's other rows land.
        where = int(row.number) if row.number is not None else 0
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        rejected.append(Rejected(origin, where, reason, str(row.text)))
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.BufferReader(body),
            read_options=pa_csv.ReadOptions(column_names=header),
            parse_options=pa_csv.ParseOptions(
                delimiter=options.delimiter, quote_char=options.quote, newlines_in_values=True,
                invalid_row_handler=set_aside,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=options.empty_as_null,
                null_values=[""] if options.empty_as_null else [],
                quoted_strings_can_be_null=False,
            ),
        )  # fmt: skip
    except pa.ArrowInvalid as error:  # invalid UTF-8, an unterminated quote
        text = data[:PREVIEW].decode("utf-8", "replace")
        reason = f"not readable as CSV ({_first_line(error)})"
        return _empty(), [*rejected, _unreadable(origin, text, reason)]
    return _rows_as_json(origin, table), rejected


def _header(data: bytes, options: CsvOptions) -> tuple[list[str] | None, bytes]:
    """The header row (parsed with the file's delimiter and quote, any line ending) and the
    bytes after it."""
    head = data[: 1 << 20].decode("utf-8-sig", "replace")
    if not head.strip():
        return None, b""
    reader = csv.reader(io.StringIO(head, newline=""), delimiter=options.delimiter,
                        quotechar=options.quote)  # fmt: skip
    header = next(reader)
    # The header's own text, re-encoded, tells where the body starts (the BOM included).
    consumed = len(_header_text(head, header, options).encode())
    start = len(BOM) if data.startswith(BOM) else 0
    return header, data[start + consumed :].lstrip(b"\r\n")


def _header_text(head: str, header: list[str], options: CsvOptions) -> str:
    """The text of the header row at the start of `head`, up to its line ending."""
    quoted = False
    for index, char in enumerate(head):
        if char == options.quote:
            quoted = not quoted
        elif char in "\r\n" and not quoted:
            return head[:index]
    return head


def header_problem(header: list[str]) -> str | None:
    """Why a CSV header cannot key JSON objects (an empty or repeated name), or None."""
    if any(not name.strip() for name in header):
        return "the CSV header has an empty column name"
    seen: set[str] = set()
    for name in header:
        if name in seen:
            return f"the CSV header names column {name!r} twice"
        seen.add(name)
    return None


def _parquet_rows(origin: str, data: bytes) -> tuple[pa.Table, list[Rejected]]:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as error:
        return _empty(), [_unreadable(origin, "", f"not readable as Parquet ({error})")]
    return _rows_as_json(origin, table), []


def _rows_as_json(origin: str, table: pa.Table) -> pa.Table:
    """Each row of `table` as a JSON object keyed by its column names, in row order."""
    if table.num_rows == 0:
        return _empty()
    con = duckdb.connect(config={"preserve_insertion_order": True})
    try:
        con.register("__rows", table)
        values = con.sql("SELECT to_json(r)::VARCHAR FROM __rows AS r").to_arrow_table()
    finally:
        con.close()
    return _records(origin, values.column(0))


def _records(origin: str, values: pa.ChunkedArray) -> pa.Table:
    count = len(values)
    return pa.table(
        {
            "origin": repeated_string(origin, count),
            "line_no": pa.array(np.arange(1, count + 1, dtype=np.int64)),
            "record": values.cast(pa.string_view()),
        },
        schema=RECORD_SCHEMA,
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def _unreadable(origin: str, text: str, reason: str) -> Rejected:
    return Rejected(origin, 1, reason, text[:PREVIEW])


def _empty() -> pa.Table:
    return RECORD_SCHEMA.empty_table()
