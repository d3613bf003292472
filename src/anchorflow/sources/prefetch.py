"""A source's batches produced in a thread of their own and handed over in order.

The producer thread does the waiting on the network (a download, a rate limit's Retry-After)
while the caller commits what came before. The caller can ask whether the next item is there
(`ready`) before it blocks on it: the land step lets go of the warehouse when it is not, so that
readers can open the file while the source is slow (see `land.step`).

Memory is bounded by `ahead`: the producer starts an item only when fewer than `ahead` items
are produced (or being produced) beyond the one the caller holds; with 0 it starts one only when
asked for it, as a plain iterator would. An error reaches the caller after the items produced
before it, so those still commit.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
POLL = 0.1  # seconds between the producer's looks at `stop` while it waits to be asked
CLOSE_WAIT = 5.0  # seconds `close` waits for the producer to stop
log = logging.getLogger(__name__)


class _End:
    """What the producer hands over after the last item."""


class Prefetch(Iterator[T]):
    def __init__(
        self, produce: Callable[[threading.Event], Iterable[T]], ahead: int, name: str
    ) -> None:
        """`produce(stop)` yields the items in order; it should return soon once `stop` is set
        (between items it is stopped anyway). It runs in a daemon thread called `name`."""
        self._asks = threading.Semaphore(ahead)
        self._items: queue.Queue[T | BaseException | _End] = queue.Queue()
        self._stop = threading.Event()
        self._next: T | BaseException | _End | None = None  # taken from the queue by `ready`
        self._asked = False  # the item the caller waits for has been asked for
        self._thread = threading.Thread(target=self._run, args=(produce,), name=name, daemon=True)
        self._thread.start()

    def __next__(self) -> T:
        item = self._take(None)
        if isinstance(item, _End):
            self._items.put(item)  # every later call ends too
            raise StopIteration
        if isinstance(item, BaseException):
            self._items.put(_End())  # the producer has stopped: later calls end
            raise item
        return item

    def ready(self, timeout: float) -> bool:
        """Whether the next item (or the end, or an error) is there, waiting up to `timeout`
        seconds for it; `next` then returns without waiting."""
        if self._next is None:
            self._ask()
            with contextlib.suppress(queue.Empty):
                self._next = self._items.get(timeout=timeout)
        return self._next is not None

    def close(self) -> None:
        """Stop the producer and wait for it, up to `CLOSE_WAIT` seconds: it ends the item under
        way (a download checks `stop`), closes what `produce` returned, and exits. A producer
        that does not look at `stop` (a plain generator blocked on a slow read) is left behind,
        a daemon thread, so that an interrupt still ends the command at once; what it leaves in
        the work directory goes at the next start. What it produced is dropped."""
        self._stop.set()
        self._thread.join(CLOSE_WAIT)
        if self._thread.is_alive():
            log.debug("%s did not stop within %ss; left behind", self._thread.name, CLOSE_WAIT)
        # What it produced is dropped with the queue, not drained from it: an interrupt that
        # arrived inside the caller's `get` can leave the queue's lock held, and a drain would
        # then wait on it for ever.
        self._next = None
        self._items = queue.Queue()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take(self, timeout: float | None) -> T | BaseException | _End:
        if self._next is not None:
            item, self._next = self._next, None
        else:
            self._ask()
            item = self._items.get(timeout=timeout)
        self._asked = False
        return item

    def _ask(self) -> None:
        if not self._asked:
            self._asked = True
            self._asks.release()

    def _run(self, produce: Callable[[threading.Event], Iterable[T]]) -> None:
        items: Iterator[T] | None = None
        try:
            items = iter(produce(self._stop))
            while self._asked_for_one():
                item = next(items, _End())
                self._items.put(item)
                if isinstance(item, _End):
                    return
        except BaseException as error:  # handed to the caller's thread, raised there
            if not self._stop.is_set():
                self._items.put(error)
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator's cleanup (its temporary files) runs here
                with contextlib.suppress(Exception):
                    close()

    def _asked_for_one(self) -> bool:
        while not self._stop.is_set():
            if self._asks.acquire(timeout=POLL):
                return not self._stop.is_set()
        return False


def prefetched(items: Iterator[T], name: str) -> Prefetch[T]:
    """`items` as a `Prefetch`: itself when it is one, else produced in a thread on demand
    (`ahead` 0: no more is held in memory than when it is iterated directly)."""
    if isinstance(items, Prefetch):
        return items
    return Prefetch(lambda stop: items, 0, name)
