"""One webhook source's writer: accepted records become durable, with one fsync for every
request of a group-commit interval, before any of those requests is answered.

A request hands its records to `Intake.deliver`, which appends them to the pending batch and
waits on the batch's future. The committer task takes the batch every `group_commit` interval
(at once when the last commit is older), writes it to the open chunk and fsyncs it in a worker
thread, then resolves the future: every request of the batch is answered together. A chunk is
published (sealed, renamed where the loader sees it) after `chunk_size` records or
`chunk_timeout`, always after its last fsync. Why a killed server loses no acknowledged record:
see `serve.landing`.

Redeliveries are dropped by the sender's id: the intake remembers the ids of the last
`dedup_window` records (rebuilt from the newest chunks at start), each with the future of the
batch that stores it, so a redelivery that arrives before the original is durable is answered
only once it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from anchorflow.durable import fsync_directory
from anchorflow.errors import SourceError
from anchorflow.serve.landing import hold, publish_leftovers, recent_ids
from anchorflow.sources.chunks import ChunkFile, chunk_id, landing_dir, new_launch_id, write_launch
from anchorflow.sources.webhook.config import WebhookConfig

log = logging.getLogger("anchorflow.serve")


class IntakeFailed(SourceError):
    """Records could not be made durable (a full disk): the request is answered 503."""


class ChunkWriter:
    """The open chunk of one intake: only the committer touches it, one call at a time."""

    def __init__(self, directory: Path, launch: str, size: int, timeout: float) -> None:
        self.directory = directory
        self.launch = launch
        self.size = size
        self.timeout = timeout
        self.seq = 0
        self.chunk: ChunkFile | None = None
        self.opened = 0.0
        self.published = 0

    def due_in(self, now: float) -> float | None:
        """Seconds until the open chunk must be published (None: no chunk open)."""
        return None if self.chunk is None else max(0.0, self.opened + self.timeout - now)

    def write(self, records: Sequence[bytes]) -> None:
        """Append and fsync `records`; publish the chunk when it is full or old enough."""
        if records:
            chunk = self.chunk or self._open()
            chunk.append(records)
            chunk.sync()
        if self.chunk is not None and (
            self.chunk.items >= self.size or time.monotonic() >= self.opened + self.timeout
        ):
            self.publish()

    def publish(self) -> None:
        if self.chunk is None:
            return
        self.chunk.seal()
        self.chunk.publish()
        self.chunk = None
        self.published += 1

    def _open(self) -> ChunkFile:
        self.seq += 1
        self.chunk = ChunkFile(self.directory, chunk_id(self.launch, self.seq))
        fsync_directory(self.directory)  # the .tmp's name survives a power loss with its data
        self.opened = time.monotonic()
        return self.chunk


class Intake:
    """The writer of one webhook source; `open` (sync), `start`, then `deliver`, then `stop`."""

    def __init__(self, name: str, config: WebhookConfig, root: Path) -> None:
        self.name = name
        self.config = config
        self.landing = landing_dir(root, name, config.landing)
        self.directory = self.landing / config.stream
        self.accepted = 0
        self.duplicates = 0
        self._recent: OrderedDict[str, asyncio.Future[None]] = OrderedDict()
        self._lock: IO[bytes] | None = None
        self._writer: ChunkWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._known: list[str] = []  # ids read from disk by `open`, remembered by `start`
        self._pending: list[bytes] = []
        self._pending_ids: list[str] = []
        self._wake = asyncio.Event()
        self._stopping = False

    def open(self) -> list[str]:
        """Hold the landing directory, publish what a killed server left, and load the recent
        ids; returns the leftover chunks published. Before serving: it may read many files."""
        self._lock = hold(self.landing, self.name)
        leftovers = publish_leftovers(self.directory)
        path = self.config.dedup_path
        if path:
            limit = 2 * int(self.config.max_body)
            self._known = list(recent_ids(self.directory, path, self.config.dedup_window, limit))
        launch = new_launch_id()
        write_launch(
            self.landing, launch, kind="webhook", source=self.name, queue=self.config.stream
        )
        self._writer = ChunkWriter(
            self.directory,
            launch,
            self.config.chunk_size,
            self.config.chunk_timeout.total_seconds(),
        )
        return leftovers

    async def start(self) -> None:
        if self._writer is None:
            await asyncio.to_thread(self.open)
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[None] = loop.create_future()
        stored.set_result(None)
        for known in self._known:
            self._remember(known, stored)
        self._known = []
        self._batch: asyncio.Future[None] = loop.create_future()
        self._task = asyncio.create_task(self._commit_loop(), name=f"intake-{self.name}")

    async def deliver(self, texts: Sequence[bytes], ids: Sequence[str | None]) -> int:
        """Store the records not stored yet; return once every one of them is durable (also
        those a concurrent delivery of the same ids is storing). Returns how many were new."""
        if self._failed is not None or self._task is None or self._stopping:
            raise IntakeFailed(f"sources.{self.name}: the intake is not taking records")
        fresh: list[bytes] = []
        waits: set[asyncio.Future[None]] = set()
        batch = self._batch
        for text, sender in zip(texts, ids, strict=True):
            if sender is not None:
                earlier = self._recent.get(sender)
                if earlier is not None:
                    waits.add(earlier)
                    continue
                self._remember(sender, batch)
                self._pending_ids.append(sender)
            fresh.append(text)
        if fresh:
            self._pending.extend(fresh)
            self._wake.set()
            waits.add(batch)
        self.duplicates += len(texts) - len(fresh)
        # Shielded: a request cancelled (its client gone) must not cancel the shared batch.
        if len(waits) == 1:
            await asyncio.shield(waits.pop())
        elif waits:
            await asyncio.gather(*(asyncio.shield(w) for w in waits))
        return len(fresh)

    async def stop(self) -> None:
        """Commit what is pending, publish the open chunk, release the landing directory."""
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        if self._writer is not None and self._failed is None:
            await asyncio.to_thread(self._writer.publish)
        self.close()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def health(self) -> dict[str, object]:
        published = self._writer.published if self._writer else 0
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "chunks_published": published,
            "failed": self._failed is not None,
        }

    def _remember(self, sender: str, batch: asyncio.Future[None]) -> None:
        self._recent[sender] = batch
        while len(self._recent) > self.config.dedup_window:
            self._recent.popitem(last=False)

    async def _commit_loop(self) -> None:
        interval = self.config.group_commit.total_seconds()
        writer = self._writer
        assert writer is not None
        last = 0.0
        while not (self._stopping and not self._pending):
            with contextlib.suppress(TimeoutError):  # the open chunk is due: publish it
                await asyncio.wait_for(self._wake.wait(), writer.due_in(time.monotonic()))
            if self._pending and not self._stopping:
                await asyncio.sleep(max(0.0, last + interval - time.monotonic()))
            last = time.monotonic()
            if not await self._commit(writer):
                return

    async def _commit(self, writer: ChunkWriter) -> bool:
        texts, senders, batch = self._pending, self._pending_ids, self._batch
        self._pending, self._pending_ids = [], []
        self._batch = asyncio.get_running_loop().create_future()
        self._wake.clear()
        try:
            await asyncio.to_thread(writer.write, texts)
        except Exception as error:  # whatever it is, the requests waiting get 503, not a hang
            # The chunk's state past its last fsync is unknown: take nothing more; the next
            # start publishes its whole lines (see serve.landing).
            log.error("sources.%s: records could not be made durable: %s", self.name, error)
            self._failed = error
            for sender in senders:
                if self._recent.get(sender) is batch:
                    del self._recent[sender]
            batch.set_exception(IntakeFailed(f"sources.{self.name}: {error}"))
            self._batch.set_exception(IntakeFailed(f"sources.{self.name}: {error}"))
            batch.exception()  # retrieved: no warning when nobody awaits them
            self._batch.exception()
            return False
        self.accepted += len(texts)
        batch.set_result(None)
        return True
