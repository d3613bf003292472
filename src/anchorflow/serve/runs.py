"""The one writer of `anchorflow serve`: a thread that runs the loader's loads, each source's
`schedule:` and the pages' `Run now`, one at a time, through the warehouse the server holds.

Whatever asks for a run (a schedule's tick, a button) adds its sources to a pending set and
wakes the thread; asks that come while a run is in flight wait in that set, so the missed
ticks of a source coalesce into one run. Each source runs as `anchorflow run --source X`
does (land, stage, anchor, marts, fraud), each window committed atomically. On stop (SIGTERM)
the run in flight ends after the window or anchor table it is committing, recorded as
interrupted (stopped by SIGTERM) as `anchorflow run` is: nothing is half-written, and the next
run carries on from there. Then the loader makes its last run, of what was published.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from anchorflow.anchor.load import TargetRun
from anchorflow.config.project import Project
from anchorflow.cron import Cron
from anchorflow.errors import ConfigError, Terminated
from anchorflow.land.step import WindowResult
from anchorflow.redact import redact
from anchorflow.run.loop import LoadLoop
from anchorflow.run.pipeline import Pipeline, SilentReporter
from anchorflow.serve.keeper import Keeper
from anchorflow.warehouse import Warehouse

log = logging.getLogger("anchorflow.serve")
HISTORY = 20  # runs of this process kept for the Health page
ALERTS_EVERY = 60.0  # seconds between checks of the metric alerts (`metrics.alerts`)


@dataclass(frozen=True)
class ServedRun:
    """A run this server made: what asked for it, its sources, how it ended."""

    reason: str  # schedule | manual | loader
    sources: tuple[str, ...]
    started_at: datetime
    seconds: float
    status: str  # ok | failed
    rows: int = 0
    error: str | None = None


@dataclass(frozen=True)
class Schedule:
    source: str
    cron: Cron
    next_at: datetime | None


class StopBetweenCommits(SilentReporter):
    """Ends a run after the commit in flight once the server is stopping (SIGTERM)."""

    def __init__(self, stopping: Callable[[], bool]) -> None:
        self.stopping = stopping

    def window_done(self, result: WindowResult) -> None:
        if self.stopping():
            raise Terminated()

    def anchor_table_done(self, run: TargetRun) -> None:
        if self.stopping():
            raise Terminated()


@dataclass
class Runner:
    project: Project
    warehouse: Warehouse
    loader_sources: Sequence[str] = ()
    load_every: float = 0.0  # seconds between the loader's runs (0: no loader)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    history: list[ServedRun] = field(default_factory=list)
    running: tuple[str, ...] | None = None  # the sources of the run in flight
    _pending: dict[str, str] = field(default_factory=dict)  # source → reason
    _next: dict[str, datetime] = field(default_factory=dict)
    _wake: threading.Condition = field(default_factory=threading.Condition)
    _stop: bool = False  # the thread ends
    _interrupt: bool = False  # the run in flight ends after its commit in flight
    _thread: threading.Thread | None = None
    _loop: LoadLoop | None = None
    keeper: Keeper | None = None  # keeps the warehouse while a run is in flight

    def __post_init__(self) -> None:
        now = self.clock()
        for name, cron in self.crons().items():
            self._next[name] = cron.next_after(now)
        if self.loader_sources and self.load_every > 0:
            self._loop = LoadLoop(self.pipeline, self.loader_sources, interval=self.load_every)

    def crons(self) -> dict[str, Cron]:
        return {
            name: Cron.parse(config.schedule)
            for name, config in self.project.sources.items()
            if config.schedule
        }

    def schedules(self) -> list[Schedule]:
        return [Schedule(n, c, self._next.get(n)) for n, c in self.crons().items()]

    def pipeline(self) -> Pipeline:
        reporter = StopBetweenCommits(lambda: self._interrupt)
        return Pipeline(self.project, reporter, warehouse=self.warehouse)

    # -- asking ---------------------------------------------------------------------------------

    def request(self, sources: Sequence[str] = (), reason: str = "manual") -> list[str]:
        """Run `sources` (all of the project's when empty) as soon as the run in flight ends."""
        names = list(sources) or list(self.project.sources)
        unknown = [n for n in names if n not in self.project.sources]
        if unknown:
            raise ConfigError([f"run now: no source {unknown[0]!r} in the project"])
        with self._wake:
            for name in names:
                self._pending.setdefault(name, reason)
            self._wake.notify_all()
        return names

    def wake(self) -> None:
        """Look at the schedules again now (the clock moved: a test's, or the system's)."""
        with self._wake:
            self._wake.notify_all()

    @property
    def pending(self) -> list[str]:
        with self._wake:
            return sorted(self._pending)

    # -- the thread -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_forever, name="serve-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """The run in flight finished, then the loader's last run (what was published)."""
        with self._wake:
            self._stop = self._interrupt = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._interrupt = False  # the last run of the loader is not cut short
        if self._loop is not None:
            self._served("loader", tuple(self.loader_sources), lambda: self._loop_once(True))

    def _run_forever(self) -> None:
        next_load = next_alerts = time.monotonic()
        while True:
            with self._wake:
                self._due_by_schedule()
                while not self._stop and not self._pending:
                    wait = self._seconds_to_next(next_load, next_alerts)
                    if wait <= 0:
                        break
                    self._wake.wait(wait)
                    self._due_by_schedule()
                if self._stop:
                    return
                due = dict(self._pending)
                self._pending.clear()
            for name, reason in due.items():
                if self._interrupt:
                    return
                self._served(reason, (name,), partial(self._run_source, name))
            if self._loop is not None and time.monotonic() >= next_load:
                next_load = time.monotonic() + self.load_every
                self._served("loader", tuple(self.loader_sources), self._loop_once)
            if self.checks_alerts and time.monotonic() >= next_alerts:
                next_alerts = time.monotonic() + ALERTS_EVERY
                self._served("alerts", (), self._check_alerts)

    @property
    def checks_alerts(self) -> bool:
        """Whether the project has metric alerts, which the runner checks every minute (the
        runs check them too, after their marts, when the data they read changed)."""
        return bool(self.project.metrics.alerts)

    def _check_alerts(self) -> int:
        """The metric alerts whose data changed, or whose period ended, checked and sent."""
        now = self.clock()
        if now.tzinfo is not None:  # the journal's instants are naive UTC
            now = now.astimezone(UTC).replace(tzinfo=None)
        with Pipeline(self.project, warehouse=self.warehouse, now=now) as pipeline:
            checks = pipeline.check_metric_alerts()
        return sum(1 for check in checks if check.sent)

    def _seconds_to_next(self, next_load: float, next_alerts: float) -> float:
        waits = [3600.0]
        if self.checks_alerts:
            waits.append(next_alerts - time.monotonic())
        if self._loop is not None:
            waits.append(next_load - time.monotonic())
        now = self.clock()
        waits += [(at - now).total_seconds() for at in self._next.values()]
        return max(0.0, min(waits))

    def _due_by_schedule(self) -> None:
        """Sources whose next tick has passed become pending; their next tick is the first
        after now (ticks missed meanwhile make no second run)."""
        now = self.clock()
        crons = self.crons()
        for name, at in list(self._next.items()):
            if at <= now:
                self._pending.setdefault(name, "schedule")
                self._next[name] = crons[name].next_after(now)

    def _run_source(self, name: str) -> int:
        with self.pipeline() as pipeline:
            return pipeline.run([name]).rows

    def _loop_once(self, force: bool = False) -> int:
        assert self._loop is not None
        summary = self._loop.run_once(force=force)
        return summary.rows if summary is not None else 0

    def _served(self, reason: str, sources: tuple[str, ...], run: Callable[[], int]) -> None:
        started, began = self.clock(), time.monotonic()
        self.running = sources
        status, rows, error = "ok", 0, None
        held = self.keeper.held() if self.keeper is not None else contextlib.nullcontext()
        try:
            with held:
                rows = run()
        except Terminated:
            status, error = "interrupted", "stopped by SIGTERM"
        except Exception as failure:  # recorded and alerted by the pipeline already
            status, error = "failed", redact(str(failure).split("\n")[0])
            log.error("serve: %s run of %s failed: %s", reason, " ".join(sources), error)
        finally:
            self.running = None
        if reason in ("loader", "alerts") and status == "ok" and rows == 0:
            return  # an idle loader tick (or nothing sent) is not worth a line on the page
        seconds = round(time.monotonic() - began, 3)
        self.history.insert(0, ServedRun(reason, sources, started, seconds, status, rows, error))
        del self.history[HISTORY:]
