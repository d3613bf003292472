"""The window commit: a window's records landed, typed, journaled and its cursor moved, in one
transaction.

The window's earlier loads (a backfill, a re-delivered file) are removed from every layer, its
records (but those of people `forget` erased) are landed in raw, typed into the staging models
that can take them now, recorded as a load, and the source's cursor moves, all in one commit.
A crash anywhere leaves the warehouse as it was before the window; the rerun redoes exactly it.

A window that comes in parts (larger than its source's `max_part_bytes`) is landed part by part
in that one transaction, as one load, holding one part at a time; it is typed right after its
commit by the stage step, which reads it back from raw in the engine (in a transaction of its
own: a typing failure cannot take the landed window back), so the windows after it do not wait.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from itertools import chain

from anchorflow.config.project import Project
from anchorflow.crashpoints import crash_point
from anchorflow.errors import WarehouseError
from anchorflow.journal import utcnow
from anchorflow.journal.cursors import read_cursor, write_cursor
from anchorflow.journal.launches import record_launches
from anchorflow.journal.loads import LoadRecord, committed_loads, next_load_id, record_load
from anchorflow.land import Landed, land_batch, landed_records, raw_table_name
from anchorflow.land.raw import set_aside_nul
from anchorflow.land.step import WindowResult, journal_view
from anchorflow.land.suppress import (
    drop_suppressed,
    drop_suppressed_rejected,
    release_suppressed,
)
from anchorflow.run.removal import Steps, replace_loads
from anchorflow.sources.base import RECORD_SCHEMA, LandBatch, Source
from anchorflow.stage.batch import Staged
from anchorflow.stage.drift import detect_new_models, record_events
from anchorflow.warehouse import Warehouse, table

log = logging.getLogger(__name__)
BATCH_VIEW = "__anchorflow_batch"


class _TypingFailed(Exception):
    """The engine failed while typing a window in its load transaction (then rolled back)."""


class WindowCommit:
    """Commits the windows of one source, one transaction each."""

    def __init__(
        self,
        warehouse: Warehouse,
        project: Project,
        source: Source,
        steps: Steps,
        run_id: int | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.project = project
        self.source = source
        self.steps = steps
        self.run_id = run_id  # the command committing (a journal run), recorded in each load
        self._salt = project.pii_salt.get_secret_value() if project.pii_salt else None

    def __call__(self, batch: LandBatch, parts: Iterator[LandBatch] | None = None) -> WindowResult:
        """Commit the window (`batch`, and its later `parts` when it comes in parts); when its
        typing fails in the engine, commit it untyped: raw must land whatever the mapping does,
        and the stage step reports the error (and types the window once the mapping is
        fixed)."""
        try:
            result = self.commit_parts(batch, parts) if parts is not None else self.commit(batch)
        except _TypingFailed as failed:
            if parts is not None:  # parts are typed by the stage step: nothing to fall back on
                raise WarehouseError(str(failed)) from failed.__cause__
            log.warning("%s: typing failed (%s); landing it untyped", batch.origin, failed)
            try:
                result = self.commit(batch, type_in_window=False)
            except _TypingFailed as again:  # restoring replaced keys failed too: nothing landed
                raise WarehouseError(str(again)) from again.__cause__
        if parts is not None:  # typed from raw now: the next windows need not wait behind it
            with _timed(result.timings, "stage"):
                self.steps.stage.type_stream(self.warehouse, batch.source, batch.stream)
        if result.note:
            log.warning("%s %s: %s", batch.source, batch.window.key, result.note)
        log.info(
            "%s %s: %d rows, %d files, %d quarantined, %d staged; %s",
            batch.source, batch.window.key, result.rows, result.files, result.quarantined,
            result.staged, " ".join(f"{k}={v:.3f}s" for k, v in result.timings.items()),
        )  # fmt: skip
        return result

    def commit(self, batch: LandBatch, type_in_window: bool = True) -> WindowResult:
        """Replace, land, stage, journal and move the cursor in a single transaction.

        An engine error while typing raises `_TypingFailed` (the transaction is rolled back).
        """
        started_at = utcnow()
        timings = dict(batch.timings)
        wh = self.warehouse
        window = batch.window
        batch = set_aside_nul(wh, batch)
        with wh.transaction():
            replaced, kept, load_id = self._replace(batch, timings)
            with wh.registered(BATCH_VIEW, batch.records) as batch_view:
                with _timed(timings, "land"):
                    landed, view, suppressed, lines = self._land(batch, load_id, batch_view)
                crash_point("after_land")
                staged, restored, typed = Staged(0, 0, 0), 0, list[str]()
                with _timed(timings, "stage"):
                    records = landed_records(wh.sql, view, load_id, landed, batch)
                    try:
                        if type_in_window:
                            staged, typed = self._type(batch, load_id, landed.rows, records)
                        restored = self.steps.stage.restore_keys(wh, kept, load_id, records, typed)
                    except WarehouseError as error:
                        raise _TypingFailed(str(error)) from error
                if suppressed:
                    release_suppressed(wh)
            crash_point("after_stage")
            load = LoadRecord(
                load_id, batch.source, batch.stream, window.key, window.start, window.end,
                batch.origin, batch.files, landed.rows, batch.bytes,
                landed.quarantined + staged.quarantined, staged.rows + restored,
                staged.type_errors, started_at, batch.note, suppressed + lines, self.run_id,
            )  # fmt: skip
            record_load(wh, load)
            record_launches(wh, batch.launches, load_id)
            self._advance(batch, load_id)
            crash_point("before_commit")
        crash_point("after_commit")
        return WindowResult(**vars(load), replaced=len(replaced), timings=timings)

    def commit_parts(self, first: LandBatch, parts: Iterator[LandBatch]) -> WindowResult:
        """Land a window that comes in parts, one part at a time, as one load in a single
        transaction with its journal and cursor. Its models are typed by the stage step."""
        started_at = utcnow()
        timings: dict[str, float] = {}
        wh = self.warehouse
        window = first.window
        with wh.transaction():
            replaced, kept, load_id = self._replace(first, timings)
            rows = quarantined = files = size = suppressed = 0
            for whole in chain([first], parts):
                part = set_aside_nul(wh, whole)
                for step, seconds in part.timings.items():
                    timings[step] = timings.get(step, 0.0) + seconds
                with (
                    wh.registered(BATCH_VIEW, part.records, release=True) as batch_view,
                    _timed(timings, "land"),
                ):
                    landed, _, dropped, lines = self._land(part, load_id, batch_view)
                    if dropped:
                        release_suppressed(wh)
                suppressed += dropped + lines
                # Landed: whoever still holds the batch (the caller, the source) holds no text.
                whole.records, whole.rejected = RECORD_SCHEMA.empty_table(), []
                part.records, part.rejected = whole.records, []
                rows, quarantined = rows + landed.rows, quarantined + landed.quarantined
                files, size = files + part.files, size + part.bytes
            crash_point("after_land")
            with _timed(timings, "stage"):
                raw = table("raw", raw_table_name(first.source, first.stream))
                records = (
                    f"(SELECT load_id, origin, line_no, record FROM {raw} "
                    f"WHERE load_id = {int(load_id)})"  # a relation its readers alias
                )
                restored = self.steps.stage.restore_keys(wh, kept, load_id, records, [])
                events = detect_new_models(
                    wh, self.project, first.source, first.stream, load_id, records
                )
                record_events(wh, first.stream, events, load_id)
            crash_point("after_stage")
            load = LoadRecord(
                load_id, first.source, first.stream, window.key, window.start, window.end,
                first.origin, files, rows, size, quarantined, restored, 0, started_at,
                first.note, suppressed, self.run_id,
            )  # fmt: skip
            record_load(wh, load)
            record_launches(wh, first.launches, load_id)
            self._advance(first, load_id)
            crash_point("before_commit")
        crash_point("after_commit")
        return WindowResult(**vars(load), replaced=len(replaced), timings=timings)

    def _replace(
        self, batch: LandBatch, timings: dict[str, float]
    ) -> tuple[list[int], dict[str, str], int]:
        """Remove the window's earlier loads (a re-delivery replaces them everywhere); returns
        their ids, the keys replacing kept (see `replace_loads`), and the new load's id."""
        wh = self.warehouse
        replaced = committed_loads(wh, batch.source, batch.stream, batch.window.key)
        with _timed(timings, "replace"):
            kept = replace_loads(wh, self.project, self.steps, batch.source, batch.stream, replaced)
        return replaced, kept, next_load_id(wh)

    def _land(
        self, batch: LandBatch, load_id: int, batch_view: str
    ) -> tuple[Landed, str, int, int]:
        """Land the batch (registered as `batch_view`) but the records and set-aside lines that
        carry an erased key. Returns what landed, the relation it landed from (release the
        suppressed records after it when some were), and the records and lines dropped."""
        wh = self.warehouse
        view, records = drop_suppressed(wh, batch.source, batch.stream, batch_view, self._salt)
        rejected, lines = drop_suppressed_rejected(
            wh, batch.source, batch.stream, batch.rejected, self._salt
        )
        landed = land_batch(wh, replace(batch, rejected=rejected), load_id, view, records)
        return landed, view, records, lines

    def _type(
        self, batch: LandBatch, load_id: int, rows: int, records: str
    ) -> tuple[Staged, list[str]]:
        """Type the window into its models (returns what was staged and the models typed),
        and look for values of the model field that no model claims (new models)."""
        wh = self.warehouse
        staged, typed = self.steps.stage.type_window(
            wh, batch.source, batch.stream, load_id, rows, records, batch.window.start
        )
        events = detect_new_models(wh, self.project, batch.source, batch.stream, load_id, records)
        record_events(wh, batch.stream, events, load_id)
        return staged, typed

    def _advance(self, batch: LandBatch, load_id: int) -> None:
        """Move the cursor as the source says, in the window's transaction."""
        wh = self.warehouse
        cursor = read_cursor(wh, batch.source, batch.stream)
        loaded = journal_view(wh, batch.source)
        moved = self.source.cursor_after(batch.window, cursor, loaded)
        if moved is not None:
            write_cursor(wh, batch.source, batch.stream, moved, load_id)


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[step] = timings.get(step, 0.0) + time.perf_counter() - started
