"""The land step: a source stream's due windows, fetched and committed one by one.

What is pending is the source's plan from the stored cursor and the clock; running it fetches
those windows and hands each batch to the window commit (`run.window`), which lands, types,
journals and moves the cursor in one transaction. While the source waits on the network for
the next window, the warehouse is let go of (see `next_batch`). Removing a load deletes its raw
rows and the records landing set aside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from anchorflow.errors import TerminalSourceError
from anchorflow.journal.cursors import read_cursor
from anchorflow.journal.loads import LoadRecord, loaded_keys
from anchorflow.journal.quarantine import TABLE as QUARANTINE
from anchorflow.journal.quarantine import delete_quarantined
from anchorflow.land.raw import raw_table_name, remove_raw
from anchorflow.sources.base import FetchContext, LandBatch, Loaded, Source, Window
from anchorflow.sources.prefetch import Prefetch, prefetched
from anchorflow.warehouse import Warehouse

# Seconds a window's batch may keep the land step waiting before it lets go of the warehouse:
# longer than a decode of the next hour on loopback, shorter than any network wait worth it.
RELEASE_AFTER = 0.5
# DuckDB's memory while a stream lands (lower than its default of 80% of RAM; a lower
# `warehouse.memory_limit` is kept). Landing needs an hour's typed batch at a time, but DuckDB
# keeps every block it writes cached up to its limit, so without a cap the process grows with
# the hours landed (2.2 GB at 5M events): with it, peak memory stays flat. 900 MB, with the
# hours decoded ahead and Python's own, keeps a 5M-event catch-up under 1.5 GB (BENCHMARKS).
LAND_MEMORY_LIMIT = "900MB"


@dataclass(frozen=True)
class WindowResult(LoadRecord):
    """A committed window: its load record, how many loads it replaced, and its step timings."""

    replaced: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def journal_view(warehouse: Warehouse, source: str) -> Loaded:
    """The journal's committed window keys of `source`, as the Source protocol asks for them."""

    def loaded(stream: str, keys: Sequence[str]) -> set[str]:
        return loaded_keys(warehouse, source, stream, keys)

    return loaded


class LandStep:
    """Land one stream of one source."""

    name = "land"

    def __init__(
        self,
        source: Source,
        stream: str,
        commit: Callable[[LandBatch, Iterator[LandBatch] | None], WindowResult],
        context: FetchContext,
        now: datetime,
    ) -> None:
        self.source = source
        self.stream = stream
        self.commit = commit
        self.context = context
        self.now = now

    def pending(self, warehouse: Warehouse) -> list[Window]:
        cursor = read_cursor(warehouse, self.source.name, self.stream)
        loaded = journal_view(warehouse, self.source.name)
        return self.source.plan(self.stream, cursor, self.now, loaded)

    def run(
        self, warehouse: Warehouse, windows: Sequence[Window] | None = None
    ) -> list[WindowResult]:
        """Fetch the windows (the pending ones when None) and commit each, in order; an error
        is raised after the windows before it committed. A window that comes in parts is
        committed as one, its parts read while it lands."""
        chosen = self.pending(warehouse) if windows is None else list(windows)
        results = []
        fetched = self.source.fetch(chosen, self.context)
        with (
            warehouse.memory_capped(LAND_MEMORY_LIMIT),
            prefetched(fetched, f"fetch-{self.source.name}") as batches,
        ):
            while (batch := next_batch(batches, warehouse)) is not None:
                parts = None if batch.last else later_parts(batch, batches)
                results.append(self.commit(batch, parts))
        return results

    def remove(self, warehouse: Warehouse, load_ids: Sequence[int]) -> dict[str, int]:
        return remove_landed(warehouse, self.source.name, self.stream, load_ids)


def next_batch(batches: Prefetch[LandBatch], warehouse: Warehouse) -> LandBatch | None:
    """The next window's first batch (None after the last). When it is not there within
    `RELEASE_AFTER`, the source is waiting on the network (a download, a rate limit): the
    warehouse is let go of meanwhile, so that readers can open it, and taken back by the commit.
    Never between the parts of a window: they are one transaction."""
    if not batches.ready(RELEASE_AFTER):
        warehouse.release()
    return next(batches, None)


def later_parts(first: LandBatch, batches: Iterator[LandBatch]) -> Iterator[LandBatch]:
    """The parts of `first`'s window after it, taken from `batches` up to its last."""
    expected = first.part + 1
    while True:
        part = next(batches, None)
        if part is None or part.window != first.window or part.part != expected:
            raise TerminalSourceError(
                f"{first.source}: window {first.window.key} ended after part {expected - 1} "
                "without its last part; nothing of it was committed"
            )
        yield part
        if part.last:
            return
        expected += 1


def remove_landed(
    warehouse: Warehouse, source: str, stream: str, load_ids: Sequence[int]
) -> dict[str, int]:
    """Delete the loads' raw rows and the records landing set aside (rows per table)."""
    counts = {
        f"raw.{raw_table_name(source, stream)}": remove_raw(warehouse, source, stream, load_ids),
        QUARANTINE: delete_quarantined(warehouse, load_ids, stage="land"),
    }
    return {k: v for k, v in counts.items() if v}
