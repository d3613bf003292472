"""A reader's connection to Redis: a deadline on every call, and retries of lost connections.

A call that fails because the connection broke or timed out is retried with a growing pause
until `retry_for` seconds have passed since the first failure; then the reader gives up with
one line (without the URL's password). What a retried call may have done before its reply
was lost is the caller's concern: the scripts check what the reader holds, so a retry is safe
or makes the reader abandon its chunk in hand (see `scripts`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from anchorflow.errors import TransientSourceError
from anchorflow.redact import add_secret, redact, redact_dsn

T = TypeVar("T")
RETRY_FOR = 60.0  # seconds of failures in a row before a reader gives up
FIRST_PAUSE = 0.1
MAX_PAUSE = 5.0
LOST = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisUnavailable(TransientSourceError):
    """Redis could not be reached for `retry_for` seconds."""


def connect(url: str, timeout: timedelta) -> redis.Redis:
    """A client whose every call (and connect) has a deadline of `timeout`."""
    _register_password(url)
    seconds = timeout.total_seconds()
    return redis.Redis.from_url(
        url,
        socket_timeout=seconds,
        socket_connect_timeout=seconds,
        socket_keepalive=True,
        retry_on_timeout=False,
    )


def _register_password(url: str) -> None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        add_secret(unquote(password))
        add_secret(password)


def describe(url: str, error: BaseException) -> str:
    """One line naming the server and the failure, without the password."""
    first = str(error).split("\n")[0]
    return redact(f"Redis at {redact_dsn(url)}: {type(error).__name__}: {first}")


class Retrying:
    """Calls a function until it succeeds or Redis has been unreachable for `retry_for`.
    Only lost connections and timeouts are retried; Redis's answers (a wrong type, a script
    error) pass through."""

    def __init__(self, url: str, retry_for: float = RETRY_FOR) -> None:
        self.url = url
        self.retry_for = retry_for

    def __call__(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        failing_since: float | None = None
        pause = FIRST_PAUSE
        while True:
            try:
                return call(*args, **kwargs)
            except LOST as error:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since >= self.retry_for:
                    raise RedisUnavailable(
                        f"{describe(self.url, error)} (gave up after {self.retry_for:.0f} s)"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, MAX_PAUSE)
