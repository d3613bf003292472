"""One full scan of a table as the parts of one load: segments scanned in parallel threads.

Each of `segments` threads pages through its segment (`Segment`/`TotalSegments`, following
`LastEvaluatedKey`) and hands each page, already unwrapped into records, to a bounded queue;
the caller's thread gathers pages into parts of about `max_part_bytes`. A part is handed over
once the next page exists, so the last part is known; all parts commit as one load, so a scan
cut off anywhere (an error, a kill) leaves nothing behind and the next run scans again.
The first failure of any segment stops the others (their calls are cut by their deadlines'
stop event) and is raised after the parts that came before it.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from anchorflow.crashpoints import crash_point
from anchorflow.sources.base import LandBatch, Window
from anchorflow.sources.dynamodb.client import Cancelled, ScanClient
from anchorflow.sources.dynamodb.config import DynamoDBConfig
from anchorflow.sources.dynamodb.items import Page, PageReader
from anchorflow.sources.lines import Piece, joined

PUT_POLL = 0.1  # seconds between a blocked worker's looks at the stop event


@dataclass
class _Done:
    segment: int


@dataclass
class _Failed:
    error: BaseException


@dataclass
class _Part:
    pages: list[Page] = field(default_factory=list)
    weight: int = 0


class TableScan:
    def __init__(self, name: str, config: DynamoDBConfig, started: datetime | None) -> None:
        self.name = name
        self.config = config
        key = config.scanned_at_field
        stamp = None
        if key is not None and started is not None:
            stamp = (key, started.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.reader = PageReader(config.pii, stamp)

    def batches(self, window: Window) -> Iterator[LandBatch]:
        """The scan's parts, in the order their pages arrived, numbered; the last marked."""
        started = time.perf_counter()
        part, number = _Part(), 0
        limit = int(self.config.max_part_bytes)
        for index, page in enumerate(self.pages()):
            if index == 1:
                crash_point("dynamodb_mid_scan")  # a page in hand, more under way
            if part.pages and part.weight >= limit:
                yield self._batch(window, part, number, False, started)
                part, number = _Part(), number + 1
            part.pages.append(page)
            part.weight += page.bytes
        yield self._batch(window, part, number, True, started)

    def pages(self) -> Iterator[Page]:
        """Every segment's pages as they arrive; the threads end before this returns."""
        segments = self.config.segments
        pages: queue.Queue[Page | _Done | _Failed] = queue.Queue(maxsize=2 * segments)
        stop = threading.Event()
        client = ScanClient(self.name, self.config)
        pool = ThreadPoolExecutor(segments, thread_name_prefix=f"dynamodb-{self.name}")
        try:
            for segment in range(segments):
                pool.submit(self._segment, client, segment, pages, stop)
            running = segments
            while running:
                item = pages.get()
                if isinstance(item, _Done):
                    running -= 1
                elif isinstance(item, _Failed):
                    raise item.error
                else:
                    yield item
        finally:
            stop.set()
            pool.shutdown(wait=True)
            client.close()

    def _segment(
        self,
        client: ScanClient,
        segment: int,
        pages: queue.Queue[Page | _Done | _Failed],
        stop: threading.Event,
    ) -> None:
        outcome: Page | _Done | _Failed = _Done(segment)
        try:
            start_key = None
            for number in itertools.count(1):
                body = client.scan_page(client.request(segment, start_key), stop)
                page = self.reader.read(f"segment={segment}/page={number}", body)
                if not _put(pages, page, stop):
                    return
                start_key = page.last_key
                if start_key is None:
                    break
        except Cancelled:
            return
        except BaseException as error:  # handed to the caller's thread, raised there
            outcome = _Failed(error)
        _put(pages, outcome, stop)

    def _batch(
        self, window: Window, part: _Part, number: int, last: bool, started: float
    ) -> LandBatch:
        piece = joined([Piece(p.records, p.rejected, p.bytes) for p in part.pages])
        pages = len(part.pages)
        return LandBatch(
            source=self.name,
            window=window,
            origin=f"scan of {self.config.table} ({self.config.segments} segment(s))",
            records=piece.records,
            files=pages,
            bytes=piece.text_bytes,
            rejected=piece.rejected,
            timings={"download": time.perf_counter() - started if number == 0 else 0.0},
            note=None,
            part=number,
            last=last,
        )


def _put(pages: queue.Queue[Page | _Done | _Failed], item: Page | _Done | _Failed,
         stop: threading.Event) -> bool:  # fmt: skip
    """Queue `item`, waiting for room unless the scan stops; whether it was queued."""
    while not stop.is_set():
        try:
            pages.put(item, timeout=PUT_POLL)
            return True
        except queue.Full:
            continue
    return False
