"""What `anchorflow serve` runs beside the web app: the Redis readers of the project's redis
sources (supervised: restarted on death, stopped gracefully). The loads (the loader of chunk
sources, the schedules) are the runner's (`serve.runs`).

The readers are processes of their own (`ReaderPool`). On shutdown the web app stops first (its
intakes publish their open chunks), then the readers (each publishes its chunk in hand), then
the runner finishes the run in flight and makes the loader's last run, so what was published
is loaded before the process exits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from anchorflow.config.project import Project
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
    pools: list[ReaderPool] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        if self.readers > 0:
            for name, config in self.project.sources.items():
                if isinstance(config, RedisConfig):
                    pool = ReaderPool(self.project, name, list(config.queues), self.readers)
                    pool.start()
                    self.pools.append(pool)
            if self.pools:
                self._thread(self._supervise, "serve-readers")

    def _thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _supervise(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            for pool in self.pools:
                pool.check()

    def stop(self, timeout: float = 60.0) -> None:
        """Readers stopped gracefully (each publishes the chunk in hand)."""
        self._stop.set()
        for pool in self.pools:
            pool.stop(timeout)
        for thread in self._threads:
            thread.join(timeout)
