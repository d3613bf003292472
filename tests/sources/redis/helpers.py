"""What the Redis reader tests share: settings, a reader in a thread or in its own process,
the items that landed, and polling for a condition with a deadline (never a bare sleep)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from anchorflow.config import Project
from anchorflow.crashpoints import CRASH_ENV
from anchorflow.sources import chunks
from anchorflow.sources.redis.config import RedisConfig
from anchorflow.sources.redis.reader import Reader
from tests.builders import build_project

LIST_KEY = "bus:events"
STREAM_KEY = "bus:payments"
FAST = {"chunk_timeout": "300ms", "heartbeat": "1s", "timeout": "2s"}


def settings(url: str, **overrides: Any) -> dict[str, Any]:
    """A redis source's settings: a list queue `events` and a stream queue `payments`."""
    data: dict[str, Any] = {
        "kind": "redis",
        "url": url,
        "queues": {
            "events": {"list": LIST_KEY},
            "payments": {"stream": STREAM_KEY, "claim_idle": "500ms"},
        },
        "batch": 500,
        "chunk_size": 2000,
        **FAST,
    }
    data.update(overrides)
    return data


def config(url: str, **overrides: Any) -> RedisConfig:
    return RedisConfig.model_validate(settings(url, **overrides))


def project(root: Path, url: str, **overrides: Any) -> Project:
    """A project whose source `bus` is the redis source of `settings`."""
    return build_project(root, sources={"bus": settings(url, **overrides)}, staging={})


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10)


def items(n: int, start: int = 0, size: int = 60) -> list[bytes]:
    """`n` distinct JSON records of about `size` bytes."""
    pad = "x" * max(0, size - 40)
    return [f'{{"id":{i},"type":"order","pad":"{pad}"}}'.encode() for i in range(start, start + n)]


def push(url: str, values: list[bytes], key: str = LIST_KEY) -> None:
    with client(url) as r:
        for i in range(0, len(values), 1000):
            r.rpush(key, *values[i : i + 1000])


def add(url: str, entries: list[dict[str, bytes]], key: str = STREAM_KEY) -> None:
    with client(url) as r:
        pipe = r.pipeline(transaction=False)
        for fields in entries:
            pipe.xadd(key, fields)  # type: ignore[arg-type]
        pipe.execute()


def stream_taken(r: redis.Redis, key: str = STREAM_KEY, group: str = "anchorflow") -> bool:
    """Whether the group has delivered every entry of the stream to its readers (they may still
    hold them, pending, in their chunks in hand); what it has not delivered stays in the stream
    through a stop, for the next reader."""
    last = r.xinfo_stream(key)["last-generated-id"]  # type: ignore[index]
    groups: list[dict[str, Any]] = r.xinfo_groups(key)  # type: ignore[assignment]
    return any(g["name"] == group.encode() and g["last-delivered-id"] == last for g in groups)


def landed(landing: Path, queue: str) -> list[bytes]:
    """Every record of the sealed chunks of `queue`, chunk by chunk, in order."""
    directory = landing / queue
    out: list[bytes] = []
    for chunk in chunks.sealed_chunks(directory):
        out.extend(chunks.chunk_records(chunks.chunk_path(directory, chunk)))
    return out


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


def exactly(expected: list[bytes], got: list[bytes]) -> None:
    """`got` holds each of `expected` exactly once (as multisets, with a short diff)."""
    want, have = Counter(expected), Counter(got)
    missing = want - have
    extra = have - want
    assert not missing and not extra, (
        f"{sum(missing.values())} missing, {sum(extra.values())} extra: "
        f"{list(missing)[:3]} {list(extra)[:3]}"
    )


@contextmanager
def reader_thread(
    cfg: RedisConfig, queue: str, landing: Path, source: str = "bus"
) -> Iterator[Reader]:
    """A reader running in a thread; stopped gracefully (and its error raised) on exit."""
    reader = Reader(source, cfg, queue, landing)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reader.run(stop)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield reader
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the reader did not stop"
    if errors:
        raise errors[0]


def subprocess_env(crash_at: str | None = None) -> dict[str, str]:
    """The environment of a child process running this checkout's code."""
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3] / "src")
    if crash_at:
        env[CRASH_ENV] = crash_at
    return env


def reader_process(
    project_file: Path,
    queue: str,
    crash_at: str | None = None,
    source: str = "bus",
    stderr: Any = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """One reader in its own process (`anchorflow.sources.redis.worker`)."""
    command = [sys.executable, "-m", "anchorflow.sources.redis.worker", str(project_file),
               source, queue]  # fmt: skip
    return subprocess.Popen(command, env=subprocess_env(crash_at), stderr=stderr)
