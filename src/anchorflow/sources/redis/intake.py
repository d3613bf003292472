"""What a reader asks of its queue, whatever its kind: the port between `Reader` (chunks,
heartbeat, recovery of files) and `ListIntake` / `StreamIntake` (how items are held in Redis)."""

from __future__ import annotations

from typing import Protocol

from anchorflow.errors import AnchorflowError


class Fenced(AnchorflowError):
    """Another reader declared this one dead (its heartbeat expired): it may not commit."""


class Abandoned(Exception):
    """What Redis holds for the reader is not what its chunk holds (a reply was lost on a
    broken connection): the chunk is dropped and the items in hand go back to the queue."""


class Intake(Protocol):
    @property
    def held(self) -> int:
        """How many items (or entries) the reader holds in Redis for the chunk in hand."""
        ...

    def prepare(self) -> None:
        """Create what the queue needs before the first take (a stream's consumer group)."""

    def take(self, count: int, wait: float) -> list[bytes]:
        """Up to `count` records, now held by this reader; waits up to `wait` seconds for the
        first when the queue is empty. Raises `Fenced` or `Abandoned`."""
        ...

    def commit(self, chunk: str) -> int:
        """Let go of the items held (the chunk is sealed) and mark `chunk` committed: 1 done,
        0 fenced, -1 what Redis holds is not the chunk (a list: the reader abandons it)."""
        ...

    def abandon(self) -> None:
        """Give the items held back to the queue (the chunk was dropped)."""

    def fenced(self) -> None:
        """Clean up after learning this reader was declared dead."""

    def recover(self, launch: str) -> bool:
        """Declare the reader `launch` dead if its heartbeat is gone; True when it was."""
        ...

    def take_over(self, registered: set[str], room: int) -> list[bytes]:
        """Take what readers not in `registered` left in Redis (up to `room` records)."""
        ...

    def leave(self) -> None:
        """Unregister, gracefully (nothing is held)."""
