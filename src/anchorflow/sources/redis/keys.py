"""The keys the readers keep beside a queue in Redis, shared by the readers and the loader's
health check (`status`): one place for their names.

Every key of a queue carries the queue's key in braces (`anchorflow:{bus:events}:readers`), a
Redis Cluster hash tag: the queue and its bookkeeping live in one slot. Per queue:

    anchorflow:{key}:readers                 the set of registered readers (launch ids)
    anchorflow:{key}:alive:<launch>          a reader's heartbeat (expires after `heartbeat`)
    anchorflow:{key}:processing:<launch>     a list reader's items in hand (its open chunk)
    anchorflow:{key}:committed:<launch>      a reader's chunks committed and not yet published
"""

from __future__ import annotations

PREFIX = "anchorflow"


class QueueKeys:
    """The bookkeeping keys of one queue (a list or a stream key)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.base = f"{PREFIX}:{{{key}}}"
        self.readers = f"{self.base}:readers"

    def alive(self, launch: str) -> str:
        return f"{self.base}:alive:{launch}"

    def processing(self, launch: str) -> str:
        return f"{self.base}:processing:{launch}"

    def committed(self, launch: str) -> str:
        return f"{self.base}:committed:{launch}"

    def processing_pattern(self) -> str:
        """A SCAN pattern of every processing list of the queue (glob characters escaped)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.base)
        return f"{escaped}:processing:*"
