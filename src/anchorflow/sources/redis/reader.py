"""A reader: one process draining one Redis queue (a list or a stream) into landing chunks.

The loop: take a batch of items (moved, atomically, to where only this reader holds them: its
processing list, or its pending entries in the stream's group), append them to the chunk in
hand, and close the chunk at `chunk_size` items or `chunk_timeout` after it opened. Closing is
`seal` (fsync of the temporary file), then the commit script (the items leave Redis and the
chunk is marked committed, only while the reader is registered), then `publish` (rename), then
the mark is removed. A kill at any point leaves either the items in Redis and an unmarked
temporary (discarded, the items requeued), or a marked temporary (published): another reader
settles it once this one's heartbeat has expired (`sweep`).

A reader registers in the queue's readers set and keeps a heartbeat key alive; a reader that
finds another's heartbeat gone declares it dead (the recovery script unregisters it), so the
dead reader's late commit fails (it is *fenced*) and exactly one of the two wins.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from redis.exceptions import RedisError

from anchorflow.crashpoints import crash_point
from anchorflow.errors import AnchorflowError, TerminalSourceError
from anchorflow.sources import chunks
from anchorflow.sources.redis.config import RedisConfig
from anchorflow.sources.redis.connection import Retrying, connect, describe
from anchorflow.sources.redis.intake import Abandoned, Fenced, Intake
from anchorflow.sources.redis.keys import QueueKeys
from anchorflow.sources.redis.lists import ListIntake
from anchorflow.sources.redis.scripts import HEARTBEAT, REGISTER
from anchorflow.sources.redis.streams import StreamIntake

log = logging.getLogger(__name__)
MAX_WAIT = 1.0  # seconds a blocking take waits at most: a stop is noticed within about this
# The heartbeat is refreshed once a sixth of it has passed, at the start of a step; a step's
# blocking wait is at most that long too, so two refreshes are less than a third apart (plus
# the time a chunk takes to close).
BEATS = 6000  # heartbeat_ms / BEATS = seconds
Stop = threading.Event | Callable[[], bool]

__all__ = ["Fenced", "Reader"]


class Reader:
    """Drains the queue `queue` of the redis source `source_name` into `<landing>/<queue>/`."""

    def __init__(self, source_name: str, config: RedisConfig, queue: str, landing: Path) -> None:
        self.source_name = source_name
        self.config = config
        self.queue = queue
        self.queue_config = config.queues[queue]
        self.landing = landing
        self.directory = landing / queue
        self.keys = QueueKeys(self.queue_config.key)
        self.launch_id = chunks.new_launch_id()
        url = config.url.get_secret_value()
        self.url = url
        self.client = connect(url, config.timeout)
        self.heartbeat_ms = max(1, int(config.heartbeat.total_seconds() * 1000))
        # Unreachable for a few heartbeats, a reader is dead to the others anyway: it gives up.
        retry_for = max(3 * config.heartbeat.total_seconds(), 2 * config.timeout.total_seconds())
        self.call = Retrying(url, retry_for)
        self.intake: Intake = (
            ListIntake(self) if self.queue_config.kind == "list" else StreamIntake(self)
        )
        self.chunk: chunks.ChunkFile | None = None
        self.opened_at = 0.0
        self.seq = 0
        self.published = 0  # chunks
        self.items = 0  # items published
        self._last_beat = 0.0
        self._last_sweep = 0.0

    # -- the loop --------------------------------------------------------------------------

    def run(self, stop: Stop) -> None:
        """Drain until `stop` is set (or returns true); then finish the chunk in hand and leave.
        Raises `Fenced` when another reader declared this one dead, and an `AnchorflowError`
        (one line, no password) when Redis stays unreachable or refuses a command."""
        should_stop = stop.is_set if isinstance(stop, threading.Event) else stop
        try:
            self.start()
            while not should_stop():
                self.step()
            self.close_chunk()
            self.leave()
        except AnchorflowError:
            raise
        except RedisError as error:
            raise TerminalSourceError(describe(self.url, error)) from None
        finally:
            self.client.close()

    def start(self) -> None:
        """Register (readers set and heartbeat), record the launch, settle dead readers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        chunks.write_launch(
            self.landing,
            self.launch_id,
            kind="reader",
            source=self.source_name,
            queue=self.queue,
            redis_kind=self.queue_config.kind,
            key=self.queue_config.key,
        )
        self.intake.prepare()
        register = self.client.register_script(REGISTER)
        self.call(register, [self.keys.readers, self.keys.alive(self.launch_id)],
                  [self.launch_id, self.heartbeat_ms])  # fmt: skip
        self._last_beat = time.monotonic()
        self.sweep()

    def step(self) -> None:
        """One batch: heartbeat and recovery when due, take, append, close when due."""
        now = time.monotonic()
        if now - self._last_beat >= self.heartbeat_ms / BEATS:
            self.beat()
        if now - self._last_sweep >= self.heartbeat_ms / 1000:
            self.sweep()
        try:
            room = self.config.chunk_size - (self.chunk.items if self.chunk else 0)
            items = self.intake.take(min(self.config.batch, room), self._wait())
            if items:
                self._append(items)
            elif self.chunk is None and self.intake.held:
                self._open()  # held entries that carry no record (deleted stream entries)
        except Abandoned as why:
            self._abandon(str(why))
            return
        if self.chunk is not None and self._due():
            self.close_chunk()

    def _wait(self) -> float:
        """How long a take may block when the queue is empty: short enough for the heartbeat,
        the call's deadline, a stop, and the chunk's timeout."""
        wait = min(MAX_WAIT, self.heartbeat_ms / BEATS, self.config.timeout.total_seconds() / 2)
        if self.chunk is not None:
            left = self.config.chunk_timeout.total_seconds() - (time.monotonic() - self.opened_at)
            wait = min(wait, left)
        return max(0.0, wait)

    def _due(self) -> bool:
        assert self.chunk is not None
        age = time.monotonic() - self.opened_at
        return (
            self.chunk.items >= self.config.chunk_size
            or age >= self.config.chunk_timeout.total_seconds()
        )

    def _open(self) -> chunks.ChunkFile:
        self.seq += 1
        chunk = chunks.chunk_id(self.launch_id, self.seq)
        self.chunk = chunks.ChunkFile(self.directory, chunk, self.config.chunk_format)
        self.opened_at = time.monotonic()
        return self.chunk

    def _append(self, items: list[bytes]) -> None:
        (self.chunk or self._open()).append(items)

    # -- closing a chunk ---------------------------------------------------------------------

    def close_chunk(self) -> None:
        """Seal, commit, publish, unmark the chunk in hand (nothing when none is open)."""
        chunk = self.chunk
        if chunk is None:
            return
        chunk.seal()
        crash_point("redis_reader_sealed")
        outcome = self.intake.commit(chunk.chunk_id)
        if outcome == 0:
            self.chunk = None
            chunk.discard()
            self.intake.fenced()
            raise self._fenced()
        if outcome < 0:
            self.chunk = None
            chunk.discard()
            self._abandon("Redis does not hold what the chunk holds (a reply was lost)")
            return
        crash_point("redis_reader_committed")
        chunk.publish()
        crash_point("redis_reader_published")
        self.chunk = None
        self.published += 1
        self.items += chunk.items
        self.call(self.client.srem, self.keys.committed(self.launch_id), chunk.chunk_id)

    def _abandon(self, why: str) -> None:
        """Give the items in hand back to Redis and drop the chunk: nothing of it was
        committed, and what Redis holds is the truth."""
        log.warning("%s: reader %s abandons its chunk: %s", self.queue, self.launch_id, why)
        if self.chunk is not None:
            self.chunk.discard()
            self.chunk = None
        self.intake.abandon()

    def _fenced(self) -> Fenced:
        return Fenced(
            f"sources.{self.source_name}.queues.{self.queue}: reader {self.launch_id} was "
            "declared dead by another reader (its heartbeat expired); its chunk in hand was "
            "dropped and its items are back in the queue"
        )

    # -- liveness and recovery ---------------------------------------------------------------

    def beat(self) -> None:
        script = self.client.register_script(HEARTBEAT)
        alive = self.call(script, [self.keys.readers, self.keys.alive(self.launch_id)],
                          [self.launch_id, self.heartbeat_ms])  # fmt: skip
        if not alive:
            if self.chunk is not None:
                self.chunk.discard()
                self.chunk = None
            self.intake.fenced()
            raise self._fenced()
        self._last_beat = time.monotonic()

    def sweep(self) -> None:
        """Settle the readers whose heartbeat is gone: unregister them (their items in hand go
        back to the queue), publish their committed temporaries, discard the others, and take
        over what they left in Redis (stream entries)."""
        self._last_sweep = time.monotonic()
        recovered = {
            launch
            for launch in self._registered() - {self.launch_id}
            if not self.call(self.client.exists, self.keys.alive(launch))
            and self.intake.recover(launch)
        }
        # Temporaries listed *before* the registered readers are read: a reader registers
        # before it writes one, so a listed temporary's writer, if alive, is in the set.
        leftovers = chunks.leftover_temporaries(self.directory)
        registered = self._registered()
        launches = {chunks.launch_of(c) or "" for c in leftovers}
        dead = sorted(launches - registered - {"", self.launch_id})
        for launch in dead:
            self._settle_leftovers(launch, leftovers)
        for launch in recovered - set(dead):  # marks left by a kill between publish and unmark
            self.call(self.client.delete, self.keys.committed(launch))
        room = self.config.chunk_size - (self.chunk.items if self.chunk else 0)
        claimed = self.intake.take_over(registered | {self.launch_id}, room)
        if claimed:
            self._append(claimed)

    def _registered(self) -> set[str]:
        members: set[bytes] = self.call(self.client.smembers, self.keys.readers)  # type: ignore[arg-type]
        return {m.decode() for m in members}

    def _settle_leftovers(self, launch: str, leftovers: list[str]) -> None:
        """A dead writer's temporaries: committed ones are published, the others discarded
        (their items are in Redis again); then its commit marks are dropped."""
        marks: set[bytes] = self.call(self.client.smembers, self.keys.committed(launch))  # type: ignore[arg-type]
        committed = {m.decode() for m in marks}
        for chunk in leftovers:
            if chunks.launch_of(chunk) != launch:
                continue
            if chunk in committed:
                chunks.publish_leftover(self.directory, chunk)
            else:
                chunks.discard_leftover(self.directory, chunk)
        self.call(self.client.delete, self.keys.committed(launch))

    def leave(self) -> None:
        """Unregister (a graceful stop): nothing is in hand any more."""
        self.intake.leave()
