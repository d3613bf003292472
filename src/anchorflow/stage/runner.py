"""When staging runs, and what it records: the transfer log and the thresholds.

The transfer log (`journal.transfers`) holds, per raw load and model, that the load is typed.
A batch of loads is typed in one transaction: its staging rows, type errors, quarantine rows,
transfer rows, field statistics and drift events commit together. A batch that failed half-way
left nothing; a rerun skips what is in the log and types the rest. A model's staging runs when
at least `min_rows` untyped rows have accumulated or `max_age` has passed since its last run (or
since its oldest untyped load), taking whole loads up to `batch_rows` rows per batch.

A load without rows (an hour with no data) is typed as soon as it is seen, whatever the
thresholds: there is nothing to stage and nothing to sample, so it is recorded in the transfer
log alone. An empty load never waits, and so never keeps later loads from being typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from anchorflow.config.project import Project
from anchorflow.config.staging import StagingModel
from anchorflow.crashpoints import crash_point
from anchorflow.journal.quarantine import delete_quarantined
from anchorflow.journal.transfers import (
    Pending,
    last_typed_at,
    next_batch_id,
    record_transfers,
    typed_loads,
)
from anchorflow.journal.transfers import pending_loads as journal_pending_loads
from anchorflow.journal.type_errors import delete_type_errors
from anchorflow.stage.batch import BATCH, BadValues, Staged, stage_batch, typed_batch
from anchorflow.stage.drift import detect_drift, record_events
from anchorflow.stage.stats import record_field_stats
from anchorflow.warehouse import Warehouse, table


@dataclass
class ModelRun:
    """What one `stage` pass did for one model."""

    model: str
    loads: int = 0
    batches: int = 0
    rows: int = 0
    quarantined: int = 0
    type_errors: int = 0
    events: int = 0
    waiting: str | None = None  # why pending loads were left for later
    pending_rows: int = 0
    timings: list[float] = field(default_factory=list)


def pending_loads(warehouse: Warehouse, project: Project, name: str) -> list[Pending]:
    """Committed loads of the model's stream that the transfer log does not hold, oldest first."""
    model = project.staging[name]
    return journal_pending_loads(warehouse, model.source, project.stream_of(model), name)


def consume_empty(warehouse: Warehouse, name: str, load_ids: Sequence[int]) -> None:
    """Record loads without rows as typed by the model, in one batch of their own: no staging
    rows, and no field statistics (an empty sample would read as every field vanishing)."""
    record_transfers(warehouse, name, table("staging", name), load_ids, next_batch_id(warehouse))


def waiting_reason(
    model: StagingModel, pending: Sequence[Pending], last: datetime | None, now: datetime
) -> str | None:
    """None when the model's thresholds say stage now; else why it waits."""
    rows = sum(p.rows for p in pending)
    if rows >= model.thresholds.min_rows:
        return None
    age = model.thresholds.max_age
    since = last or min(p.loaded_at for p in pending)
    if age is not None and now - since >= age:
        return None
    more = f" or at {since + age:%Y-%m-%d %H:%M} UTC (max_age)" if age is not None else ""
    starts = model.thresholds.min_rows
    return f"{rows:,} untyped rows; a batch starts at {starts:,} (min_rows){more}"


def batches_of(pending: Sequence[Pending], batch_rows: int) -> list[list[Pending]]:
    """Whole loads, oldest first, up to `batch_rows` rows per batch (a larger load goes alone)."""
    batches: list[list[Pending]] = []
    current: list[Pending] = []
    size = 0
    for load in pending:
        if current and size + load.rows > batch_rows:
            batches.append(current)
            current, size = [], 0
        current.append(load)
        size += load.rows
    if current:
        batches.append(current)
    return batches


def clear_partial(warehouse: Warehouse, name: str, load_ids: Sequence[int]) -> None:
    """Remove whatever typing of these loads left behind (only engines without transactions
    can leave anything, but it costs little to be sure)."""
    ids = list(load_ids)
    warehouse.execute(
        f"DELETE FROM {table('staging', name)} WHERE list_contains(?, load_id)", [ids]
    )
    delete_type_errors(warehouse, ids, model=name)
    delete_quarantined(warehouse, ids, model=name)


def type_loads(
    warehouse: Warehouse,
    project: Project,
    name: str,
    loads: Sequence[Pending],
    stream: str,
    records: str | None = None,
) -> tuple[Staged, int]:
    """Type `loads` into staging.<name> and record it; call inside the batch's transaction.

    Returns what was staged and how many new schema events were recorded.
    """
    load_ids = [p.load_id for p in loads]
    batch_id = next_batch_id(warehouse)
    model = project.staging[name]
    with typed_batch(warehouse, project, name, load_ids, records, sample=True) as columns:
        staged = stage_batch(warehouse, project, name, columns)
        record_field_stats(warehouse, model, name, BATCH, columns, load_ids, batch_id)
    record_transfers(warehouse, name, table("staging", name), load_ids, batch_id)
    at = max((p.window_start for p in loads if p.window_start is not None), default=None)
    events = detect_drift(warehouse, project, name, batch_id, load_ids, records, at)
    added = record_events(warehouse, stream, events, load_ids[-1])
    return staged, added


def stage_pending(
    warehouse: Warehouse,
    project: Project,
    names: Sequence[str],
    now: datetime,
    force: bool = False,
) -> list[ModelRun]:
    """Type what the transfer log does not hold yet, for each model whose thresholds are met.

    A model whose batch fails (a bad value under `fail`) does not keep the others from being
    typed; the first failure is raised once every model had its turn.
    """
    runs = []
    failures: list[BadValues] = []
    for name in names:
        try:
            runs.append(_stage_model(warehouse, project, name, now, force))
        except BadValues as error:
            failures.append(error)
            runs.append(ModelRun(name, waiting=f"failed: {error}"))
    if failures:
        others = f" ({len(failures) - 1} other model(s) failed too)" if len(failures) > 1 else ""
        raise BadValues(f"{failures[0]}{others}")
    return runs


def _stage_model(
    warehouse: Warehouse,
    project: Project,
    name: str,
    now: datetime,
    force: bool,
) -> ModelRun:
    model = project.staging[name]
    run = ModelRun(name)
    pending = pending_loads(warehouse, project, name)
    empty = [p.load_id for p in pending if not p.rows]
    if empty:  # typed whatever the thresholds: they must not hold the model back
        with warehouse.transaction():
            consume_empty(warehouse, name, empty)
        run.loads, run.batches = len(empty), 1
        pending = [p for p in pending if p.rows]
    if not pending:
        return run
    run.pending_rows = sum(p.rows for p in pending)
    reason = None if force else waiting_reason(model, pending, last_typed_at(warehouse, name), now)
    if reason:
        run.waiting = reason
        return run
    for batch in batches_of(pending, model.thresholds.batch_rows):
        load_ids = [p.load_id for p in batch]
        with warehouse.transaction():
            clear_partial(warehouse, name, load_ids)
            staged, added = type_loads(warehouse, project, name, batch, project.stream_of(model))
            crash_point("stage_before_commit")
        crash_point("stage_after_commit")
        run.loads += len(batch)
        run.batches += 1
        run.rows += staged.rows
        run.quarantined += staged.quarantined
        run.type_errors += staged.type_errors
        run.events += added
    return run


def restage_keys(warehouse: Warehouse, project: Project, name: str, keys_table: str) -> int:
    """Stage, from all of raw, the records whose unique key is in `keys_table` and that staging
    lacks (after a backfill replaced the load holding their kept copy)."""
    # Only loads this model has typed: a pending load is typed, with its policy, in its turn.
    typed = typed_loads(warehouse, name)
    if not typed:
        return 0
    with typed_batch(warehouse, project, name, typed) as columns:
        return stage_batch(warehouse, project, name, columns, keys_from=keys_table).rows
