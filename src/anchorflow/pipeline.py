"""The façade: everything the CLI (and later the web app) can ask of a project.

`Pipeline.run` loads what is due from each source, one window per transaction: the window's
previous load (if a backfill or rerun replaces it) is removed, its records are landed in raw,
typed into staging, recorded in `meta.loads`, and the watermark moves, all in one commit. A crash
anywhere leaves the warehouse as it was before that window; the rerun redoes exactly it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from anchorflow import journal
from anchorflow.alerts import Alert, AlertSender
from anchorflow.anchor import describe as anchor_describe
from anchorflow.anchor import erase as anchor_erase
from anchorflow.anchor import query as anchor_query
from anchorflow.anchor.ddl import ensure_tables
from anchorflow.anchor.load import AnchorRun, TargetRun, load_anchor, workers
from anchorflow.anchor.plan import AnchorPlan, build_plan
from anchorflow.anchor.views import create_views
from anchorflow.crashpoints import crash_point
from anchorflow.errors import ConfigError, IntegrityError, WarehouseError
from anchorflow.land import land_batch, landed_records, raw_table_name
from anchorflow.marts import BuiltMart, build_marts
from anchorflow.project import AmplitudeSource, Project, format_hour
from anchorflow.sources.amplitude import HOUR, AmplitudeExport, due_hours, last_available_hour
from anchorflow.sources.base import LandBatch
from anchorflow.stage import (
    BadValues,
    ModelRun,
    Pending,
    Staged,
    inspect,
    models_of_stream,
    pending_loads,
    prepare_tables,
    restage_keys,
    stage_pending,
    type_loads,
    waiting_reason,
)
from anchorflow.stage.drift import detect_new_models, record_events, send_pending_alerts
from anchorflow.stage.runner import last_typed_at
from anchorflow.warehouse import Warehouse, connect, ident, table

log = logging.getLogger(__name__)


class _TypingFailed(Exception):
    """The engine failed while typing a window in its load transaction (then rolled back)."""


@dataclass(frozen=True)
class WindowResult(journal.LoadRecord):
    """A committed window: its load record, how many loads it replaced, and its step timings."""

    replaced: int = 0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class RunSummary:
    windows: list[WindowResult] = field(default_factory=list)
    staging: list[ModelRun] = field(default_factory=list)
    anchor: AnchorRun | None = None
    marts: list[BuiltMart] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(w.rows for w in self.windows)

    @property
    def quarantined(self) -> int:
        return sum(w.quarantined for w in self.windows)

    @property
    def staged(self) -> int:
        return sum(w.staged for w in self.windows)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


class Reporter(Protocol):
    """Where the façade tells what it is doing; the CLI draws progress bars from it."""

    def windows_planned(self, source: str, count: int) -> None: ...

    def window_done(self, result: WindowResult) -> None: ...

    def anchor_planned(self, tables: int) -> None: ...

    def anchor_table_done(self, run: TargetRun) -> None: ...


class SilentReporter:
    def windows_planned(self, source: str, count: int) -> None:
        pass

    def window_done(self, result: WindowResult) -> None:
        pass

    def anchor_planned(self, tables: int) -> None:
        pass

    def anchor_table_done(self, run: TargetRun) -> None:
        pass


class Pipeline:
    def __init__(
        self,
        project: Project,
        reporter: Reporter | None = None,
        now: datetime | None = None,
        clock: Callable[[], datetime] = journal.utcnow,
    ) -> None:
        """`now` decides which hours are due (`--now` replays); `clock` is the real time that
        load and typing times are recorded in, and that staging thresholds compare with."""
        self.project = project
        self.reporter = reporter or SilentReporter()
        self.now = now or journal.utcnow()
        self.clock = clock
        self.warehouse: Warehouse = connect(project)
        self.plan: AnchorPlan = build_plan(project)
        self._anchor_ready = False
        try:
            journal.ensure_journal(self.warehouse)
        except BaseException:
            self.warehouse.close()  # release the file lock
            raise

    def close(self) -> None:
        self.warehouse.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands -------------------------------------------------------------------------------

    def run(self, sources: Sequence[str] = (), marts: bool = True) -> RunSummary:
        """Load every due window of the named sources (all when none are named), then marts."""
        summary = RunSummary()
        started = time.perf_counter()
        with self._recorded_run("run " + " ".join(sources)):
            self._prepare_anchor()
            for name in self._select_sources(sources):
                config = self.project.sources[name]
                # Also when nothing is due: a staging table dropped to retype it comes back.
                prepare_tables(self.warehouse, self.project, name, config.stream)
                first = journal.watermark(self.warehouse, name, config.stream) or config.start
                hours = due_hours(first, self.now, config.availability_delay)
                summary.windows += self._load_hours(name, config, hours)
            summary.staging = self._stage_due(self._models_of(sources))
            summary.anchor = self._anchor_due()
            if marts:
                summary.marts = build_marts(self.warehouse, self.project)
        summary.seconds = time.perf_counter() - started
        return summary

    def backfill(self, source: str, start: datetime, end: datetime) -> RunSummary:
        """Reload hours `start`..`end` (inclusive); each replaces its earlier load, if any."""
        (name,) = self._select_sources([source])
        config = self.project.sources[name]
        last = last_available_hour(self.now, config.availability_delay)
        if end < start:
            raise ConfigError([f"backfill: --end {format_hour(end)} is before --start"])
        if end > last:
            raise ConfigError(
                [
                    f"backfill: hour {format_hour(end)} is not available yet; the last closed, "
                    f"available hour is {format_hour(last)}"
                ]
            )
        hours = [start + timedelta(hours=i) for i in range(int((end - start) / HOUR) + 1)]
        summary = RunSummary()
        began = time.perf_counter()
        with self._recorded_run(f"backfill {name} {format_hour(start)} {format_hour(end)}"):
            self._prepare_anchor()
            summary.windows = self._load_hours(name, config, hours)
            summary.staging = self._stage_due(self._models_of([name]))
            summary.anchor = self._anchor_due()
            summary.marts = build_marts(self.warehouse, self.project)
        summary.seconds = time.perf_counter() - began
        return summary

    def build_marts(self) -> list[BuiltMart]:
        return build_marts(self.warehouse, self.project)

    def stage(self, models: Sequence[str] = (), force: bool = False) -> list[ModelRun]:
        """Type every model's untyped loads whose thresholds are met (all of them with force)."""
        names = self._select_models(models)
        with self._recorded_run("stage " + " ".join(models)):
            for name in {self.project.staging[m].source for m in names}:
                config = self.project.sources[name]
                prepare_tables(self.warehouse, self.project, name, config.stream)
            runs = self._stage_due(names, force)
            self._anchor_due()
            return runs

    def anchor(self) -> AnchorRun:
        """Load every typed load that the anchor model does not hold yet."""
        with self._recorded_run("anchor"):
            return self._anchor_due() or AnchorRun()

    def _prepare_anchor(self) -> None:
        """Create what the declaration added (tables, perspectives); stop on what needs a
        migration. Done by the commands that touch the anchor model, not by `status` and co."""
        if self.plan.entities and not self._anchor_ready:
            ensure_tables(self.warehouse, self.plan)
            create_views(self.warehouse, self.plan)
            self._anchor_ready = True

    def _anchor_due(self) -> AnchorRun | None:
        if not self.plan.entities:
            return None
        self._prepare_anchor()
        self.reporter.anchor_planned(
            len(self.plan.entities) + len(self.plan.knots) + len(self.plan.targets)
        )
        parallel = workers(self.warehouse, self.project.anchor.workers)
        result = load_anchor(
            self.warehouse, self.plan, self.clock(), parallel, self.reporter.anchor_table_done,
            verify_history=self.project.anchor.verify == "history",
        )  # fmt: skip
        if result.problems:
            alert = Alert(
                "anchor_integrity",
                f"anchor model: {len(result.problems)} table(s) failed their integrity check",
                {"problems": result.problems[:10]},
            )
            AlertSender(self.project, self.warehouse).send(alert)
            raise IntegrityError(
                f"{result.problems[0]} (the table's load was rolled back; "
                f"{len(result.problems)} table(s) failed in all)"
            )
        return result

    def rollback(self, load_id: int) -> dict[str, int]:
        """Remove a load from every layer above raw; the next run types and anchors it again."""
        with self._recorded_run(f"rollback {int(load_id)}"):
            self._prepare_anchor()
            counts = anchor_erase.rollback(self.warehouse, self.project, self.plan, load_id)
            build_marts(self.warehouse, self.project)
            return counts

    def forget(self, entity: str, key: Sequence[str]) -> dict[str, int]:
        """Erase an entity everywhere; the run log names the entity, never the key."""
        with self._recorded_run(f"forget {entity}"):
            self._prepare_anchor()
            counts = anchor_erase.forget(self.warehouse, self.project, self.plan, entity, list(key))
            build_marts(self.warehouse, self.project)
            self.warehouse.execute("CHECKPOINT")
            return counts

    def query(
        self,
        entity: str,
        attributes: Sequence[str] | None,
        ties: Sequence[str] = (),
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> Any:
        """An entity with only the chosen attributes and ties, now or as of `as_of` (Arrow)."""
        self._prepare_anchor()
        return anchor_query.run_query(
            self.warehouse, self.plan, entity,
            list(attributes) if attributes is not None else None, list(ties), as_of, limit,
        )  # fmt: skip

    def describe_model(self) -> list[anchor_describe.TableInfo]:
        self._prepare_anchor()
        return anchor_describe.describe(self.warehouse, self.plan)

    def _stage_due(self, names: Sequence[str], force: bool = False) -> list[ModelRun]:
        def alerts() -> None:
            send_pending_alerts(self.warehouse, self.project)

        # Thresholds compare load and typing times, which are the real clock's (not --now's).
        runs = stage_pending(self.warehouse, self.project, names, self.clock(), force, alerts)
        alerts()
        return runs

    def _select_models(self, names: Sequence[str]) -> list[str]:
        unknown = [n for n in names if n not in self.project.staging]
        if unknown:
            known = ", ".join(sorted(self.project.staging)) or "none"
            raise ConfigError([f"unknown staging model {unknown[0]!r} (models: {known})"])
        return list(names) or list(self.project.staging)

    def _models_of(self, sources: Sequence[str]) -> list[str]:
        chosen = set(sources) or set(self.project.sources)
        return [n for n, m in self.project.staging.items() if m.source in chosen]

    # -- loading --------------------------------------------------------------------------------

    def _select_sources(self, names: Sequence[str]) -> list[str]:
        unknown = [n for n in names if n not in self.project.sources]
        if unknown:
            known = ", ".join(sorted(self.project.sources)) or "none"
            raise ConfigError([f"unknown source {unknown[0]!r} (sources: {known})"])
        return list(names) or list(self.project.sources)

    def _load_hours(
        self, name: str, config: AmplitudeSource, hours: list[datetime]
    ) -> list[WindowResult]:
        self.reporter.windows_planned(name, len(hours))
        if not hours:
            return []
        prepare_tables(self.warehouse, self.project, name, config.stream)
        results = []
        export = AmplitudeExport(name, config)
        try:
            for batch in export.batches(hours):
                try:
                    result = self.commit_window(batch)
                except _TypingFailed as failed:
                    # Raw must land whatever the mapping does: commit the window untyped; the
                    # staging step after the loads reports the error, and types it once fixed.
                    log.warning("%s: typing failed (%s); landing it untyped", batch.origin, failed)
                    result = self.commit_window(batch, type_in_window=False)
                send_pending_alerts(self.warehouse, self.project)
                results.append(result)
                self.reporter.window_done(result)
                log.info(
                    "%s %s: %d rows, %d files, %d quarantined, %d staged; %s",
                    name,
                    format_hour(batch.window_start),
                    result.rows,
                    result.files,
                    result.quarantined,
                    result.staged,
                    " ".join(f"{k}={v:.3f}s" for k, v in result.timings.items()),
                )
        finally:
            export.close()
        return results

    def commit_window(self, batch: LandBatch, type_in_window: bool = True) -> WindowResult:
        """Land, stage, journal and advance one window in a single transaction.

        An engine error while typing raises `_TypingFailed` (the transaction is rolled back);
        the caller then commits the window again with `type_in_window=False`, leaving its
        typing to the staging step.
        """
        started_at = journal.utcnow()
        timings = dict(batch.timings)
        wh = self.warehouse
        with wh.transaction():
            replaced = journal.committed_loads(wh, batch.source, batch.stream, batch.window_start)
            with self._timed(timings, "replace"):
                orphans = self._remove_loads(batch, replaced)
            load_id = journal.next_load_id(wh)
            with wh.registered("__anchorflow_batch", batch.records) as view:
                with self._timed(timings, "land"):
                    landed = land_batch(wh, batch, load_id, view)
                crash_point("after_land")
                staged, restored = Staged(0, 0, 0), 0
                with self._timed(timings, "stage"):
                    records = landed_records(view, load_id, landed, batch)
                    try:
                        if type_in_window:
                            staged = self._stage_window(batch, load_id, landed.rows, records)
                            events = detect_new_models(
                                wh, self.project, batch.source, batch.stream, load_id, records
                            )
                            record_events(wh, batch.stream, events, load_id)
                        restored = self._restore_orphans(orphans)
                    except WarehouseError as error:
                        raise _TypingFailed(str(error)) from error
            crash_point("after_stage")
            load = journal.LoadRecord(
                load_id, batch.source, batch.stream, batch.window_start, batch.window_end,
                batch.origin, batch.files, landed.rows, batch.bytes,
                landed.quarantined + staged.quarantined, staged.rows + restored,
                staged.type_errors, started_at,
            )  # fmt: skip
            journal.record_load(wh, load)
            self._advance(batch, load_id)
            crash_point("before_commit")
        crash_point("after_commit")
        return WindowResult(**vars(load), replaced=len(replaced), timings=timings)

    def _stage_window(self, batch: LandBatch, load_id: int, rows: int, records: str) -> Staged:
        """Type the window, in its own transaction, into each model fed by its stream whose
        thresholds are met by this load and that has nothing older waiting: that is the usual
        case, and typing the in-flight batch saves reading raw back. The others are left to
        the staging step that follows the loads (`stage_pending`), which reads raw."""
        results = []
        now = self.clock()
        for name in models_of_stream(self.project, batch.source, batch.stream):
            model = self.project.staging[name]
            this = Pending(load_id, rows, now)
            if pending_loads(self.warehouse, self.project, name) or waiting_reason(
                model, [this], last_typed_at(self.warehouse, name), now
            ):
                continue
            try:
                staged, _ = type_loads(
                    self.warehouse, self.project, name, [this], batch.stream, records
                )
            except BadValues:  # left untyped: the staging step reports it, raw still lands
                continue
            results.append(staged)
        return Staged(
            sum(r.rows for r in results),
            sum(r.quarantined for r in results),
            sum(r.type_errors for r in results),
        )

    def _advance(self, batch: LandBatch, load_id: int) -> None:
        """Move the watermark only over a contiguous loaded prefix: never past a gap.

        After the window, it also passes hours a backfill already loaded, so the next run does
        not download them again.
        """
        config = self.project.sources[batch.source]
        current = journal.watermark(self.warehouse, batch.source, batch.stream) or config.start
        if current != batch.window_start:
            return
        position = batch.window_end
        while journal.committed_loads(self.warehouse, batch.source, batch.stream, position):
            position += HOUR
        journal.advance_watermark(self.warehouse, batch.source, batch.stream, position, load_id)

    def _remove_loads(self, batch: LandBatch, load_ids: list[int]) -> dict[str, str]:
        """Delete the rows of loads being replaced; keep the staged keys they held.

        Returns, per model, a temp table of those keys, so events whose surviving copy lives in
        another load can be staged again from raw once the replacement is staged.
        """
        if not load_ids:
            return {}
        wh = self.warehouse
        if self.plan.entities:
            self._prepare_anchor()
            models = models_of_stream(self.project, batch.source, batch.stream)
            anchor_erase.remove_loads(wh, self.plan, load_ids, reopen=models)
        orphans = {}
        for index, model in enumerate(models_of_stream(self.project, batch.source, batch.stream)):
            keys = self.project.staging[model].key_columns
            if keys:
                keys_table = ident(f"__replaced_keys_{index}")
                wh.execute(
                    f"CREATE OR REPLACE TEMP TABLE {keys_table} AS SELECT "
                    f"{', '.join(ident(k) for k in keys)} "
                    f"FROM {table('staging', model)} WHERE list_contains(?, load_id)",
                    [load_ids],
                )
                orphans[model] = keys_table
            wh.execute(
                f"DELETE FROM {table('staging', model)} WHERE list_contains(?, load_id)",
                [load_ids],
            )
        raw = table("raw", raw_table_name(batch.source, batch.stream))
        for target in (raw, "meta.quarantine", "meta.type_errors", "meta.transfers"):
            wh.execute(f"DELETE FROM {target} WHERE list_contains(?, load_id)", [load_ids])
        journal.mark_replaced(wh, load_ids)
        return orphans

    def _restore_orphans(self, orphans: dict[str, str]) -> int:
        restored = 0
        for model, keys_table in orphans.items():
            keys = [ident(k) for k in self.project.staging[model].key_columns]
            same = " AND ".join(f"s.{k} = k.{k}" for k in keys)
            missing = self.warehouse.scalar(
                f"SELECT count(*) FROM {keys_table} AS k WHERE NOT EXISTS "
                f"(SELECT 1 FROM {table('staging', model)} AS s WHERE {same})"
            )
            if missing:  # rare: only then read all of raw for them
                restored += restage_keys(self.warehouse, self.project, model, keys_table)
            self.warehouse.execute(f"DROP TABLE {keys_table}")
        return restored

    @contextmanager
    def _timed(self, timings: dict[str, float], step: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        timings[step] = timings.get(step, 0.0) + time.perf_counter() - started

    @contextmanager
    def _recorded_run(self, command: str) -> Iterator[None]:
        run_id = journal.start_run(self.warehouse, command.strip())
        try:
            yield
        except BaseException as error:
            # Recording and announcing the failure must never replace the error itself.
            with contextlib.suppress(Exception):
                journal.finish_run(self.warehouse, run_id, "failed", str(error)[:1000])
            with contextlib.suppress(Exception):
                self._alert_failure(command, error)
            raise
        journal.finish_run(self.warehouse, run_id, "ok", None)

    def _alert_failure(self, command: str, error: BaseException) -> None:
        if isinstance(error, KeyboardInterrupt):
            return  # a person stopped it; nobody needs to be paged
        alert = Alert(
            "run_failed",
            f"`anchorflow {command.strip()}` failed",
            {"error": str(error)[:500], "error_type": type(error).__name__},
        )
        AlertSender(self.project, self.warehouse).send(alert)

    # -- reading --------------------------------------------------------------------------------

    def field_stats(self, model: str) -> dict[str, Any]:
        (name,) = self._select_models([model])
        return inspect.field_stats(self.warehouse, name)

    def schema_events(self, everything: bool = False) -> list[tuple[Any, ...]]:
        return inspect.schema_events(self.warehouse, everything)

    def acknowledge(self, event_ids: Sequence[int]) -> int:
        return inspect.acknowledge(self.warehouse, list(event_ids))

    def suggest_mapping(
        self, stream: str, model: str | None, selector: str | None, sample_percent: float
    ) -> str:
        return inspect.suggest_mapping(
            self.warehouse, self.project, stream, model, selector, sample_percent
        )

    def status(self) -> dict[str, Any]:
        wh = self.warehouse
        marks = []
        for name, config in self.project.sources.items():
            position = journal.watermark(wh, name, config.stream)
            last = last_available_hour(self.now, config.availability_delay)
            due = due_hours(position or config.start, self.now, config.availability_delay)
            marks.append(
                {
                    "source": name,
                    "stream": config.stream,
                    "watermark": format_hour(position) if position else "never loaded",
                    "lag_hours": round(
                        (self.now - (position or config.start)).total_seconds() / 3600, 1
                    ),
                    "due_hours": len(due),
                    "last_available": format_hour(last),
                }
            )
        loads = wh.query(
            "SELECT load_id, source, stream, strftime(window_start, '%Y%m%dT%H'), files, rows, "
            "quarantined, staged, status, finished_at FROM meta.loads "
            "ORDER BY load_id DESC LIMIT 10"
        )
        runs = wh.query(
            "SELECT run_id, command, status, started_at, detail FROM meta.runs "
            "ORDER BY run_id DESC LIMIT 5"
        )
        quarantined = wh.scalar("SELECT count(*) FROM meta.quarantine")
        return {"watermarks": marks, "loads": loads, "runs": runs, "quarantined": quarantined}
