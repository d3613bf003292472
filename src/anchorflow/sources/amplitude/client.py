"""Amplitude's Export API over HTTP: one call per hour range, retried the way the API asks.

`GET {base_url}/api/2/export?start=YYYYMMDDTHH&end=YYYYMMDDTHH` with HTTP Basic auth. 200 is a
ZIP, 404 means no data in the range, 400 means the range is too large. 429, 5xx, timeouts and
broken connections are retried with bounded exponential backoff and jitter, honouring
`Retry-After` (up to 15 minutes). `timeout` bounds each read; `deadline` bounds each request
whole, however slowly the server sends (a request past it is retried like a timeout). The
secret key is only ever in the Authorization header, never in a message: an answer quoted in
an error is redacted first.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from anchorflow import redact
from anchorflow.deadline import LIMITS, Deadline, describe
from anchorflow.errors import SourceError, TerminalSourceError, TransientSourceError
from anchorflow.project_types import format_hour
from anchorflow.sources.amplitude.config import AmplitudeConfig

log = logging.getLogger(__name__)
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
RETRY_AFTER_CEILING = 900.0  # seconds; a longer Retry-After fails the run for a later retry
CONNECT_SECONDS = 30.0
QUOTED_BYTES = 200  # of an unexpected answer's body, in the error


class Cancelled(SourceError):
    """The caller stopped while a download was under way (never shown to the user)."""


class RangeTooLarge(TerminalSourceError):
    """HTTP 400: the API refuses the range; ask for fewer hours."""


@dataclass(frozen=True)
class Retry:
    reason: str
    retry_after: float | None


@dataclass(frozen=True)
class Download:
    start: datetime
    end: datetime  # inclusive, like the API
    path: Path | None  # None: the API said there is no data (404)
    bytes: int
    request: str


class ExportClient:
    def __init__(
        self,
        name: str,
        config: AmplitudeConfig,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.config = config
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=config.base_url,
            auth=(config.api_key.get_secret_value(), config.secret_key.get_secret_value()),
            timeout=httpx.Timeout(config.timeout.total_seconds(), connect=CONNECT_SECONDS),
            follow_redirects=True,
            limits=LIMITS,  # a fresh connection per request, which its deadline can cut
        )

    def close(self) -> None:
        self._http.close()

    def download(
        self, start: datetime, end: datetime, dest: Path, stop: threading.Event | None = None
    ) -> Download:
        """Fetch hours `start`..`end` (inclusive) into `dest`; retry what is worth retrying."""
        params = {"start": format_hour(start), "end": format_hour(end)}
        request = f"export?start={params['start']}&end={params['end']}"
        retry = self.config.retry
        for attempt in range(1, retry.attempts + 1):
            if stop is not None and stop.is_set():
                raise Cancelled(f"{self.name}: {request} cancelled")
            deadline = Deadline(self.config.deadline.total_seconds(), stop)
            try:
                with deadline:
                    outcome = self._attempt(params, dest, stop, deadline)
            except httpx.TooManyRedirects:
                raise TerminalSourceError(
                    f"{self.name}: {request}: too many redirects; check base_url"
                ) from None
            except httpx.HTTPError as error:  # timeouts, broken connections, bad encodings
                if deadline.cancelled:
                    raise Cancelled(f"{self.name}: {request} cancelled") from None
                reason = self._deadline_passed() if deadline.ended else type(error).__name__
                outcome = Retry(reason, None)
            except OSError as error:
                raise TransientSourceError(
                    f"{self.name}: cannot write the download to {dest.parent} ({error.strerror})"
                ) from None
            if not isinstance(outcome, Retry):
                path = dest if outcome else None
                return Download(start, end, path, dest.stat().st_size if path else 0, request)
            if attempt == retry.attempts:
                raise TransientSourceError(
                    f"{self.name}: {request} still failing after {attempt} attempts "
                    f"({outcome.reason}); the watermark is unchanged, run again later"
                )
            delay = self._delay(attempt, outcome.retry_after)
            log.warning(
                "%s: %s: %s, retry %d in %.2fs", self.name, request, outcome.reason, attempt, delay
            )
            if stop is not None:
                stop.wait(delay)  # returns at once when the caller stops
            else:
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _deadline_passed(self) -> str:
        seconds = self.config.deadline.total_seconds()
        return f"no complete answer within the {describe(seconds)} deadline of sources.{self.name}"

    def _attempt(
        self, params: dict[str, str], dest: Path, stop: threading.Event | None, deadline: Deadline
    ) -> bool | Retry:
        """One request: True when `dest` holds the ZIP, False for 404 (no data), or a Retry."""
        timeout = deadline.timeout(self.config.timeout.total_seconds(), CONNECT_SECONDS)
        with self._http.stream(
            "GET", "/api/2/export", params=params, timeout=timeout, extensions=deadline.extensions
        ) as response:
            status = response.status_code
            if status == 200:
                written = 0
                with dest.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        if stop is not None and stop.is_set():
                            raise Cancelled("download cancelled")
                        out.write(chunk)
                        written += len(chunk)
                expected = response.headers.get("content-length")
                encoded = "content-encoding" in response.headers  # then the length is encoded
                if expected is not None and not encoded and int(expected) != written:
                    return Retry(f"connection closed after {written} of {expected} bytes", None)
                return True
            if status == 404:
                return False
            body = _quoted(response)
            if status == 400:
                raise RangeTooLarge(f"{self.name}: HTTP 400 for {params}: {body}")
            if status in (401, 403):
                raise TerminalSourceError(
                    f"{self.name}: the Export API refused the credentials (HTTP {status}); "
                    "check api_key and secret_key in the project's environment"
                )
            if status in RETRYABLE:
                return Retry(f"HTTP {status}", _retry_after(response.headers.get("retry-after")))
            raise TerminalSourceError(f"{self.name}: unexpected HTTP {status} for {params}: {body}")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        retry = self.config.retry
        if retry_after is not None:  # the server knows best; a hard ceiling keeps runs bounded
            return min(retry_after, RETRY_AFTER_CEILING)
        cap = retry.max_delay.total_seconds()
        backoff = min(cap, retry.base_delay.total_seconds() * 2 ** (attempt - 1))
        return random.uniform(backoff / 2, backoff)  # "equal jitter": spread, never too short


def _quoted(response: httpx.Response) -> str:
    """The start of an answer's body for a message: bounded, read whole only up to a few KiB,
    and redacted (a proxy may echo the Authorization header it was sent)."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= 16 * QUOTED_BYTES:
            break
    text = data.decode("utf-8", "replace").strip()
    return redact.shorten(" ".join(text.split()), QUOTED_BYTES)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())
    except (TypeError, ValueError):
        return None
