"""A total deadline for one HTTP request, whatever the server does.

httpx's timeouts bound each connect, read and write, not the request: a server that sends one
byte every few seconds keeps a call alive for ever. A `Deadline` watches a request from a thread
and, when its time is up (or when the caller's `stop` event is set), shuts the connection's
socket down, so the blocked read or write returns at once and the request fails; the caller
then finds `expired` (or `cancelled`) set and raises its own one-line error.

The socket is reached through httpx's public `trace` extension, which hands over the
connection's stream when it opens; so a request under a deadline must open its own connection:
clients used with one keep no idle connections (`LIMITS`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx

LIMITS = httpx.Limits(max_keepalive_connections=0)
_OPENED = ("connection.connect_tcp.complete", "connection.start_tls.complete")
_STOP_POLL = 0.1  # seconds between looks at the caller's stop event


class Deadline:
    """`with Deadline(seconds, stop) as deadline:` then pass `deadline.extensions` and
    `deadline.timeout(...)` to the httpx request made inside the block."""

    def __init__(self, seconds: float, stop: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.expired = False  # the time was up before the request ended
        self.cancelled = False  # the caller's stop event was set before the request ended
        self._stop = stop
        self._ends = time.monotonic() + seconds
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="deadline", daemon=True)

    def __enter__(self) -> Deadline:
        self._ends = time.monotonic() + self.seconds
        self._watcher.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._done.set()
        self._watcher.join()

    @property
    def extensions(self) -> dict[str, Any]:
        return {"trace": self._trace}

    @property
    def remaining(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    @property
    def ended(self) -> bool:
        """Whether the request was cut short by the deadline or the stop event."""
        return self.expired or self.cancelled or self.remaining <= 0

    def timeout(self, read: float, connect: float) -> httpx.Timeout:
        """httpx's per-operation timeouts, none longer than what is left of the deadline (the
        connect phase has no socket to shut yet)."""
        left = max(self.remaining, 0.001)
        return httpx.Timeout(min(read, left), connect=min(connect, left))

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event not in _OPENED:
            return
        stream = info.get("return_value")
        opened = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(opened, socket.socket):
            return
        with self._lock:
            self._sockets.append(opened)
            fired = self.expired or self.cancelled
        if fired:
            _shut(opened)

    def _watch(self) -> None:
        while True:
            left = self._ends - time.monotonic()
            if left <= 0:
                self._fire(expired=True)
                return
            if self._stop is not None and self._stop.is_set():
                self._fire(expired=False)
                return
            wait = left if self._stop is None else min(left, _STOP_POLL)
            if self._done.wait(wait):
                return

    def _fire(self, expired: bool) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.expired, self.cancelled = expired, not expired
            sockets = list(self._sockets)
        for opened in sockets:
            _shut(opened)


def _shut(opened: socket.socket) -> None:
    """End every read and write on the socket now; the client closes it as usual. The plain
    socket's method, also for a TLS socket: it must not touch the TLS state another thread
    is using."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(opened, socket.SHUT_RDWR)


def describe(seconds: float) -> str:
    """A deadline as a message shows it: `2s`, `1.5s`, `30m`, `2h`."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
