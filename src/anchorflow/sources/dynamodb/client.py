"""DynamoDB's `Scan` call over HTTP: signed by botocore, sent by httpx, the page kept as bytes.

boto3's client would parse every page into Python objects, attribute by attribute, and its
timeouts bound each socket read, not a call. So the request is built and SigV4-signed with
botocore (its credentials and signer, nothing else) and sent with httpx under a `Deadline`:
every call has a total deadline, and the page's raw JSON goes to `items.py` whole.

Throttling (`ProvisionedThroughputExceededException`, `ThrottlingException`,
`RequestLimitExceeded`), 5xx, timeouts and broken connections are retried with bounded
exponential backoff and jitter (`retry:`); anything else fails at once with DynamoDB's own
message. Keys are only ever in the signature, and an answer quoted in an error is redacted.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

from anchorflow import redact
from anchorflow.deadline import LIMITS, Deadline, describe
from anchorflow.errors import SourceError, TerminalSourceError, TransientSourceError

try:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials, ReadOnlyCredentials
    from botocore.session import get_session
except ImportError:  # an optional dependency: say how to get it, in one line
    raise TerminalSourceError(
        "a dynamodb source needs botocore: pip install 'anchorflow[dynamodb]'"
    ) from None
from anchorflow.sources.dynamodb.config import DynamoDBConfig

log = logging.getLogger(__name__)
TARGET = "DynamoDB_20120810.Scan"
THROTTLES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
}
REFUSED = {
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
}
CONNECT_SECONDS = 10.0
QUOTED_BYTES = 300


class Cancelled(SourceError):
    """Another segment failed or the consumer stopped: this scan ends quietly."""


@dataclass(frozen=True)
class _Retry:
    reason: str


class ScanClient:
    """Scan calls of one table, shared by the segments' threads (httpx clients are)."""

    def __init__(self, name: str, config: DynamoDBConfig) -> None:
        self.name = name
        self.config = config
        self._credentials = _credentials(config)
        self._http = httpx.Client(
            timeout=httpx.Timeout(config.timeout.total_seconds(), connect=CONNECT_SECONDS),
            limits=LIMITS,  # a fresh connection per call, which its deadline can cut
        )

    def close(self) -> None:
        self._http.close()

    def request(self, segment: int, start_key: dict[str, Any] | None) -> dict[str, Any]:
        """The Scan request's body for one page of `segment`."""
        config = self.config
        body: dict[str, Any] = {
            "TableName": config.table,
            "Segment": segment,
            "TotalSegments": config.segments,
            "ConsistentRead": config.consistent_read,
        }
        if config.page_size is not None:
            body["Limit"] = config.page_size
        if config.attributes is not None:
            body.update(projection(config.attributes))
        if start_key is not None:
            body["ExclusiveStartKey"] = start_key
        return body

    def scan_page(self, body: dict[str, Any], stop: threading.Event) -> bytes:
        """One page's raw JSON; throttles and transient failures retried, bounded."""
        payload = json.dumps(body).encode()
        attempts = self.config.retry.attempts
        for attempt in range(1, attempts + 1):
            if stop.is_set():
                raise Cancelled(f"{self.name}: scan cancelled")
            outcome = self._attempt(payload, stop)
            if isinstance(outcome, bytes):
                return outcome
            if attempt == attempts:
                raise TransientSourceError(
                    f"{self.name}: Scan of table {self.config.table} still failing after "
                    f"{attempt} attempts ({outcome.reason}); nothing was committed, run again later"
                )
            delay = self._delay(attempt)
            log.warning(
                "%s: Scan: %s, retry %d in %.2fs", self.name, outcome.reason, attempt, delay
            )
            stop.wait(delay)
        raise AssertionError("unreachable")

    def _attempt(self, payload: bytes, stop: threading.Event) -> bytes | _Retry:
        deadline = Deadline(self.config.deadline.total_seconds(), stop)
        try:
            with deadline:
                headers = self._signed(payload)
                timeout = deadline.timeout(self.config.timeout.total_seconds(), CONNECT_SECONDS)
                response = self._http.post(
                    self.config.url,
                    content=payload,
                    headers=headers,
                    timeout=timeout,
                    extensions=deadline.extensions,
                )
        except httpx.HTTPError as error:  # timeouts, refused or broken connections
            if deadline.cancelled:
                raise Cancelled(f"{self.name}: scan cancelled") from None
            if deadline.ended:
                seconds = describe(self.config.deadline.total_seconds())
                return _Retry(f"no complete answer within the {seconds} deadline")
            return _Retry(f"{type(error).__name__} from {self.config.url}")
        if response.status_code == 200:
            return _checked(response)
        return self._failure(response)

    def _failure(self, response: httpx.Response) -> _Retry:
        status = response.status_code
        kind, message = _error(response.content)
        table = self.config.table
        if kind in THROTTLES or status >= 500:
            return _Retry(f"HTTP {status} {kind or ''}".strip())
        if kind in REFUSED or status in (401, 403):
            raise TerminalSourceError(
                f"{self.name}: DynamoDB refused the credentials ({kind or status}); check "
                "access_key_id and secret_access_key in the project's environment"
            )
        if kind == "ResourceNotFoundException":
            raise TerminalSourceError(
                f"{self.name}: table {table} not found in {self.config.region} "
                f"({self.config.url}); check sources.{self.name}.table and region"
            )
        raise TerminalSourceError(
            f"{self.name}: Scan of table {table} failed: HTTP {status} {kind}: {message}"
        )

    def _signed(self, payload: bytes) -> dict[str, str]:
        request = AWSRequest(
            method="POST",
            url=self.config.url + "/",
            data=payload,
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": TARGET,
            },
        )
        SigV4Auth(self._frozen(), "dynamodb", self.config.region).add_auth(request)
        return dict(request.headers.items())

    def _frozen(self) -> ReadOnlyCredentials:
        frozen: ReadOnlyCredentials = self._credentials.get_frozen_credentials()
        return frozen

    def _delay(self, attempt: int) -> float:
        retry = self.config.retry
        cap = retry.max_delay.total_seconds()
        backoff = min(cap, retry.base_delay.total_seconds() * 2 ** (attempt - 1))
        return random.uniform(backoff / 2, backoff)  # "equal jitter": spread, never too short


def projection(paths: list[str]) -> dict[str, Any]:
    """ProjectionExpression with a placeholder for every name, so any name (a reserved word,
    a dash) is safe: `profile.city` → `#a1.#a2`."""
    names: dict[str, str] = {}
    expressions = []
    for path in paths:
        steps = []
        for step in path.split("."):
            placeholder = next((k for k, v in names.items() if v == step), None)
            if placeholder is None:
                placeholder = f"#a{len(names)}"
                names[placeholder] = step
            steps.append(placeholder)
        expressions.append(".".join(steps))
    return {"ProjectionExpression": ", ".join(expressions), "ExpressionAttributeNames": names}


def _credentials(config: DynamoDBConfig) -> Credentials:
    if config.access_key_id is not None and config.secret_access_key is not None:
        token = config.session_token.get_secret_value() if config.session_token else None
        return Credentials(
            config.access_key_id.get_secret_value(),
            config.secret_access_key.get_secret_value(),
            token,
        )
    found = get_session().get_credentials()  # the environment, ~/.aws, an instance role
    if found is None:
        raise TerminalSourceError(
            "no AWS credentials: set access_key_id and secret_access_key from ${VAR}"
        )
    return found


def _checked(response: httpx.Response) -> bytes | _Retry:
    """The page, unless DynamoDB's CRC32 of it says it was damaged on the way (the header is
    over the bytes sent, so a compressed answer is left to its own checksum)."""
    expected = response.headers.get("x-amz-crc32")
    body = response.content
    if expected is None or "content-encoding" in response.headers:
        return body
    if str(zlib.crc32(body)) != expected.strip():
        return _Retry("the page's CRC32 does not match x-amz-crc32")
    return body


def _error(body: bytes) -> tuple[str, str]:
    """DynamoDB's error type (without its namespace) and message, redacted and bounded."""
    try:
        parsed = json.loads(body[: 16 * QUOTED_BYTES])
        kind = str(parsed.get("__type", "")).rsplit("#", 1)[-1]
        message = str(parsed.get("message") or parsed.get("Message") or "")
    except (ValueError, AttributeError):
        kind, message = "", body[:QUOTED_BYTES].decode("utf-8", "replace")
    return kind, redact.shorten(" ".join(redact.redact(message).split()), QUOTED_BYTES)
