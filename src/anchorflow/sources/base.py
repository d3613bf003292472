"""The Source port: what every source kind answers, whatever it reads.

A source lands one or more *streams*. For each stream it answers three questions:

- **plan**: given the stored cursor and the clock, which windows are due (closed hours of an
  export; files not seen yet or changed; a date range whose export job is requested then polled;
  one full-table scan; the next chunk files of a queue);
- **fetch**: the records of those windows, as `LandBatch`es (Arrow text plus where each record
  came from), in the order planned;
- **cursor**: the position after a window, as JSON, committed in the same transaction as the
  window's rows.

A window has a *key* that names it within its stream (`20240301T05`, a file's path, a chunk
id). A window delivered again under a key that already has a committed load replaces that load
(an Amplitude backfill of an hour, a file that changed). What the pipeline does with a batch
(land, stage, journal, cursor in one commit) is not the source's business: sources never see
the warehouse. They see the journal only through `Loaded`, which says which window keys of a
stream have a committed load, and `FetchContext.save_cursor`, which commits a cursor on its own
(a pending remote export id, before it is polled, so a crash resumes that export).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
from pydantic import ByteSize, Field, PrivateAttr

from anchorflow.project_types import CronSchedule, Identifier, JsonPath, Strict

# A source's position in a stream, stored as JSON text in the journal.
Cursor = dict[str, Any]

# The columns of `LandBatch.records`: the file (or chunk) a record came from, its 1-based line
# number there, and its text exactly as it arrived (a string view into the inflated file).
RECORD_SCHEMA = pa.schema(
    [("origin", pa.string()), ("line_no", pa.int64()), ("record", pa.string_view())]
)


class SourceConfig(Strict):
    """What every source kind's config model has; each kind adds its own keys."""

    kind: str
    stream: Identifier = "events"
    model_field: JsonPath | None = None  # the JSON key naming a record's model (drift: new models)
    max_part_bytes: ByteSize = Field(
        default=ByteSize(64 << 20),
        ge=1 << 20,
        description="a window whose text is larger is landed in several parts of one load",
    )
    max_line_bytes: ByteSize = Field(
        default=ByteSize(8 << 20),
        ge=1 << 10,
        description="a longer line is quarantined with its length and first KiB, not its text",
    )
    max_inflation_ratio: int = Field(
        default=200,
        ge=2,
        description="a compressed file inflating past this many times its size is refused",
    )
    schedule: CronSchedule | None = Field(
        default=None, description="when `anchorflow serve` runs this source's load (cron, UTC)"
    )
    # Set by the loader, never by the file: see `unset_env`.
    _unset_env: tuple[tuple[str, str], ...] = PrivateAttr(default=())
    _empty_env: frozenset[str] = PrivateAttr(default=frozenset())

    @property
    def unset_env(self) -> tuple[tuple[str, str], ...]:
        """(key path, variable) of each setting whose `${VAR}` is not set: left empty, because
        the command that loaded the project never contacts the source (`status`, `query`).
        A source must not contact anything with such settings."""
        return self._unset_env

    @property
    def empty_env(self) -> frozenset[str]:
        """The variables of `unset_env` that are set, to nothing (`NAME=` in `.env`)."""
        return self._empty_env

    @property
    def limits(self) -> ReadLimits:
        return ReadLimits(
            int(self.max_part_bytes), int(self.max_line_bytes), self.max_inflation_ratio
        )

    @property
    def streams(self) -> list[str]:
        """The streams this source lands, in the order they load (one raw table each)."""
        return [self.stream]


@dataclass(frozen=True)
class ReadLimits:
    """What bounds the memory a window's reading takes (the source's settings)."""

    max_part_bytes: int = 64 << 20
    max_line_bytes: int = 8 << 20
    max_inflation_ratio: int = 200


@dataclass(frozen=True)
class Window:
    """One unit a source delivers and the warehouse commits as one load."""

    stream: str
    key: str  # names the window in its stream; a committed key delivered again is replaced
    start: datetime | None = None  # the span of time it covers, where it has one (an hour)
    end: datetime | None = None
    version: str | None = None  # what was delivered: a file's size and mtime, or its ETag


@dataclass(frozen=True)
class Rejected:
    """A record that never became a string of text (for example invalid UTF-8)."""

    origin: str
    line_no: int
    reason: str
    text: str


@dataclass
class LandBatch:
    """The records of one window, committed as one load; or one part of them.

    A window larger than its source's `max_part_bytes` comes as several batches of the same
    window, numbered by `part` from 0, the last with `last` set: they are landed one after the
    other in one transaction, as one load (`files`, `bytes` and `rejected` add up).
    """

    source: str
    window: Window
    origin: str  # the request or object that delivered the window
    records: pa.Table
    files: int = 0
    bytes: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    note: str | None = None  # something suspicious about the delivery, kept in its load record
    part: int = 0
    last: bool = True
    # Who delivered the window, journaled with it (`meta.launches`): the launch manifests of
    # the intake processes that wrote a landing chunk (see `sources.chunks`); first part only.
    launches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return self.window.stream

    @property
    def rows(self) -> int:
        return int(self.records.num_rows)


@dataclass(frozen=True)
class QueueHealth:
    """A queue in front of a landing directory (a Redis list or stream, webhook intake), for
    `status` and the queue alerts. None: unknown (not asked, or the queue did not answer)."""

    depth: int | None  # items in the queue, not yet in a chunk
    chunks_waiting: int  # sealed chunks not loaded yet
    oldest_chunk_age: float | None  # seconds since the oldest of them was sealed
    readers_alive: int | None  # intake processes with a live heartbeat
    problem: str | None = None  # why the queue side is unknown


@dataclass(frozen=True)
class SourceState:
    """Where a stream stands, for `status`: its cursor in words, what is due, how far behind."""

    stream: str
    position: str  # in the source's words: "20240301T05" (the next hour), "12 file(s) loaded"
    due: int | None  # windows due now (None: unknown without asking the source)
    lag_hours: float | None = None
    last_available: str | None = None  # the newest window the source can deliver now
    note: str = ""
    replay_end: str | None = None  # a replay's last window (`end:`): no lag behind now
    queue: QueueHealth | None = None  # a source fed by a queue through landing chunks


class Loaded(Protocol):
    """The journal's answer to "which of these window keys has a committed load?"."""

    def __call__(self, stream: str, keys: Sequence[str]) -> set[str]: ...


class SaveCursor(Protocol):
    def __call__(self, stream: str, cursor: Cursor) -> None: ...


@dataclass(frozen=True)
class FetchContext:
    """What a fetch may use besides its windows.

    `fetch` runs off the main thread (the land step's producer thread, see `sources.prefetch`),
    so `save_cursor` runs there too: it commits under the warehouse's own lock and, when the
    land step has let go of the file during a network wait, opens it again (waiting up to the
    lock timeout for a reader), so call it between downloads (see docs/sources.md)."""

    # Scratch space inside the project (downloads in flight hold raw PII): a fetch makes its
    # own directory here and removes it; what a killed process left is removed at the next
    # start (`clear_work_dir`). Never the system's temp directory.
    work_dir: Path
    save_cursor: SaveCursor  # commit a cursor now, alone (a pending export id before polling)


def clear_work_dir(work_dir: Path) -> None:
    """Remove what fetches of an earlier process left in `work_dir` (a download cut off by
    kill -9 or SIGTERM). Only while holding the warehouse: then no other fetch of the project
    runs."""
    if not work_dir.is_dir():
        return
    for leftover in work_dir.iterdir():
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


class Source(Protocol):
    """One configured source (`sources.<name>` in the project file) of some kind."""

    name: str

    def plan(
        self, stream: str, cursor: Cursor | None, now: datetime, loaded: Loaded
    ) -> list[Window]:
        """The windows of `stream` due at `now`, in the order they must commit."""
        ...

    def backfill(
        self, stream: str, start: str | None, end: str | None, now: datetime
    ) -> list[Window]:
        """The windows between `start` and `end` (in the source's own notation), to load again
        whatever the cursor says; raise ConfigError naming the problem."""
        ...

    def fetch(self, windows: Sequence[Window], context: FetchContext) -> Iterator[LandBatch]:
        """The windows' records, one batch per window (or its parts, in order), in order. An
        error is raised after the batches that came before it, so those still commit."""
        ...

    def cursor_after(self, window: Window, cursor: Cursor | None, loaded: Loaded) -> Cursor | None:
        """The cursor once `window` is committed (`loaded` already holds it), or None to leave
        it as it is (a backfilled window behind the cursor)."""
        ...

    def state(self, stream: str, cursor: Cursor | None, now: datetime) -> SourceState:
        """Where the stream stands, without fetching any record (a listing may be needed).
        With settings whose variable is not set (`config.unset_env`), nothing is contacted:
        what needs the source is unknown, and the note says which variable is missing."""
        ...

    def close(self) -> None: ...
