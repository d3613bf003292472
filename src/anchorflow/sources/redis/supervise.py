"""Reader processes kept running: `anchorflow read` uses it, and `anchorflow serve` can.

Each reader is a subprocess (`anchorflow.sources.redis.worker`), so a reader killed by anything
(the OOM killer, a SIGKILL) costs only its own chunk in hand, which the others recover. A dead
reader is restarted after a pause that doubles with each quick death (up to `MAX_BACKOFF`) and
resets once it has run for `STABLE_AFTER`. Stopping sends SIGTERM (each reader finishes and
publishes its chunk in hand), waits, then kills what is left.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from anchorflow.config.project import Project

log = logging.getLogger(__name__)
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0


@dataclass
class Slot:
    """One reader's place in the pool: its queue, its process and when it may restart."""

    queue: str
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff: float = FIRST_BACKOFF
    restart_at: float = 0.0
    exits: list[int] = field(default_factory=list)


class ReaderPool:
    """`procs` reader processes for each of `queues` of the redis source `source`."""

    def __init__(
        self,
        project: Project,
        source: str,
        queues: Sequence[str],
        procs: int,
        env: dict[str, str] | None = None,
    ) -> None:
        self.project_file = Path(project.file)
        self.source = source
        self.slots = [Slot(q) for q in queues for _ in range(procs)]
        self.env = env

    def start(self) -> None:
        for slot in self.slots:
            self._spawn(slot)

    def _spawn(self, slot: Slot) -> None:
        command = [sys.executable, "-m", "anchorflow.sources.redis.worker",
                   str(self.project_file), self.source, slot.queue]  # fmt: skip
        slot.process = subprocess.Popen(command, env=self.env if self.env is not None else None)
        slot.started_at = time.monotonic()

    def check(self) -> int:
        """Restart the readers that died (each after its backoff); how many were restarted."""
        restarted = 0
        now = time.monotonic()
        for slot in self.slots:
            process = slot.process
            if process is None or process.poll() is None:
                if process is None and now >= slot.restart_at:
                    self._spawn(slot)
                    restarted += 1
                continue
            slot.exits.append(process.returncode)
            log.warning("reader of %s exited with %s", slot.queue, process.returncode)
            if now - slot.started_at >= STABLE_AFTER:
                slot.backoff = FIRST_BACKOFF
            slot.process = None
            slot.restart_at = now + slot.backoff
            slot.backoff = min(slot.backoff * 2, MAX_BACKOFF)
        return restarted

    @property
    def pids(self) -> list[int]:
        return [s.process.pid for s in self.slots if s.process is not None]

    def alive(self) -> int:
        return sum(1 for s in self.slots if s.process is not None and s.process.poll() is None)

    def stop(self, timeout: float = 30.0) -> list[int | None]:
        """SIGTERM every reader, wait up to `timeout` seconds, then SIGKILL the rest (their
        chunk in hand is recovered by the next reader). The exit codes, None for killed."""
        running = [s.process for s in self.slots if s.process is not None]
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for process in running:
            try:
                codes.append(process.wait(max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                codes.append(None)
        for slot in self.slots:
            slot.process = None
        return codes
