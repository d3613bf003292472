"""An async-export API over HTTP: request an export, ask its status, download its file.

Every call has a total deadline (`deadline`, see `anchorflow.deadline`) besides the per-read
`timeout`. 429, 5xx, timeouts and broken connections are retried with bounded exponential
backoff and jitter, honouring `Retry-After` (up to 15 minutes). The token travels only in its
header, and only to the API: the download URL is presigned, so nothing of ours is sent there.
An answer quoted in an error is redacted first, and a download URL is quoted without its query
(which holds the link's signature).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from anchorflow import redact
from anchorflow.deadline import LIMITS, Deadline, describe
from anchorflow.errors import SourceError, TerminalSourceError, TransientSourceError
from anchorflow.sources.async_export.config import AsyncExportConfig

log = logging.getLogger(__name__)
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
EXPIRED = {400, 401, 403, 410}  # what object stores answer for a presigned link past its time
RETRY_AFTER_CEILING = 900.0
CONNECT_SECONDS = 30.0
QUOTED_BYTES = 200
MAX_ANSWER = 1 << 20  # bytes of an API call's JSON answer (an export id, a status)


class Cancelled(SourceError):
    """The caller stopped while a call was under way (never shown to the user)."""


class UnknownExport(TerminalSourceError):
    """The API no longer knows an export id (HTTP 404 for its status)."""


@dataclass(frozen=True)
class Status:
    state: str  # pending | complete | errored
    value: str  # the API's own word
    url: str | None


@dataclass(frozen=True)
class _Retry:
    reason: str
    retry_after: float | None


class ExportApi:
    """The calls of one source, with its credentials; `stop` cuts any wait short."""

    def __init__(
        self,
        name: str,
        config: AsyncExportConfig,
        stop: threading.Event | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.config = config
        self.stop = stop or threading.Event()
        self._sleep = sleep
        headers = {k: v.get_secret_value() for k, v in config.headers.items()}
        if config.token is not None:
            headers[config.token_header] = config.token_prefix + config.token.get_secret_value()
        timeout = httpx.Timeout(config.timeout.total_seconds(), connect=CONNECT_SECONDS)
        self._api = httpx.Client(base_url=config.base_url, headers=headers, timeout=timeout,
                                 limits=LIMITS, follow_redirects=False)  # fmt: skip
        self._files = httpx.Client(timeout=timeout, limits=LIMITS, follow_redirects=True)

    def close(self) -> None:
        self._api.close()
        self._files.close()

    # -- the API --------------------------------------------------------------------------------

    def request_export(self, method: str, path: str, body: dict[str, Any]) -> str:
        """Ask for an export; its id."""
        answer = self._call(method, path, body=body)
        export_id = answer.get(self.config.export_id_field) if isinstance(answer, dict) else None
        if not isinstance(export_id, str | int) or not str(export_id):
            field = self.config.export_id_field
            raise TerminalSourceError(
                f"{self.name}: {path} answered without an export id in {field!r}: "
                f"{redact.shorten(redact.redact(str(answer)), QUOTED_BYTES)}"
            )
        return str(export_id)

    def status(self, export_id: str) -> Status:
        spec = self.config.status
        answer = self._call("GET", spec.path, params={spec.id_param: export_id})
        value = str(answer.get(spec.field, "")) if isinstance(answer, dict) else ""
        url = answer.get(spec.url_field) if isinstance(answer, dict) else None
        for state, values in (("complete", spec.complete), ("errored", spec.errored),
                              ("pending", spec.requested + spec.in_progress)):  # fmt: skip
            if value in values:
                if state == "complete" and not isinstance(url, str):
                    raise TerminalSourceError(
                        f"{self.name}: export {export_id} is {value!r} without a "
                        f"{spec.url_field!r} to download"
                    )
                return Status(state, value, url if isinstance(url, str) else None)
        raise TerminalSourceError(
            f"{self.name}: export {export_id} has status {value!r}, none of the values set in "
            f"sources.{self.name}.status (requested, in_progress, complete, errored)"
        )

    def wait_complete(self, export_id: str) -> Status:
        """Poll until the export is complete or errored, waiting longer each time, for at most
        `poll.timeout`."""
        poll = self.config.poll
        ends = time.monotonic() + poll.timeout.total_seconds()
        wait = poll.interval.total_seconds()
        while True:
            status = self.status(export_id)
            if status.state != "pending":
                return status
            if time.monotonic() + wait > ends:
                raise TransientSourceError(
                    f"{self.name}: export {export_id} is still {status.value!r} after "
                    f"{describe(poll.timeout.total_seconds())} (poll.timeout); the next run "
                    "polls the same export again"
                )
            self._wait(wait)
            wait = min(wait * poll.backoff, poll.max_interval.total_seconds())

    # -- the file -------------------------------------------------------------------------------

    def download(self, url: str, dest: Path) -> bool:
        """Stream the file at `url` into `dest`: True, or False when the link has expired."""
        where = _without_query(url)
        for attempt in range(1, self.config.retry.attempts + 1):
            self._check_stop()
            deadline = Deadline(self.config.deadline.total_seconds(), self.stop)
            try:
                with deadline:
                    outcome = self._download_once(url, dest, deadline)
            except httpx.HTTPError as error:
                if deadline.cancelled:
                    raise Cancelled(f"{self.name}: download cancelled") from None
                reason = self._deadline_passed() if deadline.ended else type(error).__name__
                outcome = _Retry(reason, None)
            except OSError as error:
                raise TransientSourceError(
                    f"{self.name}: cannot write the download to {dest.parent} ({error.strerror})"
                ) from None
            if not isinstance(outcome, _Retry):
                return outcome
            self._back_off(attempt, outcome, f"download {where}")
        raise AssertionError("unreachable")

    def _download_once(self, url: str, dest: Path, deadline: Deadline) -> bool | _Retry:
        timeout = deadline.timeout(self.config.timeout.total_seconds(), CONNECT_SECONDS)
        with self._files.stream("GET", url, timeout=timeout,
                                extensions=deadline.extensions) as response:  # fmt: skip
            status = response.status_code
            if status == 200:
                written = 0
                with dest.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        self._check_stop()
                        out.write(chunk)
                        written += len(chunk)
                expected = response.headers.get("content-length")
                encoded = "content-encoding" in response.headers
                if expected is not None and not encoded and int(expected) != written:
                    return _Retry(f"connection closed after {written} of {expected} bytes", None)
                return True
            if status in EXPIRED:
                log.warning("%s: the download link answered HTTP %d: expired", self.name, status)
                return False
            if status in RETRYABLE:
                return _Retry(f"HTTP {status}", _retry_after(response.headers.get("retry-after")))
            raise TerminalSourceError(
                f"{self.name}: unexpected HTTP {status} downloading {_without_query(url)}: "
                f"{_quoted(response)}"
            )

    # -- calls, retries -------------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:  # fmt: skip
        """One API call's JSON answer, retried while that is worth it."""
        for attempt in range(1, self.config.retry.attempts + 1):
            self._check_stop()
            deadline = Deadline(self.config.deadline.total_seconds(), self.stop)
            try:
                with deadline:
                    outcome = self._call_once(method, path, body, params, deadline)
            except httpx.HTTPError as error:
                if deadline.cancelled:
                    raise Cancelled(f"{self.name}: {path} cancelled") from None
                reason = self._deadline_passed() if deadline.ended else type(error).__name__
                outcome = _Retry(reason, None)
            if not isinstance(outcome, _Retry):
                return outcome
            self._back_off(attempt, outcome, path)
        raise AssertionError("unreachable")

    def _call_once(
        self, method: str, path: str, body: dict[str, Any] | None,
        params: dict[str, str] | None, deadline: Deadline,
    ) -> Any:  # fmt: skip
        timeout = deadline.timeout(self.config.timeout.total_seconds(), CONNECT_SECONDS)
        with self._api.stream(
            method, path, json=body if method != "GET" else None, params=params,
            timeout=timeout, extensions=deadline.extensions,
        ) as response:  # fmt: skip
            return self._answer(path, params, response)

    def _answer(self, path: str, params: dict[str, str] | None, response: httpx.Response) -> Any:
        """An API answer's JSON (read up to `MAX_ANSWER` bytes), a `_Retry`, or an error."""
        status = response.status_code
        if status == 200:
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_ANSWER:
                    raise TerminalSourceError(
                        f"{self.name}: {path} answered more than {MAX_ANSWER:,} bytes; "
                        "expected a short JSON object"
                    )
            try:
                return json.loads(data)
            except ValueError:
                text = redact.shorten(data.decode("utf-8", "replace"), QUOTED_BYTES)
                raise TerminalSourceError(
                    f"{self.name}: {path} answered with something else than JSON: {text}"
                ) from None
        if status in RETRYABLE:
            return _Retry(f"HTTP {status}", _retry_after(response.headers.get("retry-after")))
        if status in (401, 403):
            raise TerminalSourceError(
                f"{self.name}: the API refused the credentials (HTTP {status} for {path}); "
                f"check the token of sources.{self.name} in the project's environment"
            )
        if status == 404 and params is not None:
            raise UnknownExport(f"{self.name}: {path}: the API does not know {params}")
        raise TerminalSourceError(f"{self.name}: HTTP {status} for {path}: {_quoted(response)}")

    def _back_off(self, attempt: int, outcome: _Retry, what: str) -> None:
        if attempt == self.config.retry.attempts:
            raise TransientSourceError(
                f"{self.name}: {what} still failing after {attempt} attempts "
                f"({outcome.reason}); the watermark is unchanged, run again later"
            )
        delay = self._delay(attempt, outcome.retry_after)
        log.warning("%s: %s: %s, retry %d in %.2fs", self.name, what, outcome.reason, attempt,
                    delay)  # fmt: skip
        self._wait(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        retry = self.config.retry
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_CEILING)
        cap = retry.max_delay.total_seconds()
        backoff = min(cap, retry.base_delay.total_seconds() * 2 ** (attempt - 1))
        return random.uniform(backoff / 2, backoff)

    def _wait(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Cancelled(f"{self.name}: stopped while waiting")

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Cancelled(f"{self.name}: stopped")

    def _deadline_passed(self) -> str:
        seconds = self.config.deadline.total_seconds()
        return f"no complete answer within the {describe(seconds)} deadline of sources.{self.name}"


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _quoted(response: httpx.Response) -> str:
    """The start of an answer's body, bounded and redacted."""
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= 16 * QUOTED_BYTES:
                break
    except httpx.HTTPError:
        pass
    text = data.decode("utf-8", "replace").strip()
    return redact.shorten(redact.redact(" ".join(text.split())), QUOTED_BYTES)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(when.tzinfo)).total_seconds())
    except (TypeError, ValueError):
        return None
