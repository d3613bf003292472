"""A CSV file of any size as records, a block at a time: Arrow's streaming CSV reader.

The `files` kind reads a CSV whole; an export of a million graded answers need not fit in
memory, so here each block of about `BLOCK_BYTES` is parsed by Arrow and turned into JSON
objects keyed by the header by DuckDB (no Python per row), then handed on as a piece. The rules
are the `files` kind's: values as text, an empty field null unless `empty_as_null: false`, a
ragged row quarantined with its text, a bad header (an empty or repeated name) one quarantined
record. Text that stops parsing midway (invalid UTF-8, an unterminated quote) ends the file with
one quarantined record saying from which row; the rows before it land.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from anchorflow.sources.base import RECORD_SCHEMA, Rejected
from anchorflow.sources.files.config import CsvOptions
from anchorflow.sources.files.readers import header_problem
from anchorflow.sources.lines import Piece, repeated_string

BLOCK_BYTES = 16 << 20


def csv_pieces(
    origin: str, opener: Callable[[], IO[bytes]], options: CsvOptions,
    block_bytes: int = BLOCK_BYTES, lists: dict[str, str] | None = None,
) -> Iterator[Piece]:  # fmt: skip
    """The records of the CSV that `opener` opens (twice: once for the header alone, so every
    column can be read as text), in pieces of about `block_bytes` of text. A column named in
    `lists` (column: separator) becomes a JSON array of its parts (`a;b` → `["a","b"]`)."""
    try:
        with opener() as head:
            header = _open(head, options, None, 1 << 20, []).schema.names
    except pa.ArrowInvalid as error:
        if "Empty CSV" not in str(error):
            yield _unreadable(origin, 1, f"not readable as CSV ({_first_line(error)})")
        return
    problem = header_problem(header)
    if problem:
        yield _unreadable(origin, 1, problem)
        return
    rejected: list[Rejected] = []
    con = duckdb.connect(config={"preserve_insertion_order": True, "threads": 1})
    try:
        with opener() as stream:
            reader = _open(stream, options, header, block_bytes, rejected, origin)
            yield from _blocks(origin, reader, con, rejected, lists or {})
    except pa.ArrowInvalid as error:  # the first block does not parse
        yield _unreadable(origin, 1, f"not readable as CSV ({_first_line(error)})")
    finally:
        con.close()


def _open(
    stream: IO[bytes], options: CsvOptions, header: list[str] | None, block_bytes: int,
    rejected: list[Rejected], origin: str = "",
) -> pa_csv.CSVStreamingReader:  # fmt: skip

    def set_aside(row: pa_csv.InvalidRow) -> str:
        where = int(row.number) if row.number is not None else 0
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        rejected.append(Rejected(origin, where, reason, str(row.text)))
        return "skip"

    return pa_csv.open_csv(
        stream,
        read_options=pa_csv.ReadOptions(block_size=block_bytes, use_threads=False),
        parse_options=pa_csv.ParseOptions(
            delimiter=options.delimiter, quote_char=options.quote, newlines_in_values=True,
            invalid_row_handler=set_aside,
        ),
        convert_options=_convert(options, header),
    )  # fmt: skip


def _blocks(
    origin: str, reader: pa_csv.CSVStreamingReader, con: duckdb.DuckDBPyConnection,
    rejected: list[Rejected], lists: dict[str, str],
) -> Iterator[Piece]:  # fmt: skip
    rows = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as error:
            reason = f"not readable as CSV after row {rows:,} ({_first_line(error)})"
            yield _unreadable(origin, rows + 1, reason)
            return
        texts = _as_json(con, _split_lists(pa.Table.from_batches([batch]), lists))
        count = len(texts)
        records = pa.table({
            "origin": repeated_string(origin, count),
            "line_no": pa.array(np.arange(rows + 1, rows + count + 1, dtype=np.int64)),
            "record": texts.cast(pa.string_view()),
        }, schema=RECORD_SCHEMA)  # fmt: skip
        rows += count
        taken, rejected[:] = list(rejected), []
        yield Piece(records, taken, text_bytes=int(batch.nbytes))


def _split_lists(table: pa.Table, lists: dict[str, str]) -> pa.Table:
    """The `lists` columns split on their separators, in Arrow (null stays null)."""
    for name, separator in lists.items():
        index = table.schema.get_field_index(name)
        if index >= 0:
            parts = pc.split_pattern(table.column(index), pattern=separator)
            table = table.set_column(index, name, parts)
    return table


def _as_json(con: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.ChunkedArray:
    if table.num_rows == 0:
        return pa.chunked_array([], pa.string())
    con.register("__block", table)
    try:
        return con.sql("SELECT to_json(r)::VARCHAR FROM __block AS r").to_arrow_table().column(0)
    finally:
        con.unregister("__block")


def _convert(options: CsvOptions, header: list[str] | None) -> pa_csv.ConvertOptions:
    """Every column as text; empty fields null unless `empty_as_null: false`."""
    return pa_csv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()) if header else None,
        strings_can_be_null=options.empty_as_null,
        null_values=[""] if options.empty_as_null else [], quoted_strings_can_be_null=False,
        auto_dict_encode=False, include_missing_columns=False,
    )  # fmt: skip


def _unreadable(origin: str, line: int, reason: str) -> Piece:
    return Piece(RECORD_SCHEMA.empty_table(), [Rejected(origin, line, reason, "")])


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]
