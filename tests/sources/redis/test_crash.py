"""Reader processes and the loader SIGKILLed at random moments while producers push to a list
and a stream: after restarts, a drain and a last run, raw holds every item exactly once."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb
import pytest
import redis

from anchorflow.sources import chunks
from tests.serve.hooks import ANCHORFLOW
from tests.sources.redis.helpers import (
    add,
    exactly,
    items,
    landed,
    project,
    push,
    reader_process,
    subprocess_env,
    wait_for,
)

pytestmark = pytest.mark.slow
KILLS = 20
QUEUES = ("events", "payments")


def produce(url: str, values: list[bytes], stop: threading.Event, pushed: list[int]) -> None:
    """Push `values` to the list and the stream in small batches until `stop` (or the end);
    `pushed[0]` says how many."""
    for start in range(0, len(values), 100):
        batch = values[start : start + 100]
        push(url, batch)
        add(url, [{"data": v} for v in batch])
        pushed[0] = start + len(batch)
        if stop.wait(0.03):
            return


def started(landing: Path, process: subprocess.Popen[bytes]) -> bool:
    """Whether the reader process has written its launch manifest (it is reading)."""
    return any(
        json.loads(path.read_text()).get("pid") == process.pid
        for path in (landing / chunks.LAUNCHES).glob("*.json")
    )


def stopped(process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> int:
    """The exit code of a process told to stop; one that is still running after `timeout`
    writes its threads' stacks to its stderr (SIGUSR1, the CLI's faulthandler), is killed, and
    fails the test with them."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(2)  # the stacks reach the log; not a timing assertion
        process.kill()
        process.wait()
        raise AssertionError(
            f"the process did not stop within {timeout:.0f} s of SIGTERM; its stacks:\n"
            + log.read_text(errors="replace")[-6000:]
        ) from None


def loader_process(project_file: Path, log: object) -> subprocess.Popen[bytes]:
    """`anchorflow load bus` in a loop, in its own process."""
    command = [str(ANCHORFLOW), "load", "bus", "--every", "200ms", "--project", str(project_file)]
    return subprocess.Popen(command, env=subprocess_env(None), stderr=log)  # type: ignore[arg-type]


def taken(url: str) -> bool:
    """Whether the readers have taken every item: the list is empty and the stream's group has
    nothing unread or unacknowledged."""
    with redis.Redis.from_url(url, socket_timeout=10) as r:
        if r.llen("bus:events"):
            return False
        groups = r.xinfo_groups("bus:payments") if r.exists("bus:payments") else []
        return all(not g["pending"] and not g.get("lag") for g in groups)


def raw_records(root: Path, queue: str) -> list[bytes]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as db:
        rows = db.execute(f"SELECT record FROM raw.bus_{queue}").fetchall()  # our own names
    return [r[0].encode() for r in rows]


def test_readers_and_loader_killed_at_random_lose_and_duplicate_nothing(
    redis_url: str, tmp_path: Path
) -> None:
    rng = random.Random(14)
    root = tmp_path / "p"
    proj = project(root, redis_url, heartbeat="1500ms", chunk_timeout="150ms", chunk_size=600,
                   batch=150)  # fmt: skip
    landing = chunks.landing_dir(root, "bus")
    values = items(200_000, size=120)
    pushed = [0]
    log = open(tmp_path / "readers.log", "wb")  # noqa: SIM115 - closed below
    start = lambda queue: reader_process(proj.file, queue, stderr=log)  # noqa: E731
    readers = {queue: [start(queue), start(queue)] for queue in QUEUES}
    loader = [loader_process(proj.file, log)]

    def revive() -> None:
        """Restart a reader that exited by itself (fenced after a stall), as a pool would."""
        for queue, pair in readers.items():
            for slot, process in enumerate(pair):
                if process.poll() is not None:
                    pair[slot] = start(queue)

    stop = threading.Event()
    producer = threading.Thread(target=produce, args=(redis_url, values, stop, pushed), daemon=True)
    producer.start()
    try:
        began = time.monotonic()
        slots = [(q, i) for q in QUEUES for i in range(2)]

        def reading() -> list[tuple[str, int]]:
            return [(q, i) for q, i in slots if started(landing, readers[q][i])]

        loader_kills = 0
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.0, 0.4))  # a random moment, not a timing assertion
            if rng.random() < 0.3:  # the loader, wherever it is in its run
                loader[0].send_signal(signal.SIGKILL)
                loader[0].wait()
                loader[0] = loader_process(proj.file, log)
                loader_kills += 1
                continue
            wait_for(lambda: bool(reading()), what="a reader's start")
            queue, slot = rng.choice(reading())
            readers[queue][slot].send_signal(signal.SIGKILL)
            readers[queue][slot].wait()
            readers[queue][slot] = start(queue)
            revive()
        stop.set()
        producer.join(60)
        sent = values[: pushed[0]]
        killing = time.monotonic() - began

        def drained() -> bool:
            revive()
            return taken(redis_url)

        wait_for(drained, timeout=40, what="the drain")
        print(
            f"{KILLS} kills ({loader_kills} of the loader) in {killing:.1f} s, {len(sent)} "
            f"items, drained after {time.monotonic() - began - killing:.1f} s"
        )
    finally:
        stop.set()
        loader[0].send_signal(signal.SIGTERM)
        loader_code = stopped(loader[0], tmp_path / "readers.log")
        codes = []
        for process in (p for pair in readers.values() for p in pair):
            process.send_signal(signal.SIGTERM)
            try:
                codes.append(process.wait(30))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(None)
        log.close()
    assert codes == [0] * len(codes), (tmp_path / "readers.log").read_text()[-3000:]
    assert loader_code in (0, 130, -signal.SIGTERM, 128 + signal.SIGTERM)  # stopped by its signal
    last = subprocess.run(
        [str(ANCHORFLOW), "run", "--project", str(proj.file)],
        env=subprocess_env(None), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert last.returncode == 0, last.stderr
    for queue in QUEUES:
        assert chunks.leftover_temporaries(landing / queue) == []
        assert landed(landing, queue) == []  # every sealed chunk loaded, then deleted
        exactly(sent, raw_records(root, queue))
