"""Landing chunks written as the readers write them (`chunks.ChunkFile`, `chunks.write_launch`),
and a project with a `redis` source that loads them; no Redis needed to load."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from anchorflow.config import Project
from anchorflow.dev.postgres import free_port
from anchorflow.sources import chunks
from tests.builders import build_project

SOURCE = "backend"
NOWHERE = "redis://127.0.0.1:9/0"  # loading never contacts Redis


def redis_source(url: str = NOWHERE, **overrides: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "kind": "redis",
        "url": url,
        "queues": {"events": {"list": "bus:events"}, "payments": {"stream": "bus:payments"}},
        "timeout": "2s",
    }
    source.update(overrides)
    return source


def chunk_project(
    root: Path, url: str = NOWHERE, alerts: list[dict[str, Any]] | None = None, **overrides: Any
) -> Project:
    top = {"alerts": alerts} if alerts else {}
    return build_project(root, sources={SOURCE: redis_source(url, **overrides)}, staging={}, **top)


def landing(project: Project) -> Path:
    return chunks.landing_dir(project.root, SOURCE)


def start_launch(project: Project, queue: str = "events", launch: str | None = None) -> str:
    launch = launch or chunks.new_launch_id()
    chunks.write_launch(landing(project), launch, kind="reader", source=SOURCE, queue=queue)
    return launch


def land_chunk(
    project: Project, queue: str, launch: str, seq: int, items: Sequence[bytes],
    fmt: str = chunks.NDJSON,
) -> str:  # fmt: skip
    """Write, seal and publish one chunk (in the format `fmt`); returns its id."""
    chunk = chunks.chunk_id(launch, seq)
    file = chunks.ChunkFile(landing(project) / queue, chunk, fmt)
    file.append(items)
    file.seal()
    file.publish()
    return chunk


def events(count: int, start: int = 0, pad: int = 0) -> list[bytes]:
    return [
        json.dumps({"type": "order", "n": start + i, "pad": "x" * pad}).encode()
        for i in range(count)
    ]


def sealed(project: Project, queue: str = "events") -> list[str]:
    return chunks.sealed_chunks(landing(project) / queue)


@contextmanager
def local_redis(directory: Path) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, without persistence; its URL."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import redis

        client = redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.02)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
