"""Amplitude's hourly raw export behind the Source protocol: a window is one closed hour.

Only closed, available hours are due: hour H is exportable once `H + 1h + availability_delay`
has passed, and none after `end:` (the last hour of a replay, inclusive), whatever the clock
says. The cursor is the next hour to load, `{"next_hour": "YYYYMMDDTHH"}`; it moves only
over a contiguous loaded prefix, never past a gap, and passes hours that a backfill already
loaded. A backfill names hours as YYYYMMDDTHH; each replaces the hour's earlier load.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from anchorflow.errors import ConfigError
from anchorflow.project_types import format_hour, parse_hour
from anchorflow.sources.amplitude.config import AmplitudeConfig
from anchorflow.sources.amplitude.export import HOUR, AmplitudeExport, hour_window
from anchorflow.sources.base import (
    Cursor,
    FetchContext,
    LandBatch,
    Loaded,
    SourceState,
    Window,
)


def last_available_hour(now: datetime, delay: timedelta) -> datetime:
    """The newest hour whose export is complete at `now` (naive UTC)."""
    closed = now - delay - HOUR
    return closed.replace(minute=0, second=0, microsecond=0)


def due_hours(
    first: datetime, now: datetime, delay: timedelta, end: datetime | None = None
) -> list[datetime]:
    """The hours from `first` that are available at `now`, none after `end` (inclusive)."""
    last = last_available_hour(now, delay)
    if end is not None:
        last = min(last, end)
    count = int((last - first) / HOUR) + 1
    return [first + i * HOUR for i in range(max(0, count))]


class AmplitudeSource:
    def __init__(self, name: str, config: AmplitudeConfig, root: Path | None = None) -> None:
        self.name = name
        self.config = config

    def position(self, cursor: Cursor | None) -> datetime:
        """The first hour not loaded yet."""
        return parse_hour(cursor["next_hour"]) if cursor else self.config.start

    def plan(
        self, stream: str, cursor: Cursor | None, now: datetime, loaded: Loaded
    ) -> list[Window]:
        config = self.config
        hours = due_hours(self.position(cursor), now, config.availability_delay, config.end)
        return [hour_window(stream, hour) for hour in hours]

    def backfill(
        self, stream: str, start: str | None, end: str | None, now: datetime
    ) -> list[Window]:
        if start is None or end is None:
            raise ConfigError(["backfill: an Amplitude source needs --start and --end hours"])
        try:
            first, last = parse_hour(start), parse_hour(end)
        except ValueError as error:
            raise ConfigError([f"backfill: {error}"]) from None
        available = last_available_hour(now, self.config.availability_delay)
        if last < first:
            raise ConfigError([f"backfill: --end {format_hour(last)} is before --start"])
        if self.config.end is not None and last > self.config.end:
            raise ConfigError([
                f"backfill: hour {format_hour(last)} is after the source's last hour "
                f"(sources.{self.name}.end: {format_hour(self.config.end)})"
            ])  # fmt: skip
        if last > available:
            raise ConfigError(
                [
                    f"backfill: hour {format_hour(last)} is not available yet; the last closed, "
                    f"available hour is {format_hour(available)}"
                ]
            )
        hours = int((last - first) / HOUR) + 1
        return [hour_window(stream, first + i * HOUR) for i in range(hours)]

    def fetch(self, windows: Sequence[Window], context: FetchContext) -> Iterator[LandBatch]:
        """The hours' batches, downloaded and decoded ahead in a thread (a `Prefetch`, which
        the land step can ask whether the next hour is there before it waits for it)."""
        if not windows:
            return iter(())
        export = AmplitudeExport(self.name, self.config, context.work_dir)
        return export.batches([w.start for w in windows if w.start is not None])

    def cursor_after(self, window: Window, cursor: Cursor | None, loaded: Loaded) -> Cursor | None:
        if window.start != self.position(cursor) or window.end is None:
            return None  # a backfilled hour behind the cursor, or past a gap
        position = window.end
        while loaded(window.stream, [format_hour(position)]):
            position += HOUR
        return {"next_hour": format_hour(position)}

    def state(self, stream: str, cursor: Cursor | None, now: datetime) -> SourceState:
        position = self.position(cursor)
        config = self.config
        available = last_available_hour(now, config.availability_delay)
        state = SourceState(
            stream=stream,
            position=format_hour(position) if cursor else "never loaded",
            due=len(due_hours(position, now, config.availability_delay, config.end)),
            lag_hours=round((now - position).total_seconds() / 3600, 1),
            last_available=format_hour(available),
        )
        if config.end is None:
            return state
        # A replay is measured against its last hour, not against today.
        left = max(0, int((config.end + HOUR - position) / HOUR))
        return replace(
            state,
            lag_hours=None,
            last_available=format_hour(min(available, config.end)),
            replay_end=format_hour(config.end),
            note=f"replay to {format_hour(config.end)}: "
            + (f"{left:,} hour(s) left" if left else "done"),
        )

    def close(self) -> None:
        pass  # each fetch opens and closes its own HTTP client
