"""Webhook signatures, one function per preset: who may deliver to a webhook source.

Every check compares with `hmac.compare_digest` (no early exit that times out the secret), and
a refusal's reason names the header, never the secret or the expected value. `sign` is the
sender's side, for the tests, the benchmark and anyone wiring a sender of their own.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from anchorflow.sources.webhook.config import WebhookConfig

INTERCOM_HEADER = "X-Hub-Signature"
WISTIA_HEADER = "X-Wistia-Signature"


@dataclass(frozen=True)
class Delivery:
    """What a signature is checked against: the raw body, the headers and the clock."""

    body: bytes
    headers: Mapping[str, str]  # by lower-case name, as ASGI gives them
    now: float  # Unix time


Verifier = Callable[[WebhookConfig, Delivery], str | None]


def _digest(secret: str, message: bytes, algorithm: str) -> str:
    return hmac.new(secret.encode(), message, algorithm).hexdigest()


def _same(expected: str, given: str) -> bool:
    # A header is Latin-1 text; compare bytes, so a non-ASCII header is a mismatch, not an error.
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("latin-1"))


def _intercom(config: WebhookConfig, delivery: Delivery) -> str | None:
    given = delivery.headers.get(INTERCOM_HEADER.lower())
    if not given:
        return f"no {INTERCOM_HEADER} header"
    scheme, _, value = given.partition("=")
    expected = _digest(config.secret.get_secret_value(), delivery.body, "sha1")
    if scheme.strip().lower() != "sha1" or not _same(expected, value):
        return f"{INTERCOM_HEADER} does not match the body"
    return None


def _wistia(config: WebhookConfig, delivery: Delivery) -> str | None:
    given = delivery.headers.get(WISTIA_HEADER.lower())
    if not given:
        return f"no {WISTIA_HEADER} header"
    if not _same(_digest(config.secret.get_secret_value(), delivery.body, "sha256"), given):
        return f"{WISTIA_HEADER} does not match the body"
    return None


def _hmac(config: WebhookConfig, delivery: Delivery) -> str | None:
    given = delivery.headers.get(config.header.lower())
    stamp = delivery.headers.get(config.timestamp_header.lower(), "").strip()
    if not given:
        return f"no {config.header} header"
    if not stamp.isascii() or not stamp.isdigit():
        return f"no Unix time in {config.timestamp_header}"
    if abs(delivery.now - int(stamp)) > config.tolerance.total_seconds():
        return f"{config.timestamp_header} is outside the tolerance of {config.tolerance}"
    message = stamp.encode() + b"." + delivery.body
    value = given.split("=", 1)[1] if given.lower().startswith("sha256=") else given
    if not _same(_digest(config.secret.get_secret_value(), message, "sha256"), value):
        return f"{config.header} does not match the timestamp and body"
    return None


VERIFIERS: dict[str, Verifier] = {"intercom": _intercom, "wistia": _wistia, "hmac": _hmac}


def refusal(config: WebhookConfig, delivery: Delivery) -> str | None:
    """Why `delivery` is not signed by the source's secret, or None when it is."""
    return VERIFIERS[config.preset](config, delivery)


def sign(config: WebhookConfig, body: bytes, now: float) -> dict[str, str]:
    """The headers a sender of `config.preset` adds to `body`."""
    secret = config.secret.get_secret_value()
    if config.preset == "intercom":
        return {INTERCOM_HEADER: "sha1=" + _digest(secret, body, "sha1")}
    if config.preset == "wistia":
        return {WISTIA_HEADER: _digest(secret, body, "sha256")}
    stamp = str(int(now))
    signature = _digest(secret, stamp.encode() + b"." + body, "sha256")
    return {config.header: signature, config.timestamp_header: stamp}
