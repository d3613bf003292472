"""What `anchorflow serve` runs beside the web app: the Redis readers of the project's redis
sources (supervised: restarted on death, stopped gracefully) and the loader loop that moves
every chunk source's sealed chunks (redis, webhook) into raw.

The readers are processes of their own (`ReaderPool`); the loader is a thread of the server's
process, so the server is the warehouse's one writer while it runs. On shutdown the web app
stops first (its intakes publish their open chunks), then the readers (each publishes its chunk
in hand), then the loader finishes the run in flight and makes one last run, so what was
published is loaded before the process exits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from anchorflow.config.project import Project
from anchorflow.run.loop import LoadLoop
from anchorflow.sources.redis.config import RedisConfig
from anchorflow.sources.redis.supervise import ReaderPool

log = logging.getLogger(__name__)
CHECK_SECONDS = 1.0


def chunk_sources(project: Project) -> list[str]:
    """The sources fed through landing chunks (those with a `landing` setting)."""
    return [name for name, config in project.sources.items() if hasattr(config, "landing")]


@dataclass
class Background:
    project: Project
    readers: int = 1  # reader processes per queue of each redis source (0: none)
    load_every: float = 5.0  # seconds between loader runs (0: no loader)
    pools: list[ReaderPool] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _loop: LoadLoop | None = None

    def start(self) -> None:
        if self.readers > 0:
            for name, config in self.project.sources.items():
                if isinstance(config, RedisConfig):
                    pool = ReaderPool(self.project, name, list(config.queues), self.readers)
                    pool.start()
                    self.pools.append(pool)
            if self.pools:
                self._thread(self._supervise, "serve-readers")
        sources = chunk_sources(self.project)
        if self.load_every > 0 and sources:
            loop = self._loop = LoadLoop(self.project, sources, interval=self.load_every)
            self._thread(lambda: loop.run_forever(self._stop), "serve-loader")

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _supervise(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            for pool in self.pools:
                pool.check()

    def stop(self, timeout: float = 60.0) -> None:
        """Readers stopped gracefully, the loader's run in flight finished, then one last run
        of the loader for what was published meanwhile."""
        self._stop.set()
        for pool in self.pools:
            pool.stop(timeout)
        for thread in self._threads:
            thread.join(timeout)
        if self._loop is not None:
            try:
                self._loop.run_once(force=True)
            except Exception as error:  # recorded and alerted by the pipeline
                log.error("serve: the last load failed: %s", str(error).split("\n")[0])
