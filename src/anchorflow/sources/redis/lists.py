"""A Redis list as a queue: producers RPUSH, readers take from the left.

A reader's items in hand live in its processing list (`QueueKeys.processing`), moved there
atomically by the take script, so a killed reader loses nothing: its recovery pushes them back
to the head of the list in their order. The take and commit scripts check that the processing
list holds as many items as the reader believes (`held`): a reply lost on a broken connection
(a take that ran but whose items never reached the chunk) makes the reader abandon its chunk
instead of committing items it does not have.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from anchorflow.sources.redis.intake import Abandoned
from anchorflow.sources.redis.scripts import (
    COMMIT_LIST,
    LEAVE,
    RECOVER,
    REQUEUE_OWN,
    TAKE,
)

if TYPE_CHECKING:
    from anchorflow.sources.redis.reader import Reader

SCAN_COUNT = 1000


class ListIntake:
    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.keys = reader.keys
        self.launch = reader.launch_id
        self.processing = self.keys.processing(self.launch)
        client = reader.client
        self._take = client.register_script(TAKE)
        self._commit = client.register_script(COMMIT_LIST)
        self._recover = client.register_script(RECOVER)
        self._requeue = client.register_script(REQUEUE_OWN)
        self._leave = client.register_script(LEAVE)
        self._held = 0

    @property
    def held(self) -> int:
        return self._held

    def prepare(self) -> None:
        return

    def take(self, count: int, wait: float) -> list[bytes]:
        if count <= 0:
            return []
        items = self._take_now(count)
        if items or wait <= 0:
            return items
        # Nothing there: block on the list. BLMOVE is not fenced (a script cannot block); a
        # fenced reader finds out at its next take, and puts the moved item back.
        call, client = self.reader.call, self.reader.client
        moved: Any = call(client.blmove, self.keys.key, self.processing, wait, "LEFT", "RIGHT")
        if moved is None:
            return []
        self._held += 1
        return [moved, *self._take_now(count - 1)] if count > 1 else [moved]

    def _take_now(self, count: int) -> list[bytes]:
        result: Any = self.reader.call(
            self._take,
            [self.keys.key, self.processing, self.keys.readers],
            [self.launch, count, self._held],
        )
        if result is None:
            self.fenced()
            raise self.reader._fenced()
        if not isinstance(result, list):
            raise Abandoned(f"the processing list does not hold the {self._held} item(s) taken")
        self._held += len(result)
        return result

    def commit(self, chunk: str) -> int:
        outcome = int(
            self.reader.call(
                self._commit,
                [self.processing, self.keys.readers, self.keys.committed(self.launch)],
                [self.launch, chunk, self._held],
            )
        )
        if outcome == 1:
            self._held = 0
        return outcome

    def abandon(self) -> None:
        self._requeue_own()

    def fenced(self) -> None:
        # A blocking move may have put an item in the processing list after the recovery.
        self._requeue_own()

    def _requeue_own(self) -> None:
        self.reader.call(
            self._requeue, [self.keys.readers, self.processing, self.keys.key], [self.launch]
        )
        self._held = 0

    def recover(self, launch: str) -> bool:
        keys = [self.keys.readers, self.keys.alive(launch), self.keys.processing(launch)]
        return int(self.reader.call(self._recover, [*keys, self.keys.key], [launch])) >= 0

    def take_over(self, registered: set[str], room: int) -> list[bytes]:
        """Requeue processing lists whose reader is not registered: left by a reader killed
        after a blocking move that happened after it was declared dead."""
        call, client = self.reader.call, self.reader.client
        prefix = len(self.keys.processing(""))
        pattern = self.keys.processing_pattern()
        for key in call(lambda: list(client.scan_iter(match=pattern, count=SCAN_COUNT))):
            launch = key.decode()[prefix:]
            if launch not in registered:
                self.recover(launch)
        return []

    def leave(self) -> None:
        keys = [self.keys.readers, self.keys.alive(self.launch), self.processing]
        self.reader.call(
            self._leave, [*keys, self.keys.key, self.keys.committed(self.launch)], [self.launch]
        )
        self._held = 0
