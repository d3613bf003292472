"""Files behind the Source protocol: a window is one file, loaded once as one load.

The cursor remembers every file loaded, by key and version: `{"files": {key: version}}`. A new
file, or one whose version changed, is due; a changed file is loaded again and replaces its
earlier load, as an Amplitude backfill replaces an hour. A backfill names a range of keys
(inclusive, either end open; a key that starts with the end is in it) and loads those files
again. A file that vanishes between listing
and reading is skipped with a warning (there is nothing left to load) and stays due if it comes
back. The next file is read and parsed while the current one commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from anchorflow.errors import ConfigError
from anchorflow.sources.base import (
    Cursor,
    FetchContext,
    LandBatch,
    Loaded,
    SourceState,
    Window,
)
from anchorflow.sources.files.config import FilesConfig
from anchorflow.sources.files.readers import read_parts
from anchorflow.sources.files.store import FileStore, StoredFile
from anchorflow.sources.lines import window_batches

log = logging.getLogger(__name__)


class FilesSource:
    def __init__(self, name: str, config: FilesConfig, root: Path) -> None:
        self.name = name
        self.config = config
        self.store = FileStore(name, config, root)
        self._listed: dict[str, StoredFile] = {}

    # -- plan -----------------------------------------------------------------------------------

    def plan(
        self, stream: str, cursor: Cursor | None, now: datetime, loaded: Loaded
    ) -> list[Window]:
        seen = _files(cursor)
        return [self._window(stream, f) for f in self._list() if seen.get(f.key) != f.version]

    def backfill(
        self, stream: str, start: str | None, end: str | None, now: datetime
    ) -> list[Window]:
        chosen = [
            f for f in self._list()
            if (start is None or f.key >= start)
            and (end is None or f.key <= end or f.key.startswith(end))
        ]  # fmt: skip
        if not chosen:
            between = f" between {start or 'the first'} and {end or 'the last'}" if (
                start or end) else ""  # fmt: skip
            raise ConfigError(
                [f"backfill: no file of sources.{self.name} ({self.config.path}) matches{between}"]
            )
        return [self._window(stream, f) for f in chosen]

    def _list(self) -> list[StoredFile]:
        """The files that are there and settled (not modified within `settle`)."""
        files = self.store.list()
        self._listed = {f.key: f for f in files}
        settle = self.config.settle.total_seconds()
        if settle <= 0:
            return files
        cutoff = time.time() - settle  # file times are real times, whatever --now says
        return [f for f in files if f.modified is None or f.modified <= cutoff]

    @staticmethod
    def _window(stream: str, file: StoredFile) -> Window:
        return Window(stream, file.key, version=file.version)

    # -- fetch ----------------------------------------------------------------------------------

    def fetch(self, windows: Sequence[Window], context: FetchContext) -> Iterator[LandBatch]:
        """One batch per file (or its parts, for a large NDJSON file), in order; the next
        file is read while this one commits."""
        if not windows:
            return
        with ThreadPoolExecutor(1, thread_name_prefix=f"files-{self.name}") as pool:
            ahead: Future[tuple[bytes, float] | None] = pool.submit(self._read, windows[0])
            for index, window in enumerate(windows):
                read = ahead.result()
                if index + 1 < len(windows):
                    ahead = pool.submit(self._read, windows[index + 1])
                if read is not None:
                    yield from self._batches(window, *read)

    def _read(self, window: Window) -> tuple[bytes, float] | None:
        """The file's bytes and the seconds reading took, or None when it vanished."""
        file = self._listed.get(window.key) or self._find(window.key)
        started = time.perf_counter()
        data = self.store.read(file) if file is not None else None
        if data is None:
            log.warning("%s: %s vanished before it was read; skipped", self.name, window.key)
            return None
        return data, time.perf_counter() - started

    def _batches(self, window: Window, data: bytes, seconds: float) -> Iterator[LandBatch]:
        config = self.config
        parts = read_parts(
            window.key, data, config.format, config.compression, config.csv, config.limits
        )
        yield from window_batches(self.name, window, len(data), seconds, parts)

    def _find(self, key: str) -> StoredFile | None:
        self._listed = {f.key: f for f in self.store.list()}
        return self._listed.get(key)

    # -- cursor ---------------------------------------------------------------------------------

    def cursor_after(self, window: Window, cursor: Cursor | None, loaded: Loaded) -> Cursor | None:
        files = dict(_files(cursor))
        files[window.key] = window.version or ""
        return {"files": files}

    def state(self, stream: str, cursor: Cursor | None, now: datetime) -> SourceState:
        seen = _files(cursor)
        position = f"{len(seen):,} file(s) loaded" if cursor else "never loaded"
        if self.config.unset_env:  # its credentials, endpoint or path wait for a variable
            missing = ", ".join(dict.fromkeys(name for _, name in self.config.unset_env))
            return SourceState(stream, position, None, note=f"unknown: {missing} not set")
        try:
            files = self._list()
        except Exception as error:  # status must show the stream even when listing fails
            return SourceState(stream, position, None, note=f"listing failed: {error}")
        due = [f for f in files if seen.get(f.key) != f.version]
        newest = files[-1].key if files else None
        return SourceState(stream, position, len(due), last_available=newest)

    def close(self) -> None:
        pass


def _files(cursor: Cursor | None) -> dict[str, str]:
    return dict(cursor.get("files", {})) if cursor else {}
