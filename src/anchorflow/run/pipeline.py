"""The façade: everything the CLI (and later the web app) can ask of a project.

It orders the steps (land each source's due windows, stage, anchor, marts), records every
command in the journal with its outcome, alerts failures, and returns typed results. It holds no
SQL of its own: each step, the window commit and the journal do their own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from anchorflow.alerts import Alert, AlertSender, send_without_journal
from anchorflow.anchor.load import AnchorRun, TargetRun
from anchorflow.anchor.plan import AnchorPlan, build_plan
from anchorflow.anchor.step import AnchorStep
from anchorflow.config.project import Project
from anchorflow.dashboards.check import dashboard_problems
from anchorflow.errors import ConfigError, Terminated, WarehouseLocked, swallowed_stop
from anchorflow.fraud.step import FraudRun, FraudStep, RuleInfo, RuleRun
from anchorflow.journal import ensure_journal, utcnow
from anchorflow.journal.cursors import write_cursor
from anchorflow.journal.runs import finish_run, start_run
from anchorflow.land.step import LandStep, WindowResult

if TYPE_CHECKING:
    from anchorflow.fraud.check import FraudEvaluation
from anchorflow.marts import BuiltMart, MartsStep, binding_problems
from anchorflow.marts.data_tests import mart_tests_alert
from anchorflow.metrics.alerts import AlertCheck, check_metric_alerts
from anchorflow.metrics.check import binding_problems as metric_binding_problems
from anchorflow.publish.export import export_tables
from anchorflow.redact import shorten
from anchorflow.run.compaction import Compaction, compact, compaction_due
from anchorflow.run.queues import watch_queues
from anchorflow.run.reading import require_current_journal
from anchorflow.run.readings import Readings
from anchorflow.run.removal import Steps, forget_entity, rollback_load
from anchorflow.run.results import (
    RunSummary,
)
from anchorflow.run.runlog import log_run, timestamp
from anchorflow.run.window import WindowCommit
from anchorflow.sources.base import (
    Cursor,
    FetchContext,
    LandBatch,
    SaveCursor,
    Source,
    Window,
    clear_work_dir,
)
from anchorflow.sources.registry import open_source
from anchorflow.stage.checks import mapping_problems
from anchorflow.stage.drift import send_pending_alerts
from anchorflow.stage.runner import ModelRun
from anchorflow.stage.step import StageStep
from anchorflow.stage.tables import prepare_tables
from anchorflow.warehouse import Warehouse, connect, connect_scratch


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


def check_project(project: Project) -> None:
    """The checks of `validate` that need the engine, on an empty scratch warehouse of the
    project's engine: the project's own warehouse is not opened. Every table the project
    makes is created there, empty, and every mart is bound over them."""
    with connect_scratch(project) as scratch:
        problems = mapping_problems(scratch, project)
        if not problems:
            ensure_journal(scratch)
            for source, stream in project.streams():
                prepare_tables(scratch, project, source, stream)
            AnchorStep(project, build_plan(project), utcnow).prepare(scratch)
            problems = binding_problems(scratch, project)
            problems += metric_binding_problems(scratch, project)
            if project.fraud.configured:
                problems += FraudStep(project).problems(scratch)
            problems += dashboard_problems(scratch, project)
    if problems:
        raise ConfigError(problems)


class Pipeline(Readings):
    def __init__(
        self,
        project: Project,
        reporter: Reporter | None = None,
        now: datetime | None = None,
        clock: Callable[[], datetime] = utcnow,
        read_only: bool = False,
        warehouse: Warehouse | None = None,
    ) -> None:
        """`now` decides which windows are due (`--now` replays); `clock` is the real time
        that load and typing times are recorded in, and that staging thresholds compare with.

        The warehouse is opened at the first statement, waiting up to `warehouse.lock_timeout`
        for another process to let go of it. `read_only` is for the commands that only read:
        the file is opened read-only, beside other readers, and never created or changed.
        `warehouse`: one already open and prepared that the caller owns (`serve`'s), used as
        it is and left open by `close`."""
        self.project = project
        self.reporter: Reporter = reporter or SilentReporter()
        self.now = now or utcnow()
        self.clock = clock
        self.read_only = read_only
        self.plan: AnchorPlan = build_plan(project)
        self.run_id: int | None = None  # the command running (in the journal's runs), in each load
        self._shared = warehouse is not None
        self._prepared = self._shared
        self.warehouse: Warehouse = warehouse or connect(
            project, read_only, lazy=True, on_open=self._prepare
        )
        self.alerts = AlertSender(project, self.warehouse, clock=clock)
        self.anchor_step = AnchorStep(
            project, self.plan, clock, self._alert_integrity, self._alert_conflicts
        )
        self.marts_step = MartsStep(project, self._alert_mart_tests)
        self.fraud_step = FraudStep(project)

    def _prepare(self, warehouse: Warehouse) -> None:
        """Run at every open of the warehouse; the first one prepares it for the command."""
        if self._prepared:
            return
        if self.read_only:
            require_current_journal(warehouse, self.project)
        else:
            ensure_journal(warehouse)
            # The warehouse is ours (its writer claim, held until we close it, also while the
            # file is let go of): no other process fetches for this project now.
            clear_work_dir(self.project.work_path)
        self._prepared = True

    def close(self) -> None:
        if not self._shared:
            self.warehouse.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading --------------------------------------------------------------------------------

    def run(self, sources: Sequence[str] = (), marts: bool = True) -> RunSummary:
        """Load every due window of the named sources (all when none are named), then stage,
        anchor and build the marts."""
        names = self._select_sources(sources)
        self._require_env("run " + " ".join(sources), names)
        with self._recorded_run("run " + " ".join(sources)) as summary:
            self._check_mapping()
            self.anchor_step.prepare(self.warehouse)
            for name in names:
                summary.windows += self._land(name)
            self._after_loads(summary, self._models_of(names), marts)
        return summary

    def backfill(self, source: str, start: str | None, end: str | None) -> RunSummary:
        """Load the source's windows from `start` to `end` again (in the source's notation,
        e.g. YYYYMMDDTHH hours); each replaces its earlier load, if any."""
        (name,) = self._select_sources([source])
        command = f"backfill {name} {start or ''} {end or ''}"
        self._require_env(command, [name])
        # A range the source refuses is the user's typo, not a failed run: checked first.
        with self._opened(name) as opened:
            windows = [
                w for stream in self.project.sources[name].streams
                for w in opened.backfill(stream, start, end, self.now)
            ]  # fmt: skip
        with self._recorded_run(command) as summary:
            self._check_mapping()
            self.anchor_step.prepare(self.warehouse)
            summary.windows = self._land(name, windows)
            self._after_loads(summary, self._models_of([name]), marts=True)
        return summary

    def stage(self, models: Sequence[str] = (), force: bool = False) -> list[ModelRun]:
        """Type every model's untyped loads whose thresholds are met (all of them with force)."""
        names = self._select_models(models)
        with self._recorded_run("stage " + " ".join(models)):
            self._check_mapping()
            for source, stream in {self._stream_of(m) for m in names}:
                prepare_tables(self.warehouse, self.project, source, stream)
            runs = self._stage(names, force)
            self._anchor()
            return runs

    def anchor(self) -> AnchorRun:
        """Load every typed load that the anchor model does not hold yet."""
        with self._recorded_run("anchor"):
            return self._anchor() or AnchorRun()

    def rebuild_serving(self) -> dict[str, int]:
        """Recompute the serving tables from the anchor tables; rows per table."""
        with self._recorded_run("anchor --rebuild-serving"):
            return self.anchor_step.rebuild_serving(self.warehouse)

    def build_marts(self, full: bool = False) -> list[BuiltMart]:
        """Build and test the marts that are due (every one, whole, with `full`)."""
        with self._recorded_run("marts build" + (" --full" if full else "")):
            return self.marts_step.run(self.warehouse, force=full)

    def test_marts(self, names: Sequence[str] = ()) -> list[BuiltMart]:
        """Run the tests of these marts (all when none are named) on what they hold now."""
        with self._recorded_run("marts test " + " ".join(names)):
            return self.marts_step.test(self.warehouse, names)

    def fraud(
        self,
        start: date | None = None,
        end: date | None = None,
        rules: Sequence[str] = (),
        on_rule: Callable[[RuleRun], None] | None = None,
    ) -> FraudRun:
        """Run the fraud rules over whole days (by default what is new since each rule's last
        run), add what they find, and replace the report views."""
        with self._recorded_run("fraud run"):
            return self.fraud_step.run(self.warehouse, start, end, rules, on_rule)

    def fraud_evaluate(self, truth: Path, rerun: bool = True) -> FraudEvaluation:
        """The fraud tables against a truth table; with `rerun`, each rule runs again over its
        last window first, and the checksums before and after show whether anything changed."""
        from anchorflow.fraud.check import evaluate_fraud

        with self._recorded_run("fraud evaluate"):
            return evaluate_fraud(self.warehouse, self.fraud_step, truth, rerun)

    def check_metric_alerts(self, force: bool = False, deliver: bool = True) -> list[AlertCheck]:
        """The alerts of `metrics:` whose data changed (all with `force`), checked now."""
        checks = check_metric_alerts(self.warehouse, self.project, self.alerts, force, self.now)
        if deliver:
            self.deliver_alerts()
        return checks

    def fraud_rules(self) -> list[RuleInfo]:
        return self.fraud_step.describe(self.warehouse)

    def rollback(self, load_id: int) -> dict[str, int]:
        """Remove a load from every layer above raw; the next run types and anchors it again."""
        with self._recorded_run(f"rollback {int(load_id)}"):
            self.anchor_step.prepare(self.warehouse)
            counts = rollback_load(self.warehouse, self.project, self._steps(), load_id)
            self.marts_step.run(self.warehouse, force=True)
            self._republish(always=False)
            return counts

    def forget(self, entity: str, key: Sequence[str]) -> dict[str, int]:
        """Erase an entity everywhere; the run log names the entity, never the key."""
        with self._recorded_run(f"forget {entity}"):
            self.anchor_step.prepare(self.warehouse)
            counts = forget_entity(self.warehouse, self.project, self.plan, entity, list(key))
            self.marts_step.run(self.warehouse, force=True)  # the erased rows leave every mart
            self._republish(always=True)  # the erased rows leave the published files too
            reclaim = self.warehouse.sql.reclaim_deleted()
            if reclaim:  # erased bytes leave the file's free blocks
                self.warehouse.execute(reclaim)
            return counts

    def compact(self) -> Compaction:
        """Rewrite the warehouse file now, applying every pending erasure request."""
        with self._recorded_run("compact"):
            return compact(self.warehouse)

    def commit_window(self, batch: LandBatch) -> WindowResult:
        """Commit one batch that was fetched elsewhere (its source must be in the project):
        land, type, journal and move the cursor, in one transaction, like any window."""
        if batch.part or not batch.last:
            raise ValueError("commit_window takes a whole window, not one of its parts")
        (name,) = self._select_sources([batch.source])
        prepare_tables(self.warehouse, self.project, name, batch.stream)
        with self._opened(name) as source:
            result = WindowCommit(self.warehouse, self.project, source, self._steps())(batch)
        self.deliver_alerts()
        return result

    def _land(self, name: str, windows: Sequence[Window] | None = None) -> list[WindowResult]:
        """Commit the source's windows (its due ones when None), stream by stream, in order."""
        config = self.project.sources[name]
        results: list[WindowResult] = []
        with self._opened(name) as source:
            commit = WindowCommit(self.warehouse, self.project, source, self._steps(), self.run_id)

            def committed(batch: LandBatch, parts: Iterator[LandBatch] | None) -> WindowResult:
                result = commit(batch, parts)
                self.reporter.window_done(result)
                return result

            context = FetchContext(self.project.work_path, self._cursor_saver(name))
            for stream in config.streams:
                # Also when nothing is due: a staging table dropped to retype it comes back.
                prepare_tables(self.warehouse, self.project, name, stream)
                step = LandStep(source, stream, committed, context, self.now)
                chosen = (
                    step.pending(self.warehouse)
                    if windows is None
                    else [w for w in windows if w.stream == stream]
                )
                self.reporter.windows_planned(name, len(chosen))
                if chosen:
                    results += step.run(self.warehouse, chosen)
            watch_queues(self.warehouse, source, self.alerts, self.clock())
        return results

    def _after_loads(self, summary: RunSummary, models: list[str], marts: bool) -> None:
        summary.staging = self._stage(models)
        summary.anchor = self._anchor()
        if marts:
            summary.marts = self.marts_step.run(self.warehouse)
            if self.project.fraud.configured and self.project.fraud.on_run:
                summary.fraud = self.fraud_step.run(self.warehouse)
            summary.metric_alerts = self.check_metric_alerts(deliver=False)
        if self.project.exports.on_run and self.project.exports.tables:
            # Fresh files for the readers that cannot open the warehouse while it loads.
            summary.exports = export_tables(self.warehouse, self.project)
        if compaction_due(self.warehouse, self.clock()):
            summary.compaction = compact(self.warehouse)

    def _stage(self, models: Sequence[str], force: bool = False) -> list[ModelRun]:
        return StageStep(self.project, self.clock, models, force).run(self.warehouse)

    def _anchor(self) -> AnchorRun | None:
        if self.plan.entities:
            self.reporter.anchor_planned(self.anchor_step.tables)
        return self.anchor_step.run(self.warehouse, self.reporter.anchor_table_done)

    def _steps(self) -> Steps:
        return Steps(StageStep(self.project, self.clock), self.anchor_step)

    @contextmanager
    def _opened(self, name: str) -> Iterator[Source]:
        source = open_source(name, self.project.sources[name], self.project.root)
        try:
            yield source
        finally:
            source.close()

    def _cursor_saver(self, name: str) -> SaveCursor:
        def save(stream: str, cursor: Cursor) -> None:
            write_cursor(self.warehouse, name, stream, cursor, None)

        return save

    def _check_mapping(self) -> None:
        problems = mapping_problems(self.warehouse, self.project)
        if problems:
            raise ConfigError(problems)

    # -- runs, alerts ---------------------------------------------------------------------------

    @contextmanager
    def _recorded_run(self, command: str) -> Iterator[RunSummary]:
        """Record the command in the journal and the run log with its outcome; a failure is
        alerted and raised, an interrupt (Ctrl-C, SIGTERM) is recorded as such and never
        alerted. The alerts queued by the command are delivered when it ends, in one batch.
        A command that could not open or prepare the warehouse is in the run log only, and
        alerted directly. Yields a summary the command may fill (its duration is set here)."""
        summary = RunSummary()
        started, logged = time.perf_counter(), timestamp()
        try:
            run_id = self.run_id = start_run(self.warehouse, command.strip())  # opens it
        except KeyboardInterrupt as stop:  # while it waited for the file
            log_run(self.project.state_path, command, logged, "interrupted", _stopped_by(stop))
            raise
        except Exception as error:  # held, missing, unreadable, not a database, not migrated
            self._not_opened(command, logged, error)
            raise
        try:
            try:
                yield summary
            except Exception as error:
                swallowed = swallowed_stop(error)  # a signal DuckDB turned into its own error
                if swallowed is None:
                    raise
                raise swallowed from error
        except KeyboardInterrupt as stop:
            # A person or the system stopped it: nobody needs to be paged, and the alerts
            # queued so far wait for the next run rather than delay the exit, which never
            # waits for the file either (the next run marks a run left 'running' interrupted).
            if not self.warehouse.released:
                with contextlib.suppress(Exception):
                    finish_run(self.warehouse, run_id, "interrupted", _stopped_by(stop))
            log_run(self.project.state_path, command, logged, "interrupted", _stopped_by(stop))
            raise
        except BaseException as error:
            if isinstance(error, WarehouseLocked) or not self._reachable():
                self._not_opened(command, logged, error)
                raise
            log_run(self.project.state_path, command, logged, "failed", str(error))
            # Recording and announcing the failure must never replace the error itself.
            with contextlib.suppress(Exception):
                finish_run(self.warehouse, run_id, "failed", str(error))
            with contextlib.suppress(Exception):
                # A source that keeps failing must not keep an erasure past its deadline.
                if command.startswith(("run", "backfill")) and compaction_due(
                    self.warehouse, self.clock()
                ):
                    compact(self.warehouse)
            with contextlib.suppress(Exception):
                self._alert_failure(command, error)
            self.deliver_alerts()
            raise
        finish_run(self.warehouse, run_id, "ok", None)
        summary.seconds = time.perf_counter() - started
        log_run(self.project.state_path, command, logged, "ok", None)
        self.deliver_alerts()

    def _require_env(self, command: str, sources: Sequence[str]) -> None:
        """A secret missing in cron is a failed run: on record and alerted like one."""
        try:
            self.project.require_env(sources)
        except ConfigError as error:
            self._not_opened(command, timestamp(), error)
            raise

    def _not_opened(self, command: str, started: str, error: BaseException) -> None:
        """A command that failed without the warehouse (another process held it, it could not
        be opened or prepared, a secret is missing): recorded in the run log and alerted
        directly (the journal and its alert outbox are in there)."""
        log_run(self.project.state_path, command, started, "failed", str(error))
        with contextlib.suppress(Exception):
            send_without_journal(self.project, self._failure_alert(command, error))

    def _reachable(self) -> bool:
        """Whether the warehouse is open, or can be taken back at once after it was let go of:
        a failing command does not wait for the file a second time."""
        try:
            self.warehouse.acquire(timeout=0)
        except Exception:  # held past the lock timeout, or worse: the journal is out of reach
            return False
        return True

    def deliver_alerts(self) -> None:
        """Queue the command's drift (one alert per kind), then send the queue in one batch;
        delivery problems are journaled, not raised."""
        with contextlib.suppress(Exception):
            send_pending_alerts(self.warehouse, self.project)
        with contextlib.suppress(Exception):
            self.alerts.deliver()

    def _alert_failure(self, command: str, error: BaseException) -> None:
        self.alerts.queue(self._failure_alert(command, error))

    @staticmethod
    def _failure_alert(command: str, error: BaseException) -> Alert:
        return Alert(
            "run_failed",
            f"`anchorflow {command.strip()}` failed",
            {"error": shorten(str(error), 500), "error_type": type(error).__name__},
        )

    def _alert_mart_tests(self, failed: list[BuiltMart]) -> None:
        self.alerts.queue(mart_tests_alert(failed))

    def _alert_integrity(self, problems: list[str]) -> None:
        alert = Alert(
            "anchor_integrity",
            f"anchor model: {len(problems)} table(s) failed their integrity check",
            {"problems": problems[:10]},
        )
        self.alerts.queue(alert)

    def _alert_conflicts(self, found: dict[str, int]) -> None:
        subject = (
            f"anchor model: {sum(found.values())} same-instant conflict(s) in {len(found)} "
            "table(s) (the largest value was kept)"
        )
        self.alerts.queue(Alert("anchor_conflicts", subject, {"tables": found}))

    # -- names ----------------------------------------------------------------------------------

    def _select_sources(self, names: Sequence[str]) -> list[str]:
        unknown = [n for n in names if n not in self.project.sources]
        if unknown:
            known = ", ".join(sorted(self.project.sources)) or "none"
            raise ConfigError([f"unknown source {unknown[0]!r} (sources: {known})"])
        return list(names) or list(self.project.sources)

    def _models_of(self, sources: Sequence[str]) -> list[str]:
        return [n for n, m in self.project.staging.items() if m.source in set(sources)]

    def _stream_of(self, model: str) -> tuple[str, str]:
        config = self.project.staging[model]
        return config.source, self.project.stream_of(config)


def _stopped_by(stop: KeyboardInterrupt) -> str:
    return "stopped by SIGTERM" if isinstance(stop, Terminated) else "stopped by Ctrl-C (SIGINT)"
