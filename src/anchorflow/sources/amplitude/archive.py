"""Open an Amplitude export ZIP and turn one hour of it into Arrow record columns.

The hot path never makes a Python object per event: each gzip member is inflated a few MiB at
a time, newline positions are found with numpy, and the lines become an Arrow string array
over the inflated buffer. JSON validity is then checked by the engine. An hour comes out in
parts of about `max_part_bytes` (see `sources.lines`), so no hour has to fit in memory; a
member that inflates past `max_inflation_ratio` is refused.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from anchorflow.errors import TerminalSourceError, TransientSourceError
from anchorflow.sources.base import RECORD_SCHEMA, ReadLimits
from anchorflow.sources.inflate import CorruptStream, InflationRefused, inflated_pieces
from anchorflow.sources.lines import Piece, bounded_parts, joined, split_pieces

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


class InflationBomb(TerminalSourceError):
    """A member inflates past `max_inflation_ratio`: the window fails, the cursor stays."""


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

    def hour_parts(self, hour: datetime, limits: ReadLimits) -> Iterator[tuple[Piece, bool]]:
        """The records of `hour`'s members, (origin, line_no, record), in parts of about
        `limits.max_part_bytes`, each with whether it is the hour's last."""
        return bounded_parts(self._pieces(hour, limits), limits.max_part_bytes)

    def decode_hour(self, hour: datetime, limits: ReadLimits | None = None) -> Piece:
        """All of `hour` at once (its parts joined): for small hours and tests."""
        chosen = limits or ReadLimits()
        return joined([piece for piece, _ in self.hour_parts(hour, chosen)])

    def _pieces(self, hour: datetime, limits: ReadLimits) -> Iterator[Piece]:
        for member in self.by_hour.get(hour, []):
            info = self._zip.getinfo(member.path)
            yield Piece(RECORD_SCHEMA.empty_table(), files=1, bytes=info.file_size)
            try:
                with self._zip.open(info) as stream:
                    texts = inflated_pieces(stream, info.compress_size, member.gzipped,
                                            limits.max_inflation_ratio, member.name)  # fmt: skip
                    yield from split_pieces(member.name, texts, limits.max_line_bytes)
            except InflationRefused as error:
                raise InflationBomb(str(error)) from None
            except CorruptStream as error:
                raise CorruptExport(f"{member.name}: {error}") from None
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
                raise CorruptExport(
                    f"{member.name}: the ZIP member does not read ({error})"
                ) from None


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
