"""What every page reads through: the project, and the warehouse that `serve` owns.

`serve` opens the warehouse once; its scheduled runs write through that connection, and the
pages read through cursors of it (DuckDB: `connection.cursor()`, one per reader thread, each
seeing the last commit; PostgreSQL: a connection per reader). The cursors are made when the
app starts, before any run holds the connection, so a read never waits for a run's commit.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from anyio import to_thread

from anchorflow.config.project import Project
from anchorflow.warehouse import Warehouse

if TYPE_CHECKING:
    from anchorflow.run.pipeline import Pipeline
    from anchorflow.serve.runs import Runner

T = TypeVar("T")
READERS = 4


class WebContext:
    def __init__(
        self,
        project: Project,
        warehouse: Warehouse,
        runner: Runner | None = None,
        readers: int = READERS,
    ) -> None:
        self.project = project
        self.warehouse = warehouse
        self.runner = runner
        self.readers = readers
        self._cursors: queue.Queue[tuple[Warehouse, int]] = queue.Queue()
        self._opened = 0

    def open(self) -> None:
        """The reader cursors, made now (the server's startup)."""
        for _ in range(self.readers - self._opened):
            self._cursors.put(self._new_cursor())
            self._opened += 1

    def _new_cursor(self) -> tuple[Warehouse, int]:
        opens = self.warehouse.opens
        return self.warehouse.worker(), opens

    def close(self) -> None:
        """Close the cursors (those of reads still in flight are left to the connection)."""
        while self._opened:
            try:
                cursor, _ = self._cursors.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(Exception):
                cursor.close()
            self._opened -= 1

    async def read(self, fn: Callable[[Warehouse], T]) -> T:
        """`fn(warehouse)` in a worker thread, on a cursor of its own."""
        return await to_thread.run_sync(self._read, fn)

    async def write(self, fn: Callable[[Warehouse], T]) -> T:
        """`fn(warehouse)` in one transaction of a reader's cursor: a small change of the
        journal (an acknowledgement), beside the runs' own transactions."""
        return await to_thread.run_sync(self._write, fn)

    def _write(self, fn: Callable[[Warehouse], T]) -> T:
        with self._cursor() as cursor, cursor.transaction():
            return fn(cursor)

    def _read(self, fn: Callable[[Warehouse], T]) -> T:
        with self._cursor() as cursor:
            return fn(cursor)

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Warehouse]:
        if not self._opened:
            self.open()
        cursor, opens = self._cursors.get()
        try:
            if opens != self.warehouse.opens:  # reopened since (a compaction): a new cursor
                with contextlib.suppress(Exception):
                    cursor.close()
                cursor, opens = self._new_cursor()
            yield cursor
        finally:
            self._cursors.put((cursor, opens))

    def pipeline(self, warehouse: Warehouse) -> Pipeline:
        """The façade over a reader's cursor, for its typed reads (`status`, `describe_model`)."""
        from anchorflow.run.pipeline import Pipeline

        return Pipeline(self.project, warehouse=warehouse)

    @property
    def has_fraud(self) -> bool:
        return self.project.fraud.configured
