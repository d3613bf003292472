"""`anchorflow serve` runs the whole intake: Redis readers (supervised) and the loader of chunk
sources beside the webhook endpoints. Items pushed to a list and a stream, and signed webhook
deliveries, all end in raw once; a reader killed with SIGKILL is restarted and nothing is lost;
a SIGTERM loads what was published before the process exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import duckdb
import httpx
import pytest

from tests.builders import build_project
from tests.serve.hooks import ENV, SOURCES, ServeProcess, signed, wait_for
from tests.sources.redis.helpers import STREAM_KEY, add, client, items, push, settings

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in found.split()]


def test_serve_reads_loads_and_restarts_readers(tmp_path: Path, redis_url: str) -> None:
    project = build_project(
        tmp_path,
        sources={"bus": settings(redis_url), "intercom": SOURCES["intercom"]},
        staging={},
        env=ENV,
    )
    first = items(3000)
    push(redis_url, first)
    add(
        redis_url, [{"data": json.dumps({"id": i, "type": "payment"}).encode()} for i in range(500)]
    )
    server = ServeProcess(tmp_path, extra=["--load-every", "1s"]).start()
    try:
        notifications = [str(uuid.uuid4()) for _ in range(10)]
        for notification in notifications:
            body, headers = signed(project, "intercom", {"id": notification})
            answer = httpx.post(f"{server.url}/hooks/intercom", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
        with client(redis_url) as r:
            wait_for(lambda: r.llen("bus:events") == 0, deadline=60)
            assert server.process is not None
            readers = _children(server.process.pid)
            assert len(readers) == 2  # one per queue
            os.kill(readers[0], signal.SIGKILL)
            second = items(2000, start=3000)
            push(redis_url, second)
            wait_for(lambda: r.llen("bus:events") == 0, deadline=60)
            wait_for(lambda: len(_children(server.process.pid)) == 2, deadline=60)  # type: ignore[union-attr]
            wait_for(lambda: r.xlen(STREAM_KEY) == 0, deadline=60)  # acknowledged, deleted
        stopped = server.stop()
        assert stopped.returncode == 0, stopped.stderr
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as db:
        events = db.execute("SELECT record FROM raw.bus_events").fetchall()
        payments = db.execute("SELECT count(DISTINCT record), count(*) FROM raw.bus_payments")
        payment_counts = payments.fetchone()
        hooks = db.execute(
            "SELECT json_extract_string(record, '$.id') FROM raw.intercom_events"
        ).fetchall()
    assert sorted(r[0].encode() for r in events) == sorted(first + second)
    assert payment_counts == (500, 500)
    assert sorted(r[0] for r in hooks) == sorted(notifications)
