"""A downloaded export file as records, read from disk a block or a member at a time.

- **csv**: every row a JSON object keyed by the header, values as text (see `csv_stream`: a
  block at a time, so a file of any size is read in bounded memory);
- **ndjson**: every non-empty line a record, as it is (the `files` kind's reader);
- **zip**: every member read by its extension (`.csv`, `.ndjson`, `.json`, ...; CSV when it
  has none; `.gz` inflated), one after the other in name order, each at least one part of the
  window's load. A member declaring more than `max_inflation_ratio` times its compressed size
  is one quarantined record saying so (Python's ZIP reader never inflates past the declared
  size).

A file the readers cannot take is a quarantined record with the reason, never a silent drop.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from anchorflow.errors import TransientSourceError
from anchorflow.sources.async_export.csv_stream import csv_pieces
from anchorflow.sources.base import RECORD_SCHEMA, ReadLimits, Rejected
from anchorflow.sources.files.config import CsvOptions
from anchorflow.sources.files.readers import FORMAT_OF, read_parts
from anchorflow.sources.inflate import INFLATION_FLOOR
from anchorflow.sources.lines import Piece, bounded_parts

Parts = Iterator[tuple[Piece, bool]]


class CorruptResult(TransientSourceError):
    """The downloaded ZIP does not open: downloading it again may help."""


def result_parts(
    path: Path, fmt: str, name: str, csv: CsvOptions, limits: ReadLimits,
    lists: dict[str, str] | None = None,
) -> Parts:  # fmt: skip
    """The records of the file at `path` (`name` is its origin in raw) in parts, each with
    whether it is the window's last; CSV columns named in `lists` split into arrays."""
    if fmt == "csv":
        pieces = csv_pieces(name, lambda: path.open("rb"), csv, lists=lists)
        return bounded_parts(pieces, limits.max_part_bytes)
    if fmt == "ndjson":
        return read_parts(name, path.read_bytes(), fmt, "none", csv, limits)
    return _zip_parts(path, csv, limits, lists or {})


def _zip_parts(path: Path, csv: CsvOptions, limits: ReadLimits, lists: dict[str, str]) -> Parts:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise CorruptResult(f"the export ZIP does not open ({error})") from None
    with archive:
        members = sorted(
            (info for info in archive.infolist() if not info.is_dir()), key=lambda i: i.filename
        )
        if not members:
            yield Piece(RECORD_SCHEMA.empty_table()), True
            return
        for index, info in enumerate(members):
            final = index == len(members) - 1
            try:
                for piece, last in _member_parts(archive, info, csv, limits, lists):
                    yield piece, last and final
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise CorruptResult(
                    f"{info.filename}: the ZIP member does not read ({error})"
                ) from None


def _member_parts(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, csv: CsvOptions, limits: ReadLimits,
    lists: dict[str, str],
) -> Parts:  # fmt: skip
    name = info.filename
    ratio = limits.max_inflation_ratio
    if info.file_size > max(ratio * info.compress_size, INFLATION_FLOOR):
        reason = (f"{info.compress_size:,} compressed bytes inflate to {info.file_size:,} bytes "
                  f"(over {ratio}:1), refused as a compression bomb; if the file is genuine, "
                  "raise max_inflation_ratio on the source")  # fmt: skip
        yield Piece(RECORD_SCHEMA.empty_table(), [Rejected(name, 1, reason, "")]), True
        return
    base = name.rsplit("/", 1)[-1].lower()
    plain = base.removesuffix(".gz")
    fmt = FORMAT_OF.get("." + plain.rsplit(".", 1)[-1] if "." in plain else "", "csv")
    if fmt == "csv" and plain == base:

        def opener() -> IO[bytes]:
            return archive.open(info)

        pieces = csv_pieces(name, opener, csv, lists=lists)
        yield from bounded_parts(pieces, limits.max_part_bytes)
        return
    with archive.open(info) as stream:
        data = stream.read()
    yield from read_parts(name, data, fmt, "auto", csv, limits)
