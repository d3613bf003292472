"""Newline-delimited text as Arrow records without a Python object per line.

Newline positions are found with numpy and the lines become an Arrow string-view array over the
inflated buffer; invalid UTF-8 is the only (rare) slow path. Every line-oriented reader
(Amplitude's export members, NDJSON files, chunk files) turns its bytes into records here.

Memory stays bounded whatever a file holds: `LineSplitter` takes the inflated text a piece at
a time and carries only the unfinished last line over; a line longer than `max_line_bytes` is
skipped while its bytes are counted, and quarantined with its length and its first
`LONG_LINE_PREFIX` bytes, never its text. `bounded_parts` groups the pieces into parts of about
`max_part_bytes`, each landed on its own (all parts of a window are one load).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from anchorflow.errors import TerminalSourceError
from anchorflow.sources.base import RECORD_SCHEMA, LandBatch, Rejected, Window

NEWLINE = 10
MAX_VIEW_BUFFER = 2**31 - 16
LONG_LINE_PREFIX = 1024  # bytes of a too-long line kept in its quarantine record
ROW_WEIGHT = 64  # Arrow bytes per record besides its text: view, line number, origin


def split_lines(
    origin: str, data: bytes, max_line_bytes: int = MAX_VIEW_BUFFER
) -> tuple[pa.Table, list[Rejected]]:
    """One row per non-empty line of `data`, without copying a single line.

    Each record is an Arrow string *view* (length, prefix, offset) into the inflated buffer, so
    the text is never copied on the way to the engine (a compacted copy cost 3x more: 2.8 s vs
    0.8 s per million events). Views address a buffer with 32-bit offsets, so a buffer larger
    than 2 GiB is cut at a newline into several.
    """
    tables, rejected, first_line = [], [], 1
    for segment in _segments(data):
        table, bad, lines = _split_segment(origin, segment, first_line, max_line_bytes)
        tables.append(table)
        rejected += bad
        first_line += lines
    if len(tables) == 1:
        return tables[0], rejected
    return pa.concat_tables(tables) if tables else RECORD_SCHEMA.empty_table(), rejected


@dataclass
class Piece:
    """Records of part of a file, and what of it could not become a record."""

    records: pa.Table
    rejected: list[Rejected] = field(default_factory=list)
    text_bytes: int = 0
    files: int = 0  # files (members) that start in this piece
    bytes: int = 0  # their compressed bytes

    @property
    def weight(self) -> int:
        """About what the piece holds in memory."""
        return self.text_bytes + ROW_WEIGHT * int(self.records.num_rows)


@dataclass
class _LongLine:
    line_no: int
    prefix: bytes
    length: int


class LineSplitter:
    """Lines of one file, fed a piece of its text at a time; line numbers run on across
    pieces, and a line longer than `max_line_bytes` is never held whole."""

    def __init__(self, origin: str, max_line_bytes: int) -> None:
        self.origin = origin
        self.max_line_bytes = max_line_bytes
        self.line_no = 1  # of the next line to start
        self._tail = b""  # the unfinished last line
        self._long: _LongLine | None = None

    def feed(self, text: bytes) -> Piece:
        rejected: list[Rejected] = []
        start = 0
        if self._long is not None:  # still inside a line too long to keep
            cut = text.find(b"\n")
            if cut < 0:
                self._long.length += len(text)
                return Piece(RECORD_SCHEMA.empty_table(), [], len(text))
            self._long.length += cut
            rejected.append(self._too_long())
            start = cut + 1
        last = text.rfind(b"\n", start)
        if last < 0:
            self._tail += text[start:]
            whole = b""
        else:
            whole = self._tail + text[start : last + 1] if self._tail else text[start : last + 1]
            self._tail = text[last + 1 :]
        piece = self._split(whole)
        piece.rejected[:0] = rejected
        piece.text_bytes = len(text)
        if len(self._tail) > self.max_line_bytes:
            tail, self._tail = self._tail, b""
            self._long = _LongLine(self.line_no, tail[:LONG_LINE_PREFIX], len(tail))
        return piece

    def finish(self) -> Piece:
        """What is left once the file ends: its last line when no newline ends it."""
        if self._long is not None:
            return Piece(RECORD_SCHEMA.empty_table(), [self._too_long()])
        tail, self._tail = self._tail, b""
        return self._split(tail)

    def _split(self, whole: bytes) -> Piece:
        if not whole:
            return Piece(RECORD_SCHEMA.empty_table())
        table, rejected, lines = _split_segment(
            self.origin, whole, self.line_no, self.max_line_bytes
        )
        self.line_no += lines
        return Piece(table, rejected)

    def _too_long(self) -> Rejected:
        assert self._long is not None
        long, self._long = self._long, None
        self.line_no += 1
        reason = too_long_reason(long.length, self.max_line_bytes)
        text = long.prefix.decode("utf-8", "replace")
        return Rejected(self.origin, long.line_no, reason, text)


def too_long_reason(length: int, limit: int) -> str:
    return (
        f"line of {length:,} bytes exceeds max_line_bytes ({_size(limit)}); "
        f"only its first {LONG_LINE_PREFIX:,} bytes are kept"
    )


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count:,} bytes"


def split_pieces(origin: str, texts: Iterable[bytes], max_line_bytes: int) -> Iterator[Piece]:
    """The records of a file whose inflated text comes in `texts`, a piece at a time."""
    splitter = LineSplitter(origin, max_line_bytes)
    for text in texts:
        yield splitter.feed(text)
    yield splitter.finish()


def bounded_parts(pieces: Iterable[Piece], max_part_bytes: int) -> Iterator[tuple[Piece, bool]]:
    """The pieces gathered into parts of about `max_part_bytes` each, and whether a part is
    the last: a part is handed over once the next piece exists, so the last one is known."""
    current: list[Piece] = []
    weight = 0
    for piece in pieces:
        if current and weight >= max_part_bytes:
            yield joined(current), False
            current, weight = [], 0
        current.append(piece)
        weight += piece.weight
    yield joined(current), True


def joined(pieces: list[Piece], schema: pa.Schema = RECORD_SCHEMA) -> Piece:
    """The pieces as one (their tables are chunks of one table: nothing is copied); an empty
    table of `schema` when none has a row."""
    tables = [p.records for p in pieces if p.records.num_rows]
    records = (
        pa.concat_tables(tables) if len(tables) > 1
        else tables[0] if tables else schema.empty_table()
    )  # fmt: skip
    return Piece(
        records,
        [r for p in pieces for r in p.rejected],
        sum(p.text_bytes for p in pieces),
        sum(p.files for p in pieces),
        sum(p.bytes for p in pieces),
    )


def _segments(data: bytes) -> list[bytes | memoryview]:
    if len(data) < MAX_VIEW_BUFFER:
        return [data]
    segments: list[bytes | memoryview] = []
    view, start = memoryview(data), 0
    while len(data) - start >= MAX_VIEW_BUFFER:
        cut = data.rfind(b"\n", start, start + MAX_VIEW_BUFFER) + 1
        if cut <= start:
            raise TerminalSourceError("a single line longer than 2 GiB cannot be a record")
        segments.append(view[start:cut])
        start = cut
    segments.append(view[start:])
    return segments


def _split_segment(
    origin: str, data: bytes | memoryview, first_line: int, max_line_bytes: int
) -> tuple[pa.Table, list[Rejected], int]:
    buffer = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buffer == NEWLINE)
    if len(buffer) and (len(ends) == 0 or ends[-1] != len(buffer) - 1):
        ends = np.append(ends, len(buffer))  # a last line without its newline
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else ends
    lengths = (ends - starts).astype(np.int32)
    line_no = np.arange(first_line, first_line + len(starts), dtype=np.int64)
    keep = lengths > 0  # blank lines are not records
    lines = len(keep)
    rejected: list[Rejected] = []
    too_long = lengths > max_line_bytes
    if too_long.any():  # rare: each is quarantined with its length and a prefix
        rejected = _too_long(origin, buffer, starts[too_long], lengths[too_long],
                             line_no[too_long], max_line_bytes)  # fmt: skip
        keep &= ~too_long
    starts, lengths, line_no = starts[keep], lengths[keep], line_no[keep]
    strings = _string_views(buffer, starts, lengths)
    try:
        strings.validate(full=True)  # UTF-8 included
    except pa.ArrowInvalid:  # rare: invalid UTF-8 somewhere in the file
        good, invalid = _find_invalid_utf8(origin, strings, line_no)
        rejected = sorted(rejected + invalid, key=lambda r: r.line_no)
        starts, lengths, line_no = starts[good], lengths[good], line_no[good]
        strings = _string_views(buffer, starts, lengths)
    table = pa.table(
        {
            "origin": repeated_string(origin, len(starts)),
            "line_no": pa.array(line_no),
            "record": strings,
        },
        schema=RECORD_SCHEMA,
    )
    return table, rejected, lines


def _too_long(
    origin: str, buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
    line_no: np.ndarray, limit: int,
) -> list[Rejected]:  # fmt: skip
    reasons = []
    for start, length, number in zip(starts, lengths, line_no, strict=True):
        prefix = bytes(buffer[int(start) : int(start) + LONG_LINE_PREFIX])
        text = prefix.decode("utf-8", "replace")
        reasons.append(Rejected(origin, int(number), too_long_reason(int(length), limit), text))
    return reasons


def _string_views(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    views = pa.py_buffer(_views(buffer, starts, lengths))
    return pa.Array.from_buffers(pa.string_view(), len(starts), [None, views, pa.py_buffer(buffer)])


def _views(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Arrow's 16-byte string views: int32 length, then 12 inline bytes when the string fits,
    else a 4-byte prefix, buffer index 0 and the int32 offset."""
    count = len(starts)
    views = np.zeros((count, 4), dtype=np.int32)
    views[:, 0] = lengths
    raw = views.view(np.uint8).reshape(count, 16)
    padded = np.concatenate([buffer, np.zeros(12, np.uint8)])
    head = padded[starts[:, None] + np.arange(12)]  # the first 12 bytes of every line
    short = lengths <= 12
    head[short] *= np.arange(12)[None, :] < lengths[short, None]  # zero past a short line's end
    raw[:, 4:16] = head
    views[~short, 2] = 0
    views[~short, 3] = starts[~short]
    return views


def repeated_string(value: str, count: int) -> pa.StringArray:
    """`value` `count` times, built from buffers (pa.repeat builds strings one by one)."""
    encoded = value.encode()
    offsets = np.arange(count + 1, dtype=np.int32) * len(encoded)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(encoded * count))


def _find_invalid_utf8(
    origin: str, strings: pa.Array, line_no: np.ndarray
) -> tuple[np.ndarray, list[Rejected]]:
    """The slow path, only for a file with bad bytes: which lines to keep, and the rejected."""
    good = np.ones(len(strings), dtype=bool)
    rejected = []
    for i, raw in enumerate(strings.view(pa.binary_view()).to_pylist()):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            good[i] = False
            text = raw.decode("utf-8", "replace")
            reason = f"not valid UTF-8 ({error.reason})"
            rejected.append(Rejected(origin, int(line_no[i]), reason, text))
    return good, rejected


def window_batches(
    source: str,
    window: Window,
    size: int,
    seconds: float,
    parts: Iterator[tuple[Piece, bool]],
    launches: list[dict[str, Any]] | None = None,
) -> Iterator[LandBatch]:
    """The batches of one window read from one file or chunk of `size` bytes (read in
    `seconds`): one per part, numbered, the file counted (and `launches` given) by the first."""
    for number in itertools.count():
        started = time.perf_counter()
        item = next(parts, None)
        if item is None:
            return
        piece, last = item
        first = number == 0
        yield LandBatch(
            source=source,
            window=window,
            origin=window.key,
            records=piece.records,
            files=1 if first else 0,
            bytes=size if first else 0,
            rejected=piece.rejected,
            timings={
                "download": seconds if first else 0.0,
                "decode": time.perf_counter() - started,
            },
            part=number,
            last=last,
            launches=(launches or []) if first else [],
        )
