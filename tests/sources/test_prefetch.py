"""The producer thread between a source and the land step: items in order, an error after the
items before it, `ready` that tells a wait coming (when the warehouse is let go of), a bound on
what is produced ahead, and a close that stops the producer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from anchorflow.sources.prefetch import Prefetch, prefetched

pytestmark = pytest.mark.unit


def test_items_come_in_order_then_the_error_after_them() -> None:
    def produce(stop: threading.Event) -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("the third failed")

    with Prefetch(produce, 1, "test") as items:
        assert [next(items), next(items)] == [1, 2]
        with pytest.raises(ValueError, match="the third failed"):
            next(items)
        assert next(items, None) is None  # and it stays ended


def test_ready_says_whether_the_next_item_is_there_without_taking_it() -> None:
    go = threading.Event()

    def produce(stop: threading.Event) -> Iterator[str]:
        yield "first"
        while not go.wait(0.01):  # the network is slow
            if stop.is_set():
                return
        yield "second"

    with Prefetch(produce, 0, "test") as items:
        assert items.ready(5)
        assert next(items) == "first"
        assert not items.ready(0.05)
        go.set()
        assert items.ready(5)
        assert next(items) == "second"
        assert items.ready(5)  # the end is there too
        assert next(items, None) is None


def test_the_producer_starts_no_more_than_ahead_items_beyond_the_callers() -> None:
    started: list[int] = []

    def produce(stop: threading.Event) -> Iterator[int]:
        for n in range(100):
            started.append(n)
            yield n

    for ahead in (0, 2):
        started.clear()
        with Prefetch(produce, ahead, "test") as items:
            assert next(items) == 0
            deadline = time.monotonic() + 5
            while len(started) < 1 + ahead and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # room for a producer that would run further
            assert started == list(range(1 + ahead))


def test_close_stops_a_producer_that_waits_and_closes_its_generator() -> None:
    closed = threading.Event()

    def produce(stop: threading.Event) -> Iterator[int]:
        try:
            yield 1
            stop.wait(60)  # a Retry-After: ends at once when stopped
            yield 2
        finally:
            closed.set()

    items = Prefetch(produce, 1, "test-close")
    assert next(items) == 1
    items.close()
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "test-close"]


def test_a_plain_iterator_is_produced_on_demand_in_a_thread() -> None:
    consumed: list[int] = []

    def numbers() -> Iterator[int]:
        for n in range(3):
            consumed.append(n)
            yield n

    with prefetched(numbers(), "plain") as items:
        assert list(items) == [0, 1, 2]
    already = Prefetch(lambda stop: iter([1]), 0, "again")
    assert prefetched(already, "other") is already
    already.close()


def test_close_leaves_behind_a_producer_that_never_looks_at_stop() -> None:
    """A plain generator blocked on a read (a slow file server) must not hold up Ctrl-C."""
    blocked, never = threading.Event(), threading.Event()

    def stuck() -> Iterator[int]:
        blocked.set()
        never.wait()  # a read that does not return
        yield 1

    items = prefetched(stuck(), "test-stuck")
    assert not items.ready(0)  # asks for the first item: the generator starts
    assert blocked.wait(30)
    closing = threading.Thread(target=items.close)
    closing.start()
    closing.join(timeout=60)  # a deadline, not a measure: without a bound it never returns
    try:
        assert not closing.is_alive()
    finally:
        never.set()
