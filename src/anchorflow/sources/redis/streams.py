"""A Redis stream as a queue: one consumer group, each reader a consumer named by its launch id.

Entries read with XREADGROUP stay pending for their reader until the commit script
acknowledges them (XACK, and XDEL when `delete_acked`), after the chunk holding them is sealed.
A reader declared dead leaves its pending entries in the group; live readers claim them once
they have been idle for `claim_idle` (XPENDING + XCLAIM in one script that first checks the
consumer is not a registered reader: a live reader's entries are never taken from it, however
long its chunk stays open), and drop the dead consumer once it holds nothing.

An entry becomes one record: an entry of one field (whatever its name: `data`, `event`, ...) is
that field's value as is; an entry of several fields is a JSON object of them, field names and
values as strings, in the entry's order.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from anchorflow.sources import chunks
from anchorflow.sources.redis.scripts import CLAIM, COMMIT_STREAM, DROP_CONSUMER, FENCE, LEAVE

if TYPE_CHECKING:
    from anchorflow.sources.redis.reader import Reader

Entry = tuple[bytes, dict[bytes, bytes] | None]


def entry_record(fields: dict[bytes, bytes]) -> bytes:
    """The record text of a stream entry (see the module's docstring)."""
    if len(fields) == 1:
        return next(iter(fields.values()))
    return json.dumps(
        {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in fields.items()},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


class StreamIntake:
    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.keys = reader.keys
        self.launch = reader.launch_id
        self.group = reader.queue_config.group
        self.claim_idle_ms = int(reader.queue_config.claim_idle.total_seconds() * 1000)
        self.delete_acked = reader.queue_config.delete_acked
        client = reader.client
        self._commit = client.register_script(COMMIT_STREAM)
        self._fence = client.register_script(FENCE)
        self._drop = client.register_script(DROP_CONSUMER)
        self._claim_script = client.register_script(CLAIM)
        self._leave = client.register_script(LEAVE)
        self.ids: list[bytes] = []  # the entries held for the chunk in hand
        self._backlog: bytes | None = None  # read own pending entries after this id first

    @property
    def held(self) -> int:
        return len(self.ids)

    def prepare(self) -> None:
        try:
            self.reader.call(
                self.reader.client.xgroup_create, self.keys.key, self.group, id="0", mkstream=True
            )
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    def take(self, count: int, wait: float) -> list[bytes]:
        if count <= 0:
            return []
        call, client = self.reader.call, self.reader.client
        if self._backlog is not None:  # our own pending entries first (a reply was lost)
            answer = call(client.xreadgroup, self.group, self.launch,
                          {self.keys.key: self._backlog}, count=count)  # fmt: skip
            entries = _entries(answer)
            if not entries:
                self._backlog = None
                return []
            self._backlog = entries[-1][0]
            return self._hold(entries)
        block = max(1, int(wait * 1000)) if wait > 0 else None  # 0 would block for ever
        answer = call(client.xreadgroup, self.group, self.launch, {self.keys.key: ">"},
                      count=count, block=block)  # fmt: skip
        return self._hold(_entries(answer))

    def _hold(self, entries: list[Entry]) -> list[bytes]:
        self.ids.extend(entry_id for entry_id, _ in entries)
        # A pending entry deleted from the stream comes back without fields: it is held (to
        # be acknowledged) but carries no record.
        return [entry_record(fields) for _, fields in entries if fields]

    def commit(self, chunk: str) -> int:
        keys = [self.keys.key, self.keys.readers, self.keys.committed(self.launch)]
        args: list[Any] = [self.launch, self.group, chunk, "1" if self.delete_acked else "0"]
        outcome = int(self.reader.call(self._commit, keys, [*args, *self.ids]))
        if outcome == 0:
            return 0
        self.ids = []
        if outcome > 1:  # entries delivered to us whose reply was lost: read them again
            self._backlog = b"0"
        return 1

    def abandon(self) -> None:
        self.ids = []
        self._backlog = b"0"

    def fenced(self) -> None:
        self.ids = []

    def recover(self, launch: str) -> bool:
        keys = [self.keys.readers, self.keys.alive(launch), self.keys.key]
        return int(self.reader.call(self._fence, keys, [launch, self.group])) >= 0

    def take_over(self, registered: set[str], room: int) -> list[bytes]:
        """Claim the idle pending entries of consumers that are not registered readers (up to
        `room`), and drop such consumers once they hold nothing."""
        call, client = self.reader.call, self.reader.client
        consumers = call(client.xinfo_consumers, self.keys.key, self.group)
        records: list[bytes] = []
        for consumer in consumers:
            name = _text(consumer["name"])
            if name in registered or not chunks.LAUNCH_ID.match(name):
                continue
            if consumer["pending"] and room > len(records):
                records.extend(self._claim(name, room - len(records)))
            call(self._drop, [self.keys.key, self.keys.readers], [self.group, name])
        return records

    def _claim(self, consumer: str, count: int) -> list[bytes]:
        keys = [self.keys.key, self.keys.readers]
        args = [self.group, consumer, self.launch, self.claim_idle_ms,
                min(count, self.reader.config.batch)]  # fmt: skip
        raw = self.reader.call(self._claim_script, keys, args)
        # Ids not returned are not ours: deleted from the stream meanwhile (Redis 7 drops
        # those from the group's pending entries).
        entries: list[Entry] = [
            (e[0], dict(zip(e[1][::2], e[1][1::2], strict=True))) for e in raw if e and e[1]
        ]
        return self._hold(entries)

    def leave(self) -> None:
        keys = [self.keys.readers, self.keys.alive(self.launch), self.keys.processing(self.launch)]
        self.reader.call(
            self._leave, [*keys, self.keys.key, self.keys.committed(self.launch)], [self.launch]
        )


def _entries(answer: Any) -> list[Entry]:
    """The entries of an XREADGROUP answer on one stream (redis-py: [[key, [(id, fields)]]])."""
    if not answer:
        return []
    if isinstance(answer, dict):  # RESP3
        return [e for value in answer.values() for e in value[0]]
    return list(answer[0][1])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
