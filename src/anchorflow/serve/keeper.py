"""When the server holds the warehouse: while a run or a page read is in flight, and `linger`
seconds after the last one; then it lets go of it, so other processes (dbt, a notebook, a BI
tool, `anchorflow status`) can open a DuckDB file between the server's runs and reads, as they
could between the runs of `anchorflow run` from cron. The next run or read takes it back,
waiting for them up to `warehouse.lock_timeout` (a read that waits longer answers 503 naming
the holder; a run fails, recorded and alerted, as any held warehouse does).

A database server (PostgreSQL) has nothing to let go of: its readers' connections are closed
when idle all the same, and opened again by the next read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from anchorflow.errors import WarehouseError
from anchorflow.warehouse import Warehouse

LINGER_SECONDS = 2.0


class Keeper:
    def __init__(
        self,
        warehouse: Warehouse,
        linger: float = LINGER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.warehouse = warehouse
        self.linger = linger
        self.clock = clock
        self.releases = 0  # how many times the warehouse was let go of
        self._users = 0
        self._last_use = clock()
        self._lock = threading.Lock()
        self._before_release: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_release(self, close: Callable[[], None]) -> None:
        """`close` runs before the warehouse is let go of (the pages' cursors close)."""
        self._before_release.append(close)

    @contextmanager
    def held(self) -> Iterator[None]:
        """The warehouse is kept while the block runs (a run, a read). A block that never
        opened it (a loader tick with nothing to load) does not count as a use."""
        with self._lock:
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if not self.warehouse.released:
                    self._last_use = self.clock()

    @property
    def in_use(self) -> bool:
        with self._lock:
            return self._users > 0

    def let_go_if_idle(self) -> bool:
        """Let go of the warehouse when nothing has used it for `linger` seconds; whether it
        did. A use that starts meanwhile waits for this to end, then opens it again."""
        with self._lock:
            idle = self._users == 0 and self.clock() - self._last_use >= self.linger
            if not idle or self.warehouse.released:
                return False
            for close in self._before_release:
                close()
            self.warehouse.kept_open = False
            try:
                self.warehouse.release()
            except WarehouseError:  # a transaction of its own (none should be): keep it
                return False
            self.releases += 1
            return True

    def start(self, every: float = 0.5) -> None:
        def watch() -> None:
            while not self._stop.wait(every):
                self.let_go_if_idle()

        self._thread = threading.Thread(target=watch, name="serve-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
