"""The stage step: typed staging rows from raw, for the loads the transfer log does not hold.

- `pending`: per model, the committed loads it has not typed (from the journal);
- `run`: type them, model by model, in batches whose thresholds are met;
- `type_window`: type one window inside its load transaction (the usual case: the batch is in
  memory, so raw is not read back);
- `remove`: take loads back out of staging and its journal (rows, transfer log, type errors,
  the records typing set aside, statistics), so the next run types them again;
- `set_aside_keys` / `restore_keys`: around a replacement, re-type from raw the events whose
  kept copy was in a replaced load but that another load also holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from anchorflow.config.project import Project
from anchorflow.journal.field_stats import delete_field_stats
from anchorflow.journal.quarantine import delete_quarantined
from anchorflow.journal.transfers import Pending, delete_transfers, last_typed_at
from anchorflow.journal.type_errors import delete_type_errors
from anchorflow.stage.batch import BATCH, BadValues, Staged, typed_batch
from anchorflow.stage.runner import (
    ModelRun,
    consume_empty,
    pending_loads,
    restage_keys,
    stage_pending,
    type_loads,
    waiting_reason,
)
from anchorflow.warehouse import Warehouse, ident, table


class StageStep:
    name = "stage"

    def __init__(
        self,
        project: Project,
        clock: Callable[[], datetime],
        models: Sequence[str] | None = None,
        force: bool = False,
    ) -> None:
        """`clock` is the real time: thresholds compare load and typing times with it."""
        self.project = project
        self.clock = clock
        self.models = list(project.staging) if models is None else list(models)
        self.force = force

    def pending(self, warehouse: Warehouse) -> dict[str, list[Pending]]:
        found = {name: pending_loads(warehouse, self.project, name) for name in self.models}
        return {name: loads for name, loads in found.items() if loads}

    def run(self, warehouse: Warehouse) -> list[ModelRun]:
        return stage_pending(warehouse, self.project, self.models, self.clock(), self.force)

    def type_window(
        self, warehouse: Warehouse, source: str, stream: str, load_id: int, rows: int,
        records: str, window_start: datetime | None = None,
    ) -> tuple[Staged, list[str]]:  # fmt: skip
        """Type a window, in its load transaction, into each model fed by its stream whose
        thresholds are met by this load and that has nothing older waiting: that is the usual
        case, and typing the in-flight batch (`records`) saves reading raw back. The others
        are left to `run`, which reads raw. An empty window is typed by every model: it has
        nothing to wait for. Returns what was staged, and the models typed."""
        results, typed = [], []
        now = self.clock()
        for name in self.project.models_of_stream(source, stream):
            if not rows:  # nothing to type: never left waiting (see `consume_empty`)
                consume_empty(warehouse, name, [load_id])
                typed.append(name)
                continue
            model = self.project.staging[name]
            this = Pending(load_id, rows, now, window_start)
            # An older load with rows waits: typing this one first could keep a later copy of
            # an event. Empty loads hold nothing to keep.
            older = any(p.rows for p in pending_loads(warehouse, self.project, name))
            if older or waiting_reason(model, [this], last_typed_at(warehouse, name), now):
                continue
            try:
                staged, _ = type_loads(warehouse, self.project, name, [this], stream, records)
            except BadValues:  # left untyped: `run` reports it, raw still lands
                continue
            results.append(staged)
            typed.append(name)
        total = Staged(
            sum(r.rows for r in results),
            sum(r.quarantined for r in results),
            sum(r.type_errors for r in results),
        )
        return total, typed

    def type_stream(self, warehouse: Warehouse, source: str, stream: str) -> list[ModelRun]:
        """Type what the stream's models have pending (from raw, each batch in a transaction of
        its own), as `run` does: right after a window landed in parts, so that the windows after
        it are typed in their own transactions instead of waiting behind it. A model whose
        policy fails the batch is left for `run`, which reports it."""
        models = self.project.models_of_stream(source, stream)
        try:
            return stage_pending(warehouse, self.project, models, self.clock(), self.force)
        except BadValues:
            return []

    def remove(
        self, warehouse: Warehouse, load_ids: Sequence[int], models: Sequence[str] | None = None
    ) -> dict[str, int]:
        """Delete the loads' staging rows (from `models`, every model by default) and what the
        journal holds of their typing; the next run types them again from raw."""
        ids = list(load_ids)
        counts: dict[str, int] = {}
        for name in self.project.staging if models is None else models:
            if warehouse.table_exists("staging", name):
                counts[f"staging.{name}"] = warehouse.insert(
                    f"DELETE FROM {table('staging', name)} WHERE list_contains(?, load_id)", [ids]
                )
        delete_transfers(warehouse, ids)
        delete_type_errors(warehouse, ids)
        delete_quarantined(warehouse, ids, stage="stage")
        delete_field_stats(warehouse, ids)
        return {k: v for k, v in counts.items() if v}

    def set_aside_keys(
        self, warehouse: Warehouse, models: Sequence[str], load_ids: Sequence[int]
    ) -> dict[str, str]:
        """Before the loads are removed: per model, a temp table of the unique keys they hold."""
        kept = {}
        for index, name in enumerate(models):
            keys = self.project.staging[name].key_columns
            if not keys or not warehouse.table_exists("staging", name):
                continue
            keys_table = ident(f"__replaced_keys_{index}")
            warehouse.execute(f"DROP TABLE IF EXISTS {keys_table}")  # (parameters: one each)
            warehouse.execute(
                f"CREATE TEMP TABLE {keys_table} AS SELECT "
                f"{', '.join(ident(k) for k in keys)} "
                f"FROM {table('staging', name)} WHERE list_contains(?, load_id)",
                [list(load_ids)],
            )
            kept[name] = keys_table
        return kept

    def restore_keys(
        self, warehouse: Warehouse, kept: dict[str, str], load_id: int, records: str,
        typed: Sequence[str],
    ) -> int:  # fmt: skip
        """After the replacement `load_id` is landed: stage from raw the set-aside keys that
        staging lacks and the replacement does not hold (their surviving copy is in another
        load). A model the window did not type (its thresholds wait) has the replacement's
        keys read from the in-flight `records`, so they are not taken from older loads."""
        restored = 0
        for name, keys_table in kept.items():
            keys = [ident(k) for k in self.project.staging[name].key_columns]
            if name not in typed:
                self._forget_kept_keys(warehouse, name, keys_table, load_id, records)
            same = " AND ".join(f"s.{k} = k.{k}" for k in keys)
            missing = warehouse.scalar(
                f"SELECT count(*) FROM {keys_table} AS k WHERE NOT EXISTS "
                f"(SELECT 1 FROM {table('staging', name)} AS s WHERE {same})"
            )
            if missing:  # rare: only then read all of raw for them
                restored += restage_keys(warehouse, self.project, name, keys_table)
            warehouse.execute(f"DROP TABLE {keys_table}")
        return restored

    def _forget_kept_keys(
        self, warehouse: Warehouse, name: str, keys_table: str, load_id: int, records: str
    ) -> None:
        """Drop from `keys_table` the keys that the replacement load holds for the model."""
        keys = [ident(k) for k in self.project.staging[name].key_columns]
        same = " AND ".join(f"n.{k} = k.{k}" for k in keys)
        with typed_batch(warehouse, self.project, name, [load_id], records):
            warehouse.execute(
                f"DELETE FROM {keys_table} AS k WHERE EXISTS (SELECT 1 FROM {BATCH} AS n "
                f"WHERE {same})"
            )
