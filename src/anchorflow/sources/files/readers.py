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

Inflating (gzip, zstd) happens first. Parsing is done by Arrow and DuckDB, never row by row in
Python. A file that cannot be read (an unknown extension, a corrupt stream, not its format) is
one quarantined record saying why: it never blocks the files after it, and once it is fixed its
new version is loaded and replaces that record's load.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from anchorflow.sources.base import RECORD_SCHEMA, Rejected
from anchorflow.sources.files.config import CsvOptions
from anchorflow.sources.inflate import GZIP_ERRORS, gunzip
from anchorflow.sources.lines import repeated_string, split_lines

COMPRESSED = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
FORMAT_OF = {
    ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json", ".csv": "csv", ".tsv": "csv",
    ".txt": "ndjson", ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip
PREVIEW = 200  # characters of an unreadable file kept in its quarantine record
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


def inflate(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        try:
            inflated: bytes = gunzip(data)  # type: ignore[no-untyped-call]
            return inflated
        except GZIP_ERRORS as error:
            raise Unreadable(f"the gzip stream is corrupt ({error})") from None
    if compression == "zstd":
        try:
            return bytes(pa.input_stream(pa.BufferReader(data), compression="zstd").read())
        except (OSError, pa.ArrowInvalid) as error:
            raise Unreadable(f"the zstd stream is corrupt ({error})") from None
    return data


def read_file(
    origin: str, data: bytes, fmt: str, compression: str, csv_options: CsvOptions
) -> tuple[pa.Table, list[Rejected]]:
    """The file's records (origin, line_no, record) and what could not become a record."""
    try:
        kind = kind_of(origin, fmt, compression)
        return read_records(origin, inflate(data, kind.compression), kind, csv_options)
    except Unreadable as error:
        return _empty(), [_unreadable(origin, "", str(error))]


def read_records(
    origin: str, data: bytes, kind: FileKind, csv_options: CsvOptions
) -> tuple[pa.Table, list[Rejected]]:
    """The records of an inflated file."""
    if kind.format == "ndjson":
        return split_lines(origin, data)
    if kind.format == "json":
        return _json_document(origin, data)
    if kind.format == "csv":
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
        values = con.sql(
            "SELECT unnest(CASE json_type(j) WHEN 'ARRAY' THEN CAST(j AS JSON[]) "
            "WHEN 'OBJECT' THEN [j] END)::VARCHAR FROM (SELECT ?::JSON AS j)",
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
    header = _header(data, options)
    if header is None:
        return _empty(), []
    problem = _header_problem(header)
    if problem:
        text = data[:PREVIEW].decode("utf-8", "replace")
        return _empty(), [_unreadable(origin, text, problem)]
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pa_csv.ParseOptions(
                delimiter=options.delimiter, quote_char=options.quote, newlines_in_values=True
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=options.empty_as_null,
                null_values=[""] if options.empty_as_null else [],
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        text = data[:PREVIEW].decode("utf-8", "replace")
        return _empty(), [_unreadable(origin, text, f"not readable as CSV ({error})")]
    return _rows_as_json(origin, table), []


def _header(data: bytes, options: CsvOptions) -> list[str] | None:
    """The header row, parsed with the file's delimiter and quote (the first line only)."""
    first = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8-sig", "replace")
    if not first.strip():
        return None
    return next(csv.reader([first], delimiter=options.delimiter, quotechar=options.quote))


def _header_problem(header: list[str]) -> str | None:
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


def _unreadable(origin: str, text: str, reason: str) -> Rejected:
    return Rejected(origin, 1, reason, text[:PREVIEW])


def _empty() -> pa.Table:
    return RECORD_SCHEMA.empty_table()
