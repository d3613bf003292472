"""Durability: a request answered 200 is in a published chunk after a SIGKILL and a restart."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.serve.hooks import (
    ServeProcess,
    hooks_project,
    leftovers,
    published_records,
    signed,
    wait_for,
)

pytestmark = pytest.mark.slow


def flood(url: str, project: object, acknowledged: list[str], stop: threading.Event) -> None:
    """Send deliveries from 20 connections until `stop`; note the ids answered 200."""

    async def worker(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            payload = {"id": f"n-{uuid.uuid4()}", "data": "x" * 200}
            body, headers = signed(project, "intercom", payload)  # type: ignore[arg-type]
            try:
                response = await client.post("/hooks/intercom", content=body, headers=headers)
            except httpx.TransportError:
                await asyncio.sleep(0.01)
                continue
            if response.status_code == 200:
                acknowledged.append(payload["id"])

    async def main() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            await asyncio.gather(*(worker(client) for _ in range(20)))

    asyncio.run(main())


@pytest.mark.parametrize("trial", range(5))
def test_an_acknowledged_delivery_survives_sigkill(tmp_path: Path, trial: int) -> None:
    # Even trials publish every 300 records (killed around rotations too); odd ones never
    # publish before the kill, so everything acknowledged is in the leftover.
    rotating = trial % 2 == 0
    chunking = {"chunk_size": 300} if rotating else {"chunk_timeout": "1h"}
    project = hooks_project(tmp_path, intercom=chunking)
    server = ServeProcess(project.root).start()
    acknowledged: list[str] = []
    stop = threading.Event()
    sender = threading.Thread(target=flood, args=(server.url, project, acknowledged, stop))
    sender.start()
    try:
        wait_for(lambda: len(acknowledged) >= 200 + 150 * trial, deadline=60)
        server.kill()  # SIGKILL, with requests in flight
    finally:
        stop.set()
        sender.join(timeout=30)
    answered = set(acknowledged)
    if not rotating:
        assert published_records(project, "intercom") == []
        assert leftovers(project, "intercom")  # the open chunk, left as it was
    again = ServeProcess(project.root).start()  # publishes what the killed one left
    assert leftovers(project, "intercom") == []
    assert again.stop().returncode == 0
    stored = Counter(r["id"] for r in published_records(project, "intercom"))
    assert answered <= set(stored)
    assert max(stored.values()) == 1


def test_sigterm_under_load_answers_or_refuses_and_publishes_everything(tmp_path: Path) -> None:
    project = hooks_project(tmp_path, intercom={"chunk_timeout": "1h"})
    server = ServeProcess(project.root).start()
    acknowledged: list[str] = []
    stop = threading.Event()
    sender = threading.Thread(target=flood, args=(server.url, project, acknowledged, stop))
    sender.start()
    try:
        wait_for(lambda: len(acknowledged) >= 300, deadline=60)
        stopped = server.stop()  # SIGTERM with requests in flight
    finally:
        stop.set()
        sender.join(timeout=30)
    assert stopped.returncode == 0, stopped.stderr
    assert leftovers(project, "intercom") == []  # the open chunk was published
    stored = Counter(r["id"] for r in published_records(project, "intercom"))
    assert set(acknowledged) <= set(stored)
    assert max(stored.values()) == 1
