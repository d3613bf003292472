"""A DynamoDB table behind the Source protocol: a window is one full scan, a snapshot.

A scan is due when none was loaded yet or the last one began `every` ago or more (0: every
run). Its key is the time it was planned for, `YYYYMMDDTHHMMSSZ`, so snapshots sort by time
and each is a load of its own: with the anchor layer, a snapshot adds only what changed since
the one before. The cursor, `{"last_scan": key, "scans": n}`, commits with the scan's rows, so
a scan cut off by a crash is simply scanned again. A backfill scans the table now, whatever
`every` says (a table has no past to ask for).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from anchorflow.errors import ConfigError
from anchorflow.sources.base import Cursor, FetchContext, LandBatch, Loaded, SourceState, Window
from anchorflow.sources.dynamodb.config import DynamoDBConfig
from anchorflow.sources.dynamodb.scan import TableScan

KEY_FORMAT = "%Y%m%dT%H%M%SZ"


def scan_window(stream: str, now: datetime) -> Window:
    start = now.replace(microsecond=0)
    return Window(stream, start.strftime(KEY_FORMAT), start=start, end=start)


class DynamoDBSource:
    def __init__(self, name: str, config: DynamoDBConfig, root: Path | None = None) -> None:
        self.name = name
        self.config = config

    def last_scan(self, cursor: Cursor | None) -> datetime | None:
        return datetime.strptime(cursor["last_scan"], KEY_FORMAT) if cursor else None

    def due(self, cursor: Cursor | None, now: datetime) -> bool:
        """Whether a new scan is due: never scanned, or the last began `every` ago (and
        before this second: one key, one snapshot)."""
        last = self.last_scan(cursor)
        start = now.replace(microsecond=0)
        return last is None or (start > last and start - last >= self.config.every)

    def plan(
        self, stream: str, cursor: Cursor | None, now: datetime, loaded: Loaded
    ) -> list[Window]:
        return [scan_window(stream, now)] if self.due(cursor, now) else []

    def backfill(
        self, stream: str, start: str | None, end: str | None, now: datetime
    ) -> list[Window]:
        if start is not None or end is not None:
            raise ConfigError(
                [f"backfill: sources.{self.name} scans the whole table now; drop --start/--end"]
            )
        return [scan_window(stream, now)]

    def fetch(self, windows: Sequence[Window], context: FetchContext) -> Iterator[LandBatch]:
        for window in windows:
            yield from TableScan(self.name, self.config, window.start).batches(window)

    def cursor_after(self, window: Window, cursor: Cursor | None, loaded: Loaded) -> Cursor | None:
        last = cursor.get("last_scan", "") if cursor else ""
        if window.key <= last:
            return None  # an older snapshot delivered again leaves the newest in place
        return {"last_scan": window.key, "scans": (cursor or {}).get("scans", 0) + 1}

    def state(self, stream: str, cursor: Cursor | None, now: datetime) -> SourceState:
        last = self.last_scan(cursor)
        if last is None or cursor is None:
            return SourceState(stream, "never scanned", 1)
        position = f"{cursor.get('scans', 0):,} scan(s), the last at {cursor['last_scan']}"
        lag = round((now - last).total_seconds() / 3600, 1)
        return SourceState(stream, position, int(self.due(cursor, now)), lag_hours=lag)

    def close(self) -> None:
        pass  # each scan opens and closes its own HTTP client
