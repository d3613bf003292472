"""Landing chunks behind the Source protocol: a window is one sealed chunk, loaded exactly once.

Intake processes (Redis readers, the webhook server) write chunk files into a landing directory
(see `sources.chunks`); `ChunkSource` is the loader's side, shared by the kinds that land that
way. For a stream (a queue), the due windows are its sealed chunks whose ids have no committed
load; the window key and the records' origin are the chunk id, a record's `line_no` its line
in the chunk. A chunk's rows, its load record and the launch that wrote it are committed in one
transaction, so a loader killed anywhere loads the chunk again, whole, and never twice.

A committed chunk is no longer needed: it is deleted when the run that committed it ends
(`close`), and, should the loader die before that, at the next plan (asked of the journal
first: a chunk is deleted only once its load is committed). A sealed chunk is deleted by
nobody else, so one that vanishes between plan and read is an error, not a skip. The next
chunk is read while the current one commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from anchorflow.errors import ConfigError, TerminalSourceError
from anchorflow.sources import chunks
from anchorflow.sources.base import (
    Cursor,
    FetchContext,
    LandBatch,
    Loaded,
    QueueHealth,
    SourceConfig,
    SourceState,
    Window,
)
from anchorflow.sources.chunk_arrow import read_arrow_chunk
from anchorflow.sources.files.config import CsvOptions
from anchorflow.sources.files.readers import read_parts
from anchorflow.sources.lines import window_batches

log = logging.getLogger(__name__)


class ChunkSource:
    """A source whose windows are the sealed chunks of `<landing>/<stream>/`.

    Subclasses (the `redis` kind, the `webhook` kind) add what they know about the queue in
    front of the landing directory (`queue_depth`, `readers_alive`) and their own `kind`."""

    kind = "chunks"

    def __init__(self, name: str, config: SourceConfig, landing: Path) -> None:
        self.name = name
        self.config = config
        self.landing = landing
        self._planned: dict[str, list[str]] = {}  # stream: chunk ids planned this run
        self._loaded: Loaded | None = None
        self._launches: dict[str, dict[str, Any] | None] = {}

    def directory(self, stream: str) -> Path:
        return self.landing / stream

    # -- plan -----------------------------------------------------------------------------------

    def plan(
        self, stream: str, cursor: Cursor | None, now: datetime, loaded: Loaded
    ) -> list[Window]:
        """The sealed chunks not committed yet, in id order; the committed ones are deleted."""
        sealed = chunks.sealed_chunks(self.directory(stream))
        done = loaded(stream, sealed) if sealed else set()
        self._delete(stream, sorted(done))
        due = [c for c in sealed if c not in done]
        self._planned[stream] = due
        self._loaded = loaded
        return [Window(stream, c) for c in due]

    def backfill(
        self, stream: str, start: str | None, end: str | None, now: datetime
    ) -> list[Window]:
        raise ConfigError(
            [
                f"backfill: sources.{self.name} is a {self.kind} source: each chunk is loaded "
                "once, when it lands, and deleted once committed; there is nothing to load "
                "again (its records stay in raw; `anchorflow rollback LOAD_ID` retypes a load)"
            ]
        )

    def _delete(self, stream: str, committed: Sequence[str]) -> None:
        """Delete chunk files whose loads are committed (the journal said so)."""
        directory = self.directory(stream)
        for chunk in committed:
            for path in chunks.chunk_paths(directory, chunk):
                path.unlink(missing_ok=True)
            log.debug("%s %s: chunk %s is committed; deleted", self.name, stream, chunk)

    # -- fetch ----------------------------------------------------------------------------------

    def fetch(self, windows: Sequence[Window], context: FetchContext) -> Iterator[LandBatch]:
        """One batch per chunk (or its parts, for a chunk over `max_part_bytes`), in order;
        the next chunk is read while this one commits."""
        if not windows:
            return
        with ThreadPoolExecutor(1, thread_name_prefix=f"chunks-{self.name}") as pool:
            ahead: Future[tuple[Path, bytes, float]] = pool.submit(self._read, windows[0])
            for index, window in enumerate(windows):
                path, data, seconds = ahead.result()  # a vanished chunk raises here, in order
                if index + 1 < len(windows):
                    ahead = pool.submit(self._read, windows[index + 1])
                yield from self._batches(window, path, data, seconds)

    def _read(self, window: Window) -> tuple[Path, bytes, float]:
        path = chunks.chunk_path(self.directory(window.stream), window.key)
        started = time.perf_counter()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TerminalSourceError(
                f"{self.name}: chunk {window.key} vanished from {path.parent} after it was "
                "planned; a sealed chunk is deleted only by the loader once its load is "
                "committed, so someone (or a second loader) deleted it: its records are lost "
                "unless the file is put back"
            ) from None
        return path, data, time.perf_counter() - started

    def _batches(
        self, window: Window, path: Path, data: bytes, seconds: float
    ) -> Iterator[LandBatch]:
        limits = self.config.limits
        parts = (
            read_arrow_chunk(window.key, data, path, limits)
            if chunks.chunk_format(path) == chunks.ARROW
            else read_parts(window.key, data, "ndjson", "none", CsvOptions(), limits)
        )
        launch = [self.launch_record(window)]
        yield from window_batches(self.name, window, len(data), seconds, parts, launch)

    def launch_record(self, window: Window) -> dict[str, Any]:
        """Who wrote the chunk, from its launch manifest (read once per launch). A missing
        manifest still gives the launch id, the source and the queue."""
        launch = chunks.launch_of(window.key) or window.key
        if launch not in self._launches:
            self._launches[launch] = chunks.read_launch(self.landing, launch)
        manifest = self._launches[launch] or {}
        return {
            "launch_id": launch,
            "kind": str(manifest.get("kind") or self.kind),
            "source": str(manifest.get("source") or self.name),
            "queue": str(manifest.get("queue") or window.stream),
            "host": manifest.get("host"),
            "pid": manifest.get("pid"),
            "started_at": manifest.get("started_at"),
        }

    # -- cursor ---------------------------------------------------------------------------------

    def cursor_after(self, window: Window, cursor: Cursor | None, loaded: Loaded) -> Cursor | None:
        """How many chunks were loaded and the last one: the journal (its loads) is the
        list of them, the cursor only a position to show."""
        count = int(cursor.get("chunks", 0)) if cursor else 0
        return {"chunks": count + 1, "last": window.key}

    # -- health ---------------------------------------------------------------------------------

    def state(self, stream: str, cursor: Cursor | None, now: datetime) -> SourceState:
        position = (
            f"{int(cursor.get('chunks', 0)):,} chunk(s) loaded, last {cursor.get('last')}"
            if cursor
            else "never loaded"
        )
        health = self.queue_health(stream)
        note = health.problem or ""
        return SourceState(stream, position, health.chunks_waiting, note=note, queue=health)

    def queue_health(self, stream: str, contact: bool = True) -> QueueHealth:
        """The landing side (chunks waiting, the oldest one's age) and, when `contact` and the
        settings allow, the queue side (`queue_depth`, `readers_alive`)."""
        waiting, oldest = self.chunks_waiting(stream)
        depth = readers = None
        problem: str | None = None
        if self.config.unset_env:
            missing = ", ".join(dict.fromkeys(name for _, name in self.config.unset_env))
            problem = f"queue unknown: {missing} not set"
        elif contact:
            try:
                depth, readers = self.queue_depth(stream), self.readers_alive(stream)
            except Exception as error:  # status shows the landing side whatever the queue does
                problem = self.describe_failure(error)
        return QueueHealth(depth, waiting, oldest, readers, problem)

    def chunks_waiting(self, stream: str) -> tuple[int, float | None]:
        """Sealed chunks in the landing directory and the age in seconds of the oldest (by
        its file time: real time, whatever `--now` says). A chunk committed by a loader that
        died before deleting it counts until the next run deletes it."""
        directory = self.directory(stream)
        times = []
        for chunk in chunks.sealed_chunks(directory):
            try:
                times.append(chunks.chunk_path(directory, chunk).stat().st_mtime)
            except FileNotFoundError:  # loaded and deleted meanwhile
                continue
        oldest = max(0.0, time.time() - min(times)) if times else None
        return len(times), oldest

    def queue_depth(self, stream: str) -> int | None:
        """Items waiting in front of the landing directory (None: the kind has no queue)."""
        return None

    def readers_alive(self, stream: str) -> int | None:
        """Writers of the stream alive now (None: the kind cannot tell)."""
        return None

    def alert_limits(self) -> tuple[int | None, timedelta | None]:
        """When a queue alerts: past this depth, or grown at every sample for this long."""
        return None, None

    def describe_failure(self, error: BaseException) -> str:
        return f"queue unknown: {type(error).__name__}: {str(error).splitlines()[0][:200]}"

    # -- end ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Delete the chunks this run committed (asked of the journal: a chunk whose commit
        failed stays). A failure here loses nothing: the next plan deletes them."""
        loaded, self._loaded = self._loaded, None
        planned, self._planned = self._planned, {}
        if loaded is None:
            return
        for stream, due in planned.items():
            try:
                self._delete(stream, sorted(loaded(stream, due)) if due else [])
            except Exception as error:
                log.debug("%s %s: committed chunks left for the next plan (%s)",
                          self.name, stream, error)  # fmt: skip
