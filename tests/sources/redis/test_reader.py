"""Redis readers against a real redis-server: lists and streams drained into landing chunks,
each item exactly once, chunks closed by size and by time, readers side by side, fencing, and
the recovery of what a killed reader left (in Redis and on disk)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from anchorflow.sources import chunks
from anchorflow.sources.redis.keys import QueueKeys
from anchorflow.sources.redis.reader import Fenced, Reader
from anchorflow.sources.redis.streams import entry_record
from tests.sources.redis.helpers import (
    LIST_KEY,
    STREAM_KEY,
    add,
    client,
    config,
    exactly,
    items,
    landed,
    project,
    push,
    reader_process,
    reader_thread,
    stream_taken,
    wait_for,
)

pytestmark = pytest.mark.integration
CRASH_EXIT = 86


@pytest.mark.parametrize("chunk_format", ["arrow", "ndjson"])
def test_a_list_lands_each_item_once_in_chunks(
    redis_url: str, tmp_path: Path, chunk_format: str
) -> None:
    values = items(12_345)
    values[7] = b'{"id":"multi",\r\n "n":\n1}'  # JSON with breaks between tokens
    values[9] = b"not json\nat all"
    push(redis_url, values)
    settings = config(redis_url, chunk_format=chunk_format)
    with reader_thread(settings, "events", tmp_path) as reader:
        wait_for(lambda: len(landed(tmp_path, "events")) >= len(values), what="the drain")
    # An Arrow chunk keeps each item as it arrived; a line chunk puts it on one line.
    arrow = chunk_format == "arrow"
    expected = values if arrow else [chunks.one_line(v) for v in values]
    got = landed(tmp_path, "events")
    exactly(expected, got)
    assert got == expected  # one reader keeps the list's order
    if not arrow:
        assert b'{"id":"multi",   "n": 1}' in got and b"not json\\nat all" in got
    suffix = f".{chunk_format}"
    files = sorted((tmp_path / "events").iterdir())
    assert files and all(f.name.endswith(suffix) for f in files)
    sizes = [len(chunks.chunk_records(chunks.chunk_path(tmp_path / "events", c)))
             for c in chunks.sealed_chunks(tmp_path / "events")]  # fmt: skip
    assert max(sizes) <= 2000 and sum(sizes) == len(values)
    launch = chunks.read_launch(tmp_path, reader.launch_id)
    assert launch is not None and launch["kind"] == "reader" and launch["queue"] == "events"
    assert launch["key"] == LIST_KEY
    with client(redis_url) as r:  # nothing left behind: no processing list, no marks, no reader
        assert r.llen(LIST_KEY) == 0
        assert [k for k in r.keys("anchorflow:*")] == []


def test_a_stream_lands_each_entry_once_as_one_record(redis_url: str, tmp_path: Path) -> None:
    entries = [{b"data": v} for v in items(3000)]
    entries += [{b"event": b"signup", b"user": f"u{i}".encode()} for i in range(500)]
    add(redis_url, entries)  # type: ignore[arg-type]
    with reader_thread(config(redis_url), "payments", tmp_path):
        wait_for(lambda: len(landed(tmp_path, "payments")) >= len(entries), what="the drain")
    expected = [entry_record(e) for e in entries]
    exactly(expected, landed(tmp_path, "payments"))
    assert json.loads(expected[-1]) == {"event": "signup", "user": "u499"}
    assert expected[0] == items(1)[0]
    with client(redis_url) as r:  # acknowledged and deleted (delete_acked)
        assert r.xlen(STREAM_KEY) == 0
        assert r.xpending(STREAM_KEY, "anchorflow")["pending"] == 0


def test_a_stream_keeps_acknowledged_entries_when_asked(redis_url: str, tmp_path: Path) -> None:
    add(redis_url, [{"data": v} for v in items(100)])
    queues = {"payments": {"stream": STREAM_KEY, "delete_acked": False}}
    with reader_thread(config(redis_url, queues=queues), "payments", tmp_path):
        wait_for(lambda: len(landed(tmp_path, "payments")) >= 100)
    with client(redis_url) as r:
        assert r.xlen(STREAM_KEY) == 100
        assert r.xpending(STREAM_KEY, "anchorflow")["pending"] == 0


def test_a_chunk_closes_at_its_size_and_at_its_timeout(redis_url: str, tmp_path: Path) -> None:
    push(redis_url, items(35))
    cfg = config(redis_url, chunk_size=10, batch=4, chunk_timeout="400ms")
    with reader_thread(cfg, "events", tmp_path):
        # 10, 10, 10 by size; the last 5 only when the timeout closes the chunk (still running)
        wait_for(lambda: len(landed(tmp_path, "events")) == 35, what="the last chunk")
        sizes = [len(chunks.chunk_records(chunks.chunk_path(tmp_path / "events", c)))
                 for c in chunks.sealed_chunks(tmp_path / "events")]  # fmt: skip
        assert sizes == [10, 10, 10, 5]
        push(redis_url, items(3, start=100))
        wait_for(lambda: len(landed(tmp_path, "events")) == 38, what="a small chunk by time")
    exactly(items(35) + items(3, start=100), landed(tmp_path, "events"))


def test_two_readers_share_a_list_without_a_duplicate(redis_url: str, tmp_path: Path) -> None:
    values = items(30_000)
    cfg = config(redis_url, batch=200)
    with reader_thread(cfg, "events", tmp_path), reader_thread(cfg, "events", tmp_path):
        for part in range(0, len(values), 5000):  # pushed while both read
            push(redis_url, values[part : part + 5000])
        wait_for(lambda: len(landed(tmp_path, "events")) >= len(values), what="the drain")
    got = landed(tmp_path, "events")
    exactly(values, got)
    launches = {chunks.launch_of(c) for c in chunks.sealed_chunks(tmp_path / "events")}
    assert len(launches) == 2


def test_a_reader_declared_dead_loses_its_commit(redis_url: str, tmp_path: Path) -> None:
    values = items(50)
    push(redis_url, values)
    cfg = config(redis_url, chunk_timeout="60s", heartbeat="60s")
    late = Reader("bus", cfg, "events", tmp_path)
    late.start()
    late.step()  # 50 items in hand, in an open chunk
    assert late.chunk is not None and late.chunk.items == 50
    keys = QueueKeys(LIST_KEY)
    with client(redis_url) as r:
        r.delete(keys.alive(late.launch_id))  # as if its heartbeat had expired
    with reader_thread(config(redis_url), "events", tmp_path):  # recovers it at start
        wait_for(lambda: len(landed(tmp_path, "events")) >= 50, what="the requeued items")
        with pytest.raises(Fenced, match="declared dead by another reader"):
            late.close_chunk()
    exactly(values, landed(tmp_path, "events"))
    assert chunks.leftover_temporaries(tmp_path / "events") == []


@pytest.mark.parametrize("queue", ["events", "payments"])
def test_a_reader_killed_before_its_commit_is_recovered(
    redis_url: str, tmp_path: Path, queue: str
) -> None:
    root = tmp_path / "p"
    proj = project(root, redis_url)
    landing = chunks.landing_dir(root, "bus")
    values = items(1200)
    if queue == "events":
        push(redis_url, values)
    else:
        add(redis_url, [{"data": v} for v in values])
    dead = reader_process(proj.file, queue, crash_at="redis_reader_sealed")
    assert dead.wait(30) == CRASH_EXIT
    (left,) = chunks.leftover_temporaries(landing / queue)  # sealed, not committed
    assert landed(landing, queue) == []
    with reader_thread(config(redis_url), queue, landing):
        wait_for(lambda: len(landed(landing, queue)) >= len(values), what="the recovery")
    got = landed(landing, queue)
    exactly(values, got)
    if queue == "events":
        assert got == values  # requeued at the head, in order
    assert chunks.leftover_temporaries(landing / queue) == []
    assert chunks.launch_of(left) not in {chunks.launch_of(c) for c in chunks.sealed_chunks(
        landing / queue)}  # fmt: skip
    with client(redis_url) as r:
        assert r.keys("anchorflow:*processing*") == []
        if queue == "payments":  # the dead consumer is gone once its entries were claimed
            names = {c["name"].decode() for c in r.xinfo_consumers(STREAM_KEY, "anchorflow")}
            assert chunks.launch_of(left) not in names


@pytest.mark.parametrize("queue", ["events", "payments"])
def test_a_committed_temporary_of_a_killed_reader_is_published(
    redis_url: str, tmp_path: Path, queue: str
) -> None:
    root = tmp_path / "p"
    proj = project(root, redis_url)
    landing = chunks.landing_dir(root, "bus")
    values = items(700)
    if queue == "events":
        push(redis_url, values)
    else:
        add(redis_url, [{"data": v} for v in values])
    dead = reader_process(proj.file, queue, crash_at="redis_reader_committed")
    assert dead.wait(30) == CRASH_EXIT
    (left,) = chunks.leftover_temporaries(landing / queue)
    with reader_thread(config(redis_url), queue, landing):
        wait_for(lambda: len(landed(landing, queue)) >= len(values), what="the publication")
    exactly(values, landed(landing, queue))
    assert left in chunks.sealed_chunks(landing / queue)  # published under its own id
    with client(redis_url) as r:
        assert r.keys("anchorflow:*committed*") == []


def test_sigterm_publishes_the_chunk_in_hand(redis_url: str, tmp_path: Path) -> None:
    root = tmp_path / "p"
    proj = project(root, redis_url, chunk_timeout="1h", chunk_size=100_000)
    landing = chunks.landing_dir(root, "bus")
    process = reader_process(proj.file, "events")
    with client(redis_url) as r:
        wait_for(lambda: r.scard(QueueKeys(LIST_KEY).readers) == 1, what="the reader")
        push(redis_url, items(500))
        wait_for(lambda: r.llen(LIST_KEY) == 0, what="the items taken")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        exactly(items(500), landed(landing, "events"))
        assert r.keys("anchorflow:*") == []


def test_a_stop_mid_drain_leaves_the_rest_in_the_stream_for_the_next_reader(
    redis_url: str, tmp_path: Path
) -> None:
    """A stop is not a drain: a reader held back (SIGSTOP, as a loaded machine may) while the
    entries arrive, then stopped, publishes the few it took; the rest stays in the stream and
    the next reader lands it, each entry once."""
    proj = project(tmp_path / "p", redis_url, chunk_timeout="1h")
    landing = chunks.landing_dir(proj.root, "bus")
    first = reader_process(proj.file, "payments")
    with client(redis_url) as r:
        wait_for(lambda: r.scard(QueueKeys(STREAM_KEY).readers) == 1, what="the reader")
        first.send_signal(signal.SIGSTOP)
        add(redis_url, [{"data": v} for v in items(1000)])
        first.send_signal(signal.SIGTERM)  # handled once it runs again: a take at most
        first.send_signal(signal.SIGCONT)
        assert first.wait(30) == 0
        assert not stream_taken(r)  # 1000 entries, batches of 500
        second = reader_process(proj.file, "payments")
        wait_for(lambda: stream_taken(r), what="the rest taken")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
        exactly(items(1000), landed(landing, "payments"))
        assert r.keys("anchorflow:*") == []


def test_an_unreachable_redis_is_one_line_without_the_password(tmp_path: Path) -> None:
    from anchorflow.dev.postgres import free_port

    url = f"redis://:sup3r-secret-pw@127.0.0.1:{free_port()}/0"
    root = tmp_path / "p"
    proj = project(root, url, heartbeat="1s", timeout="500ms")
    process = reader_process(proj.file, "events")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Redis at redis://"), lines
    assert "sup3r-secret-pw" not in stderr.decode()


def test_a_list_reader_abandons_a_chunk_redis_does_not_hold(redis_url: str, tmp_path: Path) -> None:
    """A take whose reply was lost leaves an item in the processing list that the chunk does
    not hold: the next take sees it, the chunk is dropped, the items go back, none is lost."""
    push(redis_url, items(40))
    reader = Reader("bus", config(redis_url, chunk_timeout="60s"), "events", tmp_path)
    reader.start()
    reader.step()
    assert reader.chunk is not None and reader.chunk.items == 40
    with client(redis_url) as r:  # what a lost reply would have moved
        r.rpush(LIST_KEY, *items(2, start=40))
        r.lmove(LIST_KEY, QueueKeys(LIST_KEY).processing(reader.launch_id), "LEFT", "RIGHT")
    reader.step()  # refused by the take script: abandoned
    assert reader.chunk is None and chunks.leftover_temporaries(tmp_path / "events") == []
    with client(redis_url) as r:
        assert r.lrange(LIST_KEY, 0, -1) == [*items(42)]  # back at the head, in order
    reader.run(lambda: reader.chunk is not None and reader.chunk.items == 42)  # then closes it
    assert landed(tmp_path, "events") == items(42)


def test_a_stream_reader_reads_again_what_a_lost_reply_delivered(
    redis_url: str, tmp_path: Path
) -> None:
    """An XREADGROUP whose reply was lost leaves entries pending for the reader that its chunk
    does not hold: after its commit the reader reads its own pending entries again."""
    add(redis_url, [{b"data": v} for v in items(30)])
    reader = Reader("bus", config(redis_url, chunk_timeout="60s"), "payments", tmp_path)
    reader.start()
    reader.step()
    add(redis_url, [{b"data": v} for v in items(5, start=30)])
    with client(redis_url) as r:  # delivered to the reader, the reply lost
        r.xreadgroup("anchorflow", reader.launch_id, {STREAM_KEY: ">"}, count=5)
    reader.close_chunk()  # 30 committed, 5 still pending for it
    assert landed(tmp_path, "payments") == items(30)
    reader.run(lambda: reader.chunk is not None and reader.chunk.items == 5)  # then closes it
    exactly(items(35), landed(tmp_path, "payments"))


def test_readers_survive_dropped_connections(redis_url: str, tmp_path: Path) -> None:
    values = items(20_000)
    cfg = config(redis_url, batch=100)
    with (
        client(redis_url) as r,
        reader_thread(cfg, "events", tmp_path),
        reader_thread(cfg, "payments", tmp_path),
    ):
        for part in range(0, len(values), 2000):
            push(redis_url, values[part : part + 2000])
            add(redis_url, [{b"data": v} for v in values[part : part + 2000]])
            r.client_kill_filter(_type="normal", skipme=True)  # every reader's connection
        wait_for(lambda: len(landed(tmp_path, "events")) >= len(values), what="the list")
        wait_for(lambda: len(landed(tmp_path, "payments")) >= len(values), what="the stream")
    exactly(values, landed(tmp_path, "events"))
    exactly(values, landed(tmp_path, "payments"))
