"""Inflating compressed files in bounded pieces, with a cap on how far they may inflate.

gzip is inflated with ISA-L where it is installed (zlib otherwise), a few MiB of output at a
time, so a file never has to fit in memory inflated. A file that inflates to more than
`max_inflation_ratio` times its compressed size (a compression bomb: 130 KB of ZIP holding
128 MiB of newlines) is refused before it is inflated to the end.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import IO, Any, Protocol, cast

try:  # ISA-L inflates gzip about 1.5x faster than zlib (measured on the export files)
    from isal import igzip_lib, isal_zlib

    _decompressobj: Any = isal_zlib.decompressobj
    # isal's stubs declare IsalError as an instance; it is the exception class.
    ISAL_ERRORS: tuple[type[Exception], ...] = (cast(type[Exception], igzip_lib.IsalError),)
except ImportError:  # pragma: no cover - isal is a dependency; keep working without it
    _decompressobj = zlib.decompressobj
    ISAL_ERRORS = ()

# Every way a damaged gzip member fails: bad header or CRC, truncation, a broken deflate stream
# (zlib.error from zlib, IsalError from ISA-L).
GZIP_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, zlib.error, *ISAL_ERRORS)

READ_BYTES = 1 << 20  # compressed bytes read at a time
PIECE_BYTES = 8 << 20  # inflated bytes handed over at a time
# Below this, a file is never refused for its ratio: it cannot hurt, and tiny files of
# repetitive text (a header, a few identical events) compress far better than real exports.
INFLATION_FLOOR = 16 << 20
GZIP_MAGIC = b"\x1f\x8b"


class CorruptStream(Exception):
    """The compressed stream does not decode; the message says how."""


class InflationRefused(Exception):
    """The file inflates past `max_inflation_ratio`; the message names the setting to raise."""


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes
    unconsumed_tail: bytes

    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...
    def flush(self) -> bytes: ...


def inflated_pieces(
    stream: IO[bytes], compressed: int, gzipped: bool, max_ratio: int, name: str
) -> Iterator[bytes]:
    """The stream's bytes (inflated when `gzipped`), at most `PIECE_BYTES` at a time.

    `compressed` is the size the file had where it was stored; inflating past `max_ratio`
    times it (and past `INFLATION_FLOOR`) raises InflationRefused, having held one piece.
    """
    limit = max(max_ratio * compressed, INFLATION_FLOOR)
    total = 0
    for piece in _gunzip(stream) if gzipped else _plain(stream):
        total += len(piece)
        if total > limit:
            raise InflationRefused(
                f"{name}: {compressed:,} compressed bytes inflate to more than {limit:,} bytes "
                f"(over {max_ratio}:1), refused as a compression bomb; if the file is genuine, "
                "raise max_inflation_ratio on the source"
            )
        yield piece


def inflate_all(data: bytes, max_ratio: int, name: str) -> bytes:
    """A whole gzip file inflated (for formats read whole), with the same cap."""
    import io

    return b"".join(inflated_pieces(io.BytesIO(data), len(data), True, max_ratio, name))


def _plain(stream: IO[bytes]) -> Iterator[bytes]:
    while piece := stream.read(PIECE_BYTES):
        yield piece


def _gunzip(stream: IO[bytes]) -> Iterator[bytes]:
    """Every gzip member of the stream, one after the other, like `gzip.decompress`."""
    decompressor: _Decompressor = _decompressobj(31)
    pending, started = b"", False
    try:
        while True:
            if not pending:
                pending = stream.read(READ_BYTES)
                if not pending:
                    break
            if decompressor.eof:  # the next member, or padding after the last one
                while len(pending) < len(GZIP_MAGIC):  # a read may end inside the magic
                    more = stream.read(READ_BYTES)
                    if not more:
                        break
                    pending += more
                if not pending.startswith(GZIP_MAGIC):
                    if pending.strip(b"\0"):
                        raise CorruptStream("unexpected bytes after the last gzip member")
                    pending = b""
                    continue
                decompressor = _decompressobj(31)
            started = True
            piece = decompressor.decompress(pending, PIECE_BYTES)
            pending = decompressor.unconsumed_tail or decompressor.unused_data
            if piece:
                yield piece
        rest = decompressor.flush()
        if rest:
            yield rest
    except GZIP_ERRORS as error:
        raise CorruptStream(f"the gzip stream is corrupt ({error})") from None
    if started and not decompressor.eof:
        raise CorruptStream("the gzip stream is truncated")
