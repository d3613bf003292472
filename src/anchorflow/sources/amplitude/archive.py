"""Open an Amplitude export ZIP and turn one hour of it into Arrow record columns.

The hot path never makes a Python object per event: each gzip member is inflated in a worker
thread (zlib releases the GIL), newline positions are found with numpy, and the lines become an
Arrow string array over the inflated buffer. JSON validity is then checked by the engine.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections import defaultdict
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from anchorflow.errors import TerminalSourceError, TransientSourceError
from anchorflow.sources.base import RECORD_SCHEMA, Rejected
from anchorflow.sources.inflate import GZIP_ERRORS, gunzip
from anchorflow.sources.lines import split_lines

# <projectid>_<YYYY-MM-DD>_<H>#<n>.json.gz, inside a folder named by the project id.
MEMBER = re.compile(r"(?:^|/)(\d+)_(\d{4}-\d{2}-\d{2})_(\d{1,2})#(\d+)\.json(\.gz)?$")


class CorruptExport(TransientSourceError):
    """The ZIP or a gzip member inside it does not decode; downloading again may help."""


@dataclass(frozen=True)
class Member:
    name: str  # file name without the folder, as recorded in raw.origin
    path: str  # path inside the ZIP
    hour: datetime
    part: int
    gzipped: bool


@dataclass
class DecodedHour:
    records: pa.Table
    files: int
    bytes: int
    rejected: list[Rejected]


class ExportArchive:
    """The members of one downloaded export, grouped by hour."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._zip = zipfile.ZipFile(path)
            names = self._zip.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise CorruptExport(f"the export ZIP does not open ({error})") from None
        self.by_hour: dict[datetime, list[Member]] = defaultdict(list)
        try:
            for name in names:
                if not name.endswith("/"):
                    member = _member(name)
                    self.by_hour[member.hour].append(member)
        except BaseException:
            self._zip.close()
            raise
        for members in self.by_hour.values():
            members.sort(key=lambda m: m.part)

    def close(self) -> None:
        self._zip.close()

    def hours(self) -> set[datetime]:
        return set(self.by_hour)

    def decode_hour(self, hour: datetime, pool: Executor) -> DecodedHour:
        """All members of `hour` as one table of (origin, line_no, record)."""
        members = self.by_hour.get(hour, [])
        compressed = [self._read(m) for m in members]  # zipfile reads are serialised anyway
        inflated = list(pool.map(_inflate, members, compressed))
        tables, rejected = [], []
        for member, data in zip(members, inflated, strict=True):
            table, bad = split_lines(member.name, data)
            tables.append(table)
            rejected.extend(bad)
        records = pa.concat_tables(tables) if tables else RECORD_SCHEMA.empty_table()
        return DecodedHour(records, len(members), sum(len(c) for c in compressed), rejected)

    def _read(self, member: Member) -> bytes:
        try:
            return self._zip.read(member.path)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
            raise CorruptExport(f"{member.name}: the ZIP member does not read ({error})") from None


def _member(name: str) -> Member:
    match = MEMBER.search(name)
    if not match:
        raise TerminalSourceError(
            f"unexpected file {name!r} in the export: "
            "expected <project>_<YYYY-MM-DD>_<H>#<n>.json.gz"
        )
    _, day, hour, part, gz = match.groups()
    try:
        when = datetime.strptime(f"{day} {int(hour):02d}", "%Y-%m-%d %H")
    except ValueError:
        raise TerminalSourceError(f"file {name!r} in the export names an impossible hour") from None
    return Member(name.rsplit("/", 1)[-1], name, when, int(part), gz is not None)


def _inflate(member: Member, data: bytes) -> bytes:
    if not member.gzipped:
        return data
    try:
        inflated: bytes = gunzip(data)  # type: ignore[no-untyped-call]
        return inflated
    except GZIP_ERRORS as error:
        raise CorruptExport(f"{member.name}: the gzip stream is corrupt ({error})") from None
