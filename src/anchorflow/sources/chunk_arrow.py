"""Landing chunks in Arrow's IPC file format: what the Redis readers write, and the loader reads
without splitting a line.

A chunk file `<chunk_id>.arrow` holds one column, `record` (binary: the items as they arrived,
line breaks and all), in record batches, one per `append`. A record's position in the chunk is
its row number from 1 (the `line_no` of raw), as a line's number is in an `.ndjson` chunk. The
file is written to `<chunk_id>.arrow.tmp` and sealed (its footer written, then flush + fsync),
like the line format (see `sources.chunks`): a temporary is never loaded, and a torn one has no
footer.

Reading one costs no pass over its text: the file's buffers become the records' column as they
are (the binary column is taken as UTF-8 text once Arrow has checked it is: a record that is not
is quarantined, as in a line chunk). A record longer than `max_line_bytes` is quarantined with
its length and first KiB, and a chunk larger than `max_part_bytes` lands in parts, as lines do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from anchorflow.errors import TerminalSourceError
from anchorflow.sources.base import ReadLimits, Rejected
from anchorflow.sources.lines import (
    LONG_LINE_PREFIX,
    Piece,
    joined,
    repeated_string,
    too_long_reason,
)

SCHEMA = pa.schema([("record", pa.binary())])
RECORDS = pa.schema([("origin", pa.string()), ("line_no", pa.int64()), ("record", pa.string())])


def record_batch(items: Sequence[bytes]) -> pa.RecordBatch:
    """`items` as one record batch, built from two buffers (no Arrow object per item)."""
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    offsets = np.zeros(len(items) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    if len(items) and int(lengths.sum()) >= 2**31:
        raise ValueError("a batch of items of 2 GiB or more cannot be one record batch")
    column = pa.Array.from_buffers(
        pa.binary(), len(items), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(items))]
    )
    return pa.RecordBatch.from_arrays([column], schema=SCHEMA)


class ArrowWriter:
    """The Arrow side of a `ChunkFile`: record batches appended to an open binary file."""

    def __init__(self, out: pa.NativeFile | object) -> None:
        self._writer = pa.ipc.new_file(out, SCHEMA)

    def append(self, items: Sequence[bytes]) -> int:
        """Append `items` (one record batch); returns the bytes of their text."""
        batch = record_batch(items)
        self._writer.write_batch(batch)
        return int(batch.column(0).buffers()[2].size) if len(items) else 0

    def close(self) -> None:
        """Write the footer (the file is readable from now on)."""
        self._writer.close()


def chunk_items(data: bytes) -> list[bytes]:
    """The items of an Arrow chunk as they were appended (for tools and tests: the loader
    takes the column as it is)."""
    reader = pa.ipc.open_file(pa.py_buffer(data))
    batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
    return [item for batch in batches for item in batch.column(0).to_pylist()]


def count_items(path: Path) -> int:
    """How many items an Arrow chunk file holds (its record batches' lengths, not their text)."""
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


def read_arrow_chunk(
    origin: str, data: bytes, path: Path, limits: ReadLimits
) -> Iterator[tuple[Piece, bool]]:
    """The chunk's records in parts of about `limits.max_part_bytes`, each with whether it is
    the last. A sealed chunk that is not a readable Arrow file is an error, not a skip: it was
    made durable before it was published, so something else damaged it, and its records must
    not be lost quietly."""
    try:
        reader = pa.ipc.open_file(pa.py_buffer(data))
        if not reader.schema.equals(SCHEMA):
            raise pa.ArrowInvalid(f"unexpected columns {reader.schema.names}")
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    except (pa.ArrowInvalid, OSError) as error:
        raise TerminalSourceError(
            f"chunk {path} is not a readable Arrow chunk ({error}); nothing of it was loaded: "
            "move it aside to let the chunks after it load, and restore its records from "
            "their producer"
        ) from None
    first_line = 1
    current: list[Piece] = []
    weight = 0
    for column in _slices(batches, limits.max_part_bytes):
        piece = _piece(origin, column, first_line, limits.max_line_bytes)
        first_line += len(column)
        if current and weight >= limits.max_part_bytes:
            yield joined(current, RECORDS), False
            current, weight = [], 0
        current.append(piece)
        weight += piece.weight
    yield joined(current, RECORDS), True


def _slices(batches: list[pa.RecordBatch], max_part_bytes: int) -> Iterator[pa.Array]:
    """The record column of each batch, a batch whose text is over `max_part_bytes` cut in
    slices of about that size (views: nothing is copied)."""
    for batch in batches:
        column = batch.column(0)
        size = _text_bytes(column)
        slices = max(1, -(-size // max_part_bytes))
        rows = -(-len(column) // slices) if len(column) else 0
        for start in range(0, len(column), max(1, rows)):
            yield column.slice(start, rows)


def _offsets(column: pa.Array) -> np.ndarray:
    """The column's value offsets (a view of its buffer, the slice's own)."""
    if not len(column):  # (an empty array may have no offsets buffer)
        return np.zeros(1, dtype=np.int32)
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)
    return offsets[column.offset : column.offset + len(column) + 1]


def _text_bytes(column: pa.Array) -> int:
    offsets = _offsets(column)
    return int(offsets[-1] - offsets[0])


def _piece(origin: str, column: pa.Array, first_line: int, max_line_bytes: int) -> Piece:
    """One record batch as records: the binary column taken as text where it is UTF-8."""
    count = len(column)
    line_no = np.arange(first_line, first_line + count, dtype=np.int64)
    text = pa.Array.from_buffers(pa.string(), count, column.buffers(), offset=column.offset)
    rejected: list[Rejected] = []
    lengths = np.diff(_offsets(column))
    keep = lengths <= max_line_bytes
    if not keep.all():  # rare: each is quarantined with its length and a prefix
        rejected += _too_long(origin, column, np.flatnonzero(~keep), line_no, max_line_bytes)
    try:
        text.validate(full=True)  # UTF-8 included
    except pa.ArrowInvalid:  # rare: a record that is not UTF-8
        rejected += _not_utf8(origin, column, keep, line_no)
    if rejected:
        mask = pa.array(keep)
        text, line_no = text.filter(mask), line_no[keep]
        rejected.sort(key=lambda r: r.line_no)
    records = pa.table(
        {"origin": repeated_string(origin, len(text)), "line_no": line_no, "record": text},
        schema=RECORDS,
    )
    return Piece(records, rejected, text_bytes=_text_bytes(column))


def _too_long(
    origin: str, column: pa.Array, rows: np.ndarray, line_no: np.ndarray, limit: int
) -> list[Rejected]:
    found = []
    for row in rows:
        value = column[int(row)].as_buffer()
        prefix = value[:LONG_LINE_PREFIX].to_pybytes().decode("utf-8", "replace")
        reason = too_long_reason(value.size, limit)
        found.append(Rejected(origin, int(line_no[row]), reason, prefix))
    return found


def _not_utf8(
    origin: str, column: pa.Array, keep: np.ndarray, line_no: np.ndarray
) -> list[Rejected]:
    """The records (among those kept) that are not UTF-8; they are no longer kept."""
    found = []
    for row in np.flatnonzero(keep):
        raw = column[int(row)].as_py()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            keep[row] = False
            reason = f"not valid UTF-8 ({error.reason})"
            found.append(
                Rejected(origin, int(line_no[row]), reason, raw.decode("utf-8", "replace"))
            )
    return found
