"""The loader loop: chunk sources loaded again and again, for as long as the process runs.

Intake (Redis readers, the webhook server) keeps landing chunks; `LoadLoop` runs the pipeline
for those sources every `interval` seconds, as `anchorflow run SOURCE...` would (land, then
stage, anchor and marts). Each run opens the warehouse and closes it, so readers (`status`,
`query`) get the file between runs; under `anchorflow serve` the runs share the warehouse the
server holds (a factory of pipelines over it). A run with no sealed chunk anywhere is skipped,
but one runs at least every `idle_every` seconds (the queue depth samples and their alerts, staging
thresholds that wait on time), so an idle loop does not fill the journal's runs.

A failed run is recorded and alerted by the pipeline, logged here, and the loop goes on (a
held warehouse, a full disk: the next run may succeed); a project-file error stops it (it
would fail the same way every time). `anchorflow load`, `anchorflow serve` and `anchorflow
read` run it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from anchorflow.config import Project, load_project
from anchorflow.errors import ConfigError, swallowed_stop
from anchorflow.redact import redact
from anchorflow.run.pipeline import Pipeline
from anchorflow.run.results import RunSummary
from anchorflow.sources import chunks

log = logging.getLogger(__name__)
IDLE_EVERY = 60.0


class LoadLoop:
    def __init__(
        self,
        project: Path | Project | Callable[[], Pipeline],
        sources: Sequence[str],
        interval: float = 5.0,
        idle_every: float = IDLE_EVERY,
        on_run: Callable[[RunSummary], None] | None = None,
    ) -> None:
        """`project`: a project (or its directory), or a factory of pipelines (each run's
        pipeline is closed after it)."""
        if callable(project) and not isinstance(project, Project | Path):
            self._pipeline = project
            self.project: Project | None = None
        else:
            loaded = project if isinstance(project, Project) else load_project(project)
            self.project = loaded
            self._pipeline = lambda: Pipeline(loaded)
            _require_chunk_sources(loaded, sources)
        self.sources = list(sources)
        self.interval = interval
        self.idle_every = idle_every
        self.on_run = on_run
        self._last_run: float | None = None

    def run_once(self, force: bool = False) -> RunSummary | None:
        """One run of the pipeline for the sources; None when skipped (nothing landed and
        the last run is less than `idle_every` ago)."""
        now = time.monotonic()
        idle = self._last_run is not None and now - self._last_run < self.idle_every
        if not force and idle and not self._chunks_waiting():
            return None
        self._last_run = now
        with self._pipeline() as pipeline:
            self.project = pipeline.project
            summary = pipeline.run(self.sources)
        if self.on_run is not None:
            self.on_run(summary)
        return summary

    def run_forever(self, stop: threading.Event) -> None:
        """Run every `interval` seconds until `stop` is set (the run in flight finishes)."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except ConfigError:
                raise
            except Exception as error:  # recorded and alerted by the pipeline already
                stop_now = swallowed_stop(error)
                if stop_now is not None:  # the pipeline's own engine calls are turned already
                    raise stop_now from error
                log.error("load %s failed: %s", " ".join(self.sources),
                          redact(str(error).split("\n")[0]))  # fmt: skip
            stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _chunks_waiting(self) -> bool:
        """Whether any landing directory of the sources holds a sealed chunk (committed ones
        are deleted when their run ends: what is left is due, or was left by a crash)."""
        project = self.project
        if project is None:
            return True
        names = self.sources or list(project.sources)
        for name in names:
            config = project.sources[name]
            landing = chunks.landing_dir(project.root, name, getattr(config, "landing", None))
            if any(chunks.sealed_chunks(landing / stream) for stream in config.streams):
                return True
        return False


def _require_chunk_sources(project: Project, sources: Sequence[str]) -> None:
    """Only sources that land chunks are loaded in a loop (`run` loads the others when due)."""
    for name in sources:
        config = project.sources.get(name)
        if config is not None and not hasattr(config, "landing"):
            raise ConfigError([
                f"load: sources.{name} is a {config.kind} source, not one fed through landing "
                "chunks (redis, webhook); load it with `anchorflow run` (e.g. from cron)"
            ])  # fmt: skip
