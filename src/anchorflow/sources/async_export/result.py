"""A downloaded export file as records: the `files` kind's readers over a file on disk.

- **csv**: every row a JSON object keyed by the header (values as text);
- **ndjson**: every non-empty line a record, as it is;
- **zip**: every member read by its extension (`.csv`, `.ndjson`, `.json`, ...; CSV when it
  has none), one after the other, in name order: each member is at least one part of the
  window's load, so a ZIP of large CSVs never has to fit in memory at once. A member that
  inflates past `max_inflation_ratio` is one quarantined record saying so.

A file the readers cannot take is a quarantined record with the reason, never a silent drop.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from anchorflow.errors import TransientSourceError
from anchorflow.sources.base import RECORD_SCHEMA, ReadLimits, Rejected
from anchorflow.sources.files.config import CsvOptions
from anchorflow.sources.files.readers import FORMAT_OF, read_parts
from anchorflow.sources.inflate import InflationRefused, inflated_pieces
from anchorflow.sources.lines import Piece

Parts = Iterator[tuple[Piece, bool]]


class CorruptResult(TransientSourceError):
    """The downloaded ZIP does not open: downloading it again may help."""


def result_parts(path: Path, fmt: str, name: str, csv: CsvOptions, limits: ReadLimits) -> Parts:
    """The records of the file at `path` (`name` is its origin in raw) in parts, each with
    whether it is the window's last."""
    if fmt != "zip":
        return read_parts(name, path.read_bytes(), fmt, "none", csv, limits)
    return _zip_parts(path, csv, limits)


def _zip_parts(path: Path, csv: CsvOptions, limits: ReadLimits) -> Parts:
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
            for piece, last in _member_parts(archive, info, csv, limits):
                yield piece, last and final


def _member_parts(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, csv: CsvOptions, limits: ReadLimits
) -> Parts:
    name = info.filename
    try:
        with archive.open(info) as stream:
            ratio = limits.max_inflation_ratio
            data = b"".join(inflated_pieces(stream, info.compress_size, False, ratio, name))
    except InflationRefused as error:
        rejected = Rejected(name, 1, str(error).removeprefix(f"{name}: "), "")
        yield Piece(RECORD_SCHEMA.empty_table(), [rejected]), True
        return
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise CorruptResult(f"{name}: the ZIP member does not read ({error})") from None
    base = name.rsplit("/", 1)[-1].lower().removesuffix(".gz")
    suffix = "." + base.rsplit(".", 1)[-1] if "." in base else ""
    fmt = FORMAT_OF.get(suffix, "csv")
    yield from read_parts(name, data, fmt, "auto", csv, limits)
