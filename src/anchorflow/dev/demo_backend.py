"""The demo's backend stream: a throwaway redis-server, a few hundred thousand backend events
pushed to its list and stream, and the readers (`ReaderPool`, as `anchorflow read` runs them)
draining them into landing chunks, which the demo's `run` then loads with the other sources.

Redis runs only while the readers drain it: loading reads the chunk files, never Redis. A second
demo pushes nothing when the backend's chunks are already in raw (or still waiting to be
loaded), so it stays idempotent like the other sources.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import redis
from rich.console import Console

from anchorflow.config import Project, load_project
from anchorflow.dev.redis_server import LocalRedis, RedisMissing
from anchorflow.dev.synth.backend import backend_events
from anchorflow.errors import AnchorflowError
from anchorflow.sources.chunks import (
    chunk_path,
    landing_dir,
    leftover_temporaries,
    record_count,
    sealed_chunks,
)
from anchorflow.sources.redis.config import RedisConfig
from anchorflow.sources.redis.source import RedisSource
from anchorflow.sources.redis.supervise import ReaderPool
from anchorflow.warehouse import Warehouse, connect

SOURCE = "backend"
EVENTS = 300_000  # a fifth to the stream, the rest to the list
PROCS = 2  # readers per queue
PUSH_BATCH = 10_000  # items per pipelined call
DRAIN_TIMEOUT = 240.0  # seconds: far above the ~10 s it takes
TIMEOUT = 10.0  # seconds: the deadline of each call to Redis


@dataclass(frozen=True)
class Drained:
    pushed: dict[str, int]  # queue: items pushed
    chunks: int
    records: int
    readers: int
    push_seconds: float
    drain_seconds: float


def backend_config(project: Project) -> RedisConfig | None:
    config = project.sources.get(SOURCE)
    return config if isinstance(config, RedisConfig) else None


def feed_backend(
    console: Console,
    project_file: Path,
    project: Project,
    start: datetime,
    hours: int,
    seed: int,
    count: int = EVENTS,
) -> Drained | None:
    """Push the backend events to a throwaway Redis and drain them into landing chunks; None
    when the project has no `backend` redis source or its events are already there."""
    config = backend_config(project)
    if config is None:
        return None
    landing = landing_dir(project.root, SOURCE, config.landing)
    if _already_fed(project, landing, config):
        console.print(f"backend: events already pushed and drained earlier (in raw or {landing})")
        return None
    events = backend_events(count, start, hours, seed)
    try:
        local = LocalRedis()
    except RedisMissing as error:
        raise AnchorflowError(f"backend: {error}") from None
    with console.status("starting redis-server"):  # one live display at a time
        server = local.start()
    previous = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = server.url  # what the readers' project file reads
    try:
        readers_project = load_project(project_file)
        queues = backend_config(readers_project) or config
        pushed, push_seconds = _push(server.url, queues, events.events, events.payments)
        with console.status(f"draining {sum(pushed.values()):,} events with the readers"):
            started = time.perf_counter()
            readers = _drain(readers_project, queues)
            drain_seconds = time.perf_counter() - started
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("REDIS_URL", None)
        else:
            os.environ["REDIS_URL"] = previous
    chunks, records = _published(landing, config)
    if records != sum(pushed.values()):
        raise AnchorflowError(
            f"backend: {sum(pushed.values()):,} events pushed, {records:,} in chunks"
        )
    drained = Drained(pushed, chunks, records, readers, push_seconds, drain_seconds)
    console.print(describe(drained, config))
    return drained


def describe(drained: Drained, config: RedisConfig) -> str:
    queues = ", ".join(
        f"{q.kind} {q.key} {drained.pushed[name]:,}" for name, q in config.queues.items()
    )
    return (
        f"backend: {sum(drained.pushed.values()):,} events pushed to a local redis-server "
        f"({queues}) in {drained.push_seconds:.1f}s, drained by {drained.readers} readers "
        f"into {drained.chunks} chunks ({drained.records:,} records) in "
        f"{drained.drain_seconds:.1f}s"
    )


def _already_fed(project: Project, landing: Path, config: RedisConfig) -> bool:
    if any(sealed_chunks(landing / queue) for queue in config.queues):
        return True  # drained, not loaded yet: the run loads them
    if not project.warehouse.dsn and not project.warehouse_path.exists():
        return False
    with connect(project) as warehouse:
        return any(_raw_rows(warehouse, queue) for queue in config.queues)


def _raw_rows(warehouse: Warehouse, queue: str) -> int:
    name = f"{SOURCE}_{queue}"
    if not warehouse.table_exists("raw", name):
        return 0
    return int(warehouse.scalar(f'SELECT count(*) FROM raw."{name}"'))


def _push(
    url: str, config: RedisConfig, listed: list[bytes], streamed: list[bytes]
) -> tuple[dict[str, int], float]:
    """RPUSH to the list queue and XADD (one field, `data`) to the stream queue, pipelined."""
    started = time.perf_counter()
    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    pushed: dict[str, int] = {}
    try:
        for name, queue in config.queues.items():
            items = listed if queue.kind == "list" else streamed
            for first in range(0, len(items), PUSH_BATCH):
                batch = items[first : first + PUSH_BATCH]
                pipe = client.pipeline(transaction=False)
                if queue.kind == "list":
                    pipe.rpush(queue.key, *batch)
                else:
                    for item in batch:
                        pipe.xadd(queue.key, {"data": item})
                pipe.execute()
            pushed[name] = len(items)
    finally:
        client.close()
    return pushed, time.perf_counter() - started


def _drain(project: Project, config: RedisConfig) -> int:
    """Run `PROCS` readers per queue until every queue is empty (its items committed into
    chunks), then stop them gracefully: each publishes its chunk in hand. How many ran."""
    pool = ReaderPool(project, SOURCE, list(config.queues), PROCS)
    health = RedisSource(SOURCE, config, project.root)
    deadline = time.monotonic() + DRAIN_TIMEOUT
    pool.start()
    try:
        while any(health.queue_depth(queue) for queue in config.queues):
            if time.monotonic() > deadline:
                raise AnchorflowError(
                    f"backend: the readers did not drain Redis in {DRAIN_TIMEOUT:.0f}s"
                )
            pool.check()  # a reader that died is restarted; its items are recovered
            time.sleep(0.2)
    finally:
        codes = pool.stop()
        health.close()
    if any(code != 0 for code in codes):
        raise AnchorflowError(f"backend: readers exited with {codes}")
    return len(codes)


def _published(landing: Path, config: RedisConfig) -> tuple[int, int]:
    """The published chunks and their records; a temporary left behind is an error."""
    chunks = records = 0
    for queue in config.queues:
        directory = landing / queue
        if leftover_temporaries(directory):
            raise AnchorflowError(f"backend: unpublished chunks left in {directory}")
        for chunk in sealed_chunks(directory):
            chunks += 1
            records += record_count(chunk_path(directory, chunk))
    return chunks, records


def backend_line(warehouse: Warehouse, project: Project) -> str | None:
    """What the backend stream put in raw, for the demo's summary."""
    config = backend_config(project)
    if config is None:
        return None
    counts = ", ".join(
        f"raw.{SOURCE}_{queue} {_raw_rows(warehouse, queue):,}" for queue in config.queues
    )
    return f"backend (Redis → readers → chunks → raw): {counts} records"
