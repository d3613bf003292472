"""Fault injection for the Amplitude Export API emulator.

A `Fault` says what goes wrong and for which requests; a `FaultPlan` holds the faults of one
emulator and hands them out per request, counting uses so `times=N` faults stop after N hits.
The byte-level helpers at the bottom damage export members the way real downloads get damaged.
"""

from __future__ import annotations

import gzip
import math
import re
import threading
from collections.abc import Callable, Collection, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta

from anchorflow.dev.synth.amplitude import export_file_name

HOUR_FORMAT = "%Y%m%dT%H"
_PART_RE = re.compile(r"\d+_\d{4}-\d{2}-\d{2}_\d{1,2}#(\d+)\.json\.gz")
_HOUR_RE = re.compile(r"\d{8}T\d{2}")  # strptime alone would accept `T5`

# Faults that replace the whole response with an error status.
STATUS_KINDS = frozenset({"rate_limit", "error_500", "error_504"})
# Faults that damage the data of the hours they match (one ZIP member each).
DATA_KINDS = frozenset({"corrupt_gzip", "malformed_line", "reexport"})
# `empty_zip`: HTTP 200 with a ZIP of no members, where the real API answers 404 or data.
KINDS = STATUS_KINDS | DATA_KINDS | {"slow", "truncated_zip", "unavailable", "empty_zip"}

# Options each kind accepts besides `hours` and `times`.
_KIND_PARAMS: dict[str, frozenset[str]] = {
    "rate_limit": frozenset({"retry_after"}),
    "slow": frozenset({"delay"}),
    "reexport": frozenset({"count"}),
}


@dataclass(frozen=True)
class Fault:
    """One injected failure.

    `hours=None` matches every request; otherwise a request matches when its range contains one
    of the hours. `times=None` affects every matching request, `times=N` only the first N.
    """

    kind: str
    hours: AbstractSet[datetime] | None = None  # stored as a frozenset
    times: int | None = None
    retry_after: int = 1  # rate_limit: seconds sent in Retry-After
    delay: float = 1.0  # slow: seconds to wait before answering
    count: int = 5  # reexport: lines of the previous hour to re-export

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {_kinds()}")
        if self.hours is not None and not isinstance(self.hours, frozenset):
            # Accept a plain set from callers but keep the dataclass hashable and immutable.
            object.__setattr__(self, "hours", frozenset(self.hours))
        if self.times is not None and self.times < 1:
            raise ValueError(f"fault {self.kind}: times must be at least 1, got {self.times}")
        if self.retry_after < 0:
            raise ValueError(f"fault {self.kind}: retry_after must be >= 0")
        if not math.isfinite(self.delay) or self.delay < 0:
            raise ValueError(f"fault {self.kind}: delay must be a finite number >= 0")
        if self.count < 1:
            raise ValueError(f"fault {self.kind}: count must be at least 1")

    def matches(self, hours: Collection[datetime]) -> bool:
        """Whether a request (or a set of served hours) falls under this fault."""
        return self.hours is None or not self.hours.isdisjoint(hours)

    def targets(self, hours: Iterable[datetime]) -> list[datetime]:
        """The hours among `hours` this fault damages, in the order given."""
        return [h for h in hours if self.hours is None or h in self.hours]


class FaultPlan:
    """The faults of one emulator; thread-safe because request threads share it."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = list(faults)
        self._uses: list[int] = [0] * len(self._faults)

    def add(self, fault: Fault) -> None:
        """Add a fault while the emulator runs; it applies from the next request on."""
        with self._lock:
            self._faults.append(fault)
            self._uses.append(0)

    def clear(self) -> None:
        """Drop every fault, e.g. to let a retry succeed."""
        with self._lock:
            self._faults.clear()
            self._uses.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def uses(self, fault: Fault) -> int:
        """How many requests the first fault equal to `fault` has affected so far."""
        with self._lock:
            return self._uses[self._faults.index(fault)]

    def take(
        self, kinds: Collection[str], hours: Collection[datetime], *, first_only: bool = False
    ) -> list[Fault]:
        """Claim the faults of `kinds` that match `hours` and have uses left, counting one use.

        Claiming and counting happen under one lock so two concurrent requests never both get
        the last use of a `times=1` fault.
        """
        taken: list[Fault] = []
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.kind not in kinds or not fault.matches(hours):
                    continue
                if fault.times is not None and self._uses[index] >= fault.times:
                    continue
                self._uses[index] += 1
                taken.append(fault)
                if first_only:
                    break
        return taken


def parse_fault(text: str) -> Fault:
    """Parse a CLI fault such as `rate_limit:times=2,retry_after=0` or
    `malformed_line:hours=20240301T05+20240301T06`."""
    kind, _, options = text.strip().partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r} in {text!r}; expected one of {_kinds()}")
    allowed = {"hours", "times"} | _KIND_PARAMS.get(kind, frozenset())
    values: dict[str, str] = {}
    for item in filter(None, options.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not value.strip():
            raise ValueError(f"fault option {item!r} in {text!r} must look like key=value")
        if key not in allowed:
            raise ValueError(
                f"fault {kind!r} does not take {key!r} (in {text!r}); allowed: "
                + ", ".join(sorted(allowed))
            )
        if key in values:
            raise ValueError(f"fault option {key!r} is given twice in {text!r}")
        values[key] = value.strip()
    return Fault(
        kind=kind,
        hours=_parse_hours(values["hours"], text) if "hours" in values else None,
        times=int(_number(values, "times", text)) if "times" in values else None,
        retry_after=_int_option(values, "retry_after", 1, text),
        delay=_float_option(values, "delay", 1.0, text),
        count=_int_option(values, "count", 5, text),
    )


def parse_hour(value: str) -> datetime:
    """An hour in the Export API's `YYYYMMDDTHH` form as a naive UTC datetime."""
    if not _HOUR_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an hour like 20240301T05")
    return datetime.strptime(value, HOUR_FORMAT)


def _parse_hours(value: str, text: str) -> frozenset[datetime]:
    hours: set[datetime] = set()
    for item in value.split("+"):
        try:
            hours.add(parse_hour(item))
        except ValueError:
            raise ValueError(
                f"fault hour {item!r} in {text!r} is not an hour like 20240301T05"
            ) from None
    return frozenset(hours)


def _int_option(values: dict[str, str], key: str, default: int, text: str) -> int:
    return int(_number(values, key, text)) if key in values else default


def _float_option(values: dict[str, str], key: str, default: float, text: str) -> float:
    return _number(values, key, text) if key in values else default


def _number(values: dict[str, str], key: str, text: str) -> float:
    """The option `key` as a non-negative number; only `delay` may have a fraction."""
    try:
        number = float(values[key]) if key == "delay" else int(values[key])
    except ValueError:
        raise ValueError(
            f"fault option {key}={values[key]!r} in {text!r} is not a number"
        ) from None
    if number < 0:
        raise ValueError(f"fault option {key} in {text!r} must not be negative")
    return number


def _kinds() -> str:
    return ", ".join(sorted(KINDS))


# --- damaging export members ---------------------------------------------------------------

_GZIP_HEADER = 10  # gzip.compress writes a fixed 10-byte header (no file name)
_GZIP_TRAILER = 8  # CRC32 + uncompressed size


def corrupt_gzip(data: bytes) -> bytes:
    """Flip bytes in the middle of the deflate stream; the header stays valid, so the file
    still looks like gzip and only fails when decompressed (bad code or CRC mismatch)."""
    body = bytearray(data)
    first, last = _GZIP_HEADER, max(_GZIP_HEADER + 1, len(body) - _GZIP_TRAILER)
    middle = (first + last) // 2
    for i in range(max(first, middle - 4), min(last, middle + 4)):
        body[i] ^= 0xFF
    return bytes(body)


def truncate_line(data: bytes, line_number: int = 3, keep: int = 40) -> bytes:
    """Replace line `line_number` (1-based, or the last line if shorter) of a gzip NDJSON
    member by its first `keep` bytes: a JSON line cut off mid-object."""
    lines = gzip.decompress(data).split(b"\n")
    index = min(line_number, max(1, len(lines) - 1)) - 1
    lines[index] = lines[index][:keep]
    return gzip.compress(b"\n".join(lines), 6, mtime=0)  # mtime=0: same bytes on every request


def head_lines(data: bytes, count: int) -> bytes:
    """The first `count` lines of a gzip NDJSON member, verbatim, as a new gzip member."""
    lines = gzip.decompress(data).split(b"\n")[:count]
    return gzip.compress(b"\n".join(line for line in lines if line) + b"\n", 6, mtime=0)


def apply_data_faults(
    faults: Iterable[Fault],
    files: dict[datetime, dict[str, bytes]],
    hour_files: Callable[[datetime], dict[str, bytes]],
) -> None:
    """Damage `files` (hour -> file name -> gzip bytes, changed in place) as `faults` say.

    `hour_files(hour)` gives any hour's files, for `reexport` of the previous hour.
    """
    for fault in faults:
        targets = fault.targets(files)
        # A corrupt download damages one member, not one per hour.
        for hour in targets[:1] if fault.kind == "corrupt_gzip" else targets:
            _damage_hour(fault, hour, files[hour], hour_files)


def _damage_hour(
    fault: Fault,
    hour: datetime,
    members: dict[str, bytes],
    hour_files: Callable[[datetime], dict[str, bytes]],
) -> None:
    first = next(iter(members))
    if fault.kind == "corrupt_gzip":
        members[first] = corrupt_gzip(members[first])
    elif fault.kind == "malformed_line":
        members[first] = truncate_line(members[first])
    elif fault.kind == "reexport":
        previous = hour_files(hour - timedelta(hours=1))
        if previous:
            project = int(first.split("_", 1)[0])
            name = export_file_name(project, hour, 1 + max(_part(n) for n in members))
            members[name] = head_lines(next(iter(previous.values())), fault.count)


def _part(name: str) -> int:
    """The `#<n>` part number of an export file name."""
    match = _PART_RE.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is not an export file name")
    return int(match[1])
