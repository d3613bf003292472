"""Async exports behind the Source protocol: a window is one export of a date range.

A dated stream's windows are `window` long (a day by default) from `start:`; one is due once
it ended `delay` ago. Its cursor is `{"next": "<first window not loaded>"}`, moved only over a
contiguous loaded prefix. A `snapshot` stream (an export with no dates, MaestroQA's groups) has
one window a day, keyed by the day of the run: `{"last": "<day>"}`.

The export of a window is requested, its id journaled at once (`FetchContext.save_cursor`,
under `pending` in the cursor), and only then polled: a run that dies while the export is
prepared resumes polling that export instead of requesting another. The pending entry goes
when the window commits. An export that ends `errored` is requested again, up to
`errored_attempts` times, then the stream fails with the window named; an expired download
link is exchanged for a fresh one by polling the status again.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from datetime import time as clock
from functools import partial
from pathlib import Path
from typing import Any

from anchorflow.crashpoints import crash_point
from anchorflow.errors import ConfigError, TerminalSourceError, TransientSourceError
from anchorflow.sources.async_export.client import Cancelled, ExportApi, Status, UnknownExport
from anchorflow.sources.async_export.config import AsyncExportConfig, StreamSpec
from anchorflow.sources.async_export.result import result_parts
from anchorflow.sources.base import Cursor, FetchContext, LandBatch, Loaded, SourceState, Window
from anchorflow.sources.lines import window_batches
from anchorflow.sources.prefetch import Prefetch

log = logging.getLogger(__name__)
DAY = timedelta(days=1)
EXTENSION = {"csv": "csv", "zip": "zip", "ndjson": "ndjson"}


class AsyncExportSource:
    def __init__(self, name: str, config: AsyncExportConfig, root: Path | None = None) -> None:
        self.name = name
        self.config = config
        self._cursors: dict[str, Cursor | None] = {}  # as planned: the base of a pending save

    # -- windows --------------------------------------------------------------------------------

    def window_key(self, start: datetime) -> str:
        whole_days = self.config.window % DAY == timedelta(0)
        return start.strftime("%Y-%m-%d" if whole_days else "%Y-%m-%dT%H:%M")

    def window_at(self, stream: str, start: datetime) -> Window:
        return Window(stream, self.window_key(start), start, start + self.config.window)

    def position(self, cursor: Cursor | None) -> datetime:
        """The start of the first window not loaded (of a dated stream)."""
        if cursor and "next" in cursor:
            return datetime.fromisoformat(cursor["next"])
        return datetime.combine(self.config.start, clock())

    def _snapshot_window(self, stream: str, now: datetime) -> Window:
        day = datetime.combine(now.date(), clock())
        return Window(stream, day.strftime("%Y-%m-%d"), day, day + DAY)

    def _due(self, stream: str, first: datetime, now: datetime) -> list[Window]:
        windows = []
        start = first
        while start + self.config.window + self.config.delay <= now:
            windows.append(self.window_at(stream, start))
            start += self.config.window
        return windows

    def _advanced(self, stream: str, position: datetime, loaded: Loaded) -> datetime:
        """`position` moved past the windows already loaded from it."""
        while loaded(stream, [self.window_key(position)]):
            position += self.config.window
        return position

    # -- plan -----------------------------------------------------------------------------------

    def plan(
        self, stream: str, cursor: Cursor | None, now: datetime, loaded: Loaded
    ) -> list[Window]:
        self._cursors[stream] = cursor
        if self.config.stream_spec(stream).snapshot:
            window = self._snapshot_window(stream, now)
            return [] if loaded(stream, [window.key]) else [window]
        return self._due(stream, self._advanced(stream, self.position(cursor), loaded), now)

    def backfill(
        self, stream: str, start: str | None, end: str | None, now: datetime
    ) -> list[Window]:
        if self.config.stream_spec(stream).snapshot:
            # A snapshot holds the state of today, not of a past range: only an open backfill
            # (no days named) takes it again.
            return [] if start or end else [self._snapshot_window(stream, now)]
        if start is None or end is None:
            raise ConfigError([f"backfill: sources.{self.name} needs --start and --end days"])
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError as error:
            raise ConfigError([f"backfill: {error}; expected days as YYYY-MM-DD"]) from None
        if last < first:
            raise ConfigError([f"backfill: --end {end} is before --start {start}"])
        begin = datetime.combine(first, clock())
        windows = self._due(stream, begin, now)
        return [w for w in windows if w.start is not None and w.start.date() <= last]

    # -- fetch ----------------------------------------------------------------------------------

    def fetch(self, windows: Sequence[Window], context: FetchContext) -> Iterator[LandBatch]:
        """The windows' batches in order. Nothing runs ahead of the caller (`ahead` 0): a
        window's export is requested only once the window before it has committed, so the
        cursor saved with its pending id never runs ahead of the data."""
        if not windows:
            return iter(())
        return Prefetch(partial(self._produce, list(windows), context), 0, f"{self.name}-export")

    def _produce(
        self, windows: list[Window], context: FetchContext, stop: threading.Event
    ) -> Iterator[LandBatch]:
        api = ExportApi(self.name, self.config, stop)
        context.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(prefix=f"{self.name}-", dir=context.work_dir) as tmp:
                for window in windows:
                    yield from self._window_batches(api, window, context, Path(tmp))
        except Cancelled:
            return
        finally:
            api.close()

    def _window_batches(
        self, api: ExportApi, window: Window, context: FetchContext, tmp: Path
    ) -> Iterator[LandBatch]:
        spec = self.config.stream_spec(window.stream)
        dest = tmp / f"{window.stream}.{EXTENSION[spec.format]}"
        started = time.perf_counter()
        self._download(api, window, spec, context, dest)
        seconds = time.perf_counter() - started
        name = f"{window.stream}_{window.key}.{EXTENSION[spec.format]}"
        config = self.config
        parts = result_parts(dest, spec.format, name, config.csv, config.limits, spec.list_columns)
        yield from window_batches(self.name, window, dest.stat().st_size, seconds, parts)
        self._committed(window)  # asked for more: the window has committed

    def _download(
        self, api: ExportApi, window: Window, spec: StreamSpec, context: FetchContext, dest: Path
    ) -> None:
        """The window's export file into `dest`: the pending export resumed, or requested (and
        journaled before it is polled); an errored export requested again, an expired link
        exchanged for a fresh one."""
        entry = self._pending(window.stream).get(window.key)
        export_id: str | None = entry["export_id"] if entry else None
        errored = int(entry.get("errored", 0)) if entry else 0
        while True:
            if export_id is None:
                export_id = self._request(api, window, spec, context, errored)
            try:
                status = api.wait_complete(export_id)
            except UnknownExport:  # expired on the API's side while no run polled it
                errored += 1
                self._check_errored(window, context, export_id, errored, "was unknown to the API")
                export_id = None
                continue
            if status.state == "errored":
                errored += 1
                self._check_errored(window, context, export_id, errored, f"ended {status.value!r}")
                export_id = None
                continue
            if self._fetch_file(api, window, export_id, status, dest):
                return

    def _request(
        self, api: ExportApi, window: Window, spec: StreamSpec, context: FetchContext, errored: int
    ) -> str:
        body = _filled(spec.request.body, self._bounds(window))
        export_id = api.request_export(spec.request.method, spec.request.path, body)
        self._save_pending(window, context, {"export_id": export_id, "errored": errored})
        crash_point("async_export_requested")
        return export_id

    def _check_errored(
        self, window: Window, context: FetchContext, export_id: str, errored: int, what: str
    ) -> None:
        """Whether to request the window's export again (its export `what`: ended errored, or
        was unknown), or fail: after `errored_attempts` exports."""
        if errored < self.config.errored_attempts:
            log.warning("%s: export %s of %s %s %s (%d of %d); requesting it again",
                        self.name, export_id, window.stream, window.key, what, errored,
                        self.config.errored_attempts)  # fmt: skip
            return
        self._save_pending(window, context, None)  # a later run starts over with new attempts
        raise TerminalSourceError(
            f"{self.name}: the export of {window.stream} {window.key} {what}, "
            f"{errored} time(s) (errored_attempts: {self.config.errored_attempts}); nothing of "
            f"it was loaded and the stream stays at {window.key}: check the export in the "
            "API's own interface, then run again"
        )

    def _fetch_file(
        self, api: ExportApi, window: Window, export_id: str, status: Status, dest: Path
    ) -> bool:
        """Download a complete export; False when it errored meanwhile (request it again)."""
        for _ in range(self.config.download_attempts):
            if status.state != "complete" or status.url is None:
                return False
            if api.download(status.url, dest):
                return True
            status = api.wait_complete(export_id)  # a fresh link
        raise TransientSourceError(
            f"{self.name}: the download link of {window.stream} {window.key} expired "
            f"{self.config.download_attempts} time(s) before it could be read; run again"
        )

    def _bounds(self, window: Window) -> dict[str, str]:
        fmt = self.config.date_format
        if window.start is None or window.end is None:
            return {}
        return {"start": window.start.strftime(fmt), "end": window.end.strftime(fmt)}

    # -- pending exports ------------------------------------------------------------------------

    def _pending(self, stream: str) -> dict[str, Any]:
        cursor = self._cursors.get(stream) or {}
        return dict(cursor.get("pending", {}))

    def _save_pending(
        self, window: Window, context: FetchContext, entry: dict[str, Any] | None
    ) -> None:
        """Journal (or clear) the window's pending export, alone, before it is polled."""
        if window.stream not in self._cursors:
            log.info("%s: a backfill's pending export is not journaled", self.name)
            return
        cursor = dict(self._cursors[window.stream] or self._first_cursor(window.stream))
        pending = dict(cursor.get("pending", {}))
        if entry is None:
            pending.pop(window.key, None)
        else:
            pending[window.key] = entry
        cursor["pending"] = pending
        if not pending:
            del cursor["pending"]
        self._cursors[window.stream] = cursor
        context.save_cursor(window.stream, cursor)

    def _first_cursor(self, stream: str) -> Cursor:
        if self.config.stream_spec(stream).snapshot:
            return {}
        return {"next": self.position(None).isoformat()}

    def _committed(self, window: Window) -> None:
        """Keep the planned cursor as the commit left it, for the next window's saves."""
        if window.stream not in self._cursors:
            return
        cursor = dict(self._cursors[window.stream] or self._first_cursor(window.stream))
        pending = {k: v for k, v in cursor.get("pending", {}).items() if k != window.key}
        if self.config.stream_spec(window.stream).snapshot:
            cursor["last"] = window.key
        elif window.start == self.position(cursor) and window.end is not None:
            cursor["next"] = window.end.isoformat()
        cursor.pop("pending", None)
        self._cursors[window.stream] = {**cursor, **({"pending": pending} if pending else {})}

    # -- cursor ---------------------------------------------------------------------------------

    def cursor_after(self, window: Window, cursor: Cursor | None, loaded: Loaded) -> Cursor | None:
        stream = window.stream
        pending = {k: v for k, v in (cursor or {}).get("pending", {}).items()
                   if k != window.key and not loaded(stream, [k])}  # fmt: skip
        if self.config.stream_spec(stream).snapshot:
            last = max(window.key, (cursor or {}).get("last", ""))
            moved: Cursor = {"last": last}
            # A snapshot of an earlier day that never loaded is never asked for again.
            pending = {k: v for k, v in pending.items() if k > last}
        else:
            moved = {"next": self._advanced(stream, self.position(cursor), loaded).isoformat()}
        return {**moved, **({"pending": pending} if pending else {})}

    def state(self, stream: str, cursor: Cursor | None, now: datetime) -> SourceState:
        pending = (cursor or {}).get("pending", {})
        notes = [f"export of {', '.join(sorted(pending))} pending"] if pending else []
        if self.config.unset_env:  # nothing is contacted here anyway; the run would fail
            missing = ", ".join(dict.fromkeys(name for _, name in self.config.unset_env))
            notes.append(f"{missing} not set")
        note = "; ".join(notes)
        if self.config.stream_spec(stream).snapshot:
            last = (cursor or {}).get("last")
            due = 0 if last == self._snapshot_window(stream, now).key else 1
            return SourceState(stream, f"snapshot of {last}" if last else "never loaded", due,
                               note=note)  # fmt: skip
        position = self.position(cursor)
        return SourceState(
            stream=stream,
            position=self.window_key(position) if cursor and "next" in cursor else "never loaded",
            due=len(self._due(stream, position, now)),
            lag_hours=round((now - position).total_seconds() / 3600, 1),
            last_available=self._last_due(now),
            note=note,
        )

    def _last_due(self, now: datetime) -> str | None:
        """The key of the newest window due at `now`, wherever the cursor is."""
        first = self.position(None)
        window = self.config.window
        count = (now - self.config.delay - window - first) // window
        return self.window_key(first + count * window) if count >= 0 else None

    def close(self) -> None:
        pass  # each fetch opens and closes its own HTTP clients


def _filled(body: Any, bounds: dict[str, str]) -> Any:
    """`body` with `{start}` and `{end}` in its strings replaced by the window's bounds."""
    if isinstance(body, str):
        for name, value in bounds.items():
            body = body.replace("{" + name + "}", value)
        return body
    if isinstance(body, dict):
        return {key: _filled(value, bounds) for key, value in body.items()}
    if isinstance(body, list):
        return [_filled(value, bounds) for value in body]
    return body
