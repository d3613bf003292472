"""`anchorflow read`: reader processes per queue, a dead one restarted, SIGTERM stops them all
after they publish their chunk in hand."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from anchorflow.sources import chunks
from anchorflow.sources.redis.keys import QueueKeys
from anchorflow.sources.redis.supervise import ReaderPool
from tests.sources.redis.helpers import (
    LIST_KEY,
    STREAM_KEY,
    add,
    client,
    exactly,
    items,
    landed,
    project,
    push,
    stream_taken,
    subprocess_env,
    wait_for,
)

pytestmark = pytest.mark.e2e
CLI = "from anchorflow.cli import main; main()"


def test_read_drains_every_queue_and_stops_on_sigterm(redis_url: str, tmp_path: Path) -> None:
    root = tmp_path / "p"
    project(root, redis_url, chunk_timeout="1h")  # only the stop closes the chunks
    landing = chunks.landing_dir(root, "bus")
    command = [sys.executable, "-c", CLI, "read", "bus", "--procs", "2", "-p", str(root)]
    process = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    with client(redis_url) as r:
        wait_for(lambda: r.scard(QueueKeys(LIST_KEY).readers) == 2, what="the list readers")
        wait_for(lambda: r.scard(QueueKeys(STREAM_KEY).readers) == 2, what="the stream readers")
        push(redis_url, items(3000))
        add(redis_url, [{"data": v} for v in items(1000)])
        # A stop is not a drain: what no reader has taken yet stays in Redis for the next
        # start. So the stop comes once every item is in a reader's hand, on the list and on
        # the stream alike (a loaded machine may leave the stream readers behind the list's).
        wait_for(lambda: r.llen(LIST_KEY) == 0, what="the list taken")
        wait_for(lambda: stream_taken(r), what="the stream taken")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert "stopped 4 reader(s)" in stdout
        exactly(items(3000), landed(landing, "events"))
        exactly(items(1000), landed(landing, "payments"))
        assert r.keys("anchorflow:*") == []


def test_read_refuses_a_source_that_is_not_redis(redis_url: str, tmp_path: Path) -> None:
    root = tmp_path / "p"
    project(root, redis_url)
    command = [sys.executable, "-c", CLI, "read", "nope", "-p", str(root)]
    done = subprocess.run(command, env=subprocess_env(), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "sources.nope: not a redis source" in done.stderr


def test_a_pool_restarts_a_reader_that_died(redis_url: str, tmp_path: Path) -> None:
    proj = project(tmp_path / "p", redis_url)
    pool = ReaderPool(proj, "bus", ["events"], 2, env=subprocess_env())
    pool.start()
    try:
        first = pool.pids
        with client(redis_url) as r:
            wait_for(lambda: r.scard(QueueKeys(LIST_KEY).readers) == 2, what="two readers")
        pool.slots[0].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        restarted = 0

        def restarts() -> bool:
            nonlocal restarted
            restarted += pool.check()
            return restarted == 1

        wait_for(restarts, what="the restart")
        launches = chunks.landing_dir(proj.root, "bus") / chunks.LAUNCHES
        wait_for(lambda: len(list(launches.glob("*.json"))) == 3, what="the new reader's start")
        assert pool.alive() == 2 and pool.pids[0] != first[0] and pool.pids[1] == first[1]
        assert pool.slots[0].exits == [-signal.SIGKILL]
    finally:
        assert pool.stop(30) == [0, 0]


def test_read_help_explains_it_without_type_placeholders() -> None:
    env = {**subprocess_env(), "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-c", CLI, "read", "--help"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.replace("│", " ").split())
    assert "Drain a redis source's lists and streams into landing chunk files" in text
    assert "--queue -q QUEUE" in text and "--procs" in text
    assert "<list[" not in text and "<bool>" not in text
