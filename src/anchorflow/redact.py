"""Secrets out of every text that leaves the process: printed, logged, stored, or alerted.

A process-wide register of secret values, fed when a project is loaded (`add_project`): every
`SecretStr` of the configuration, every value substituted from an environment variable whose
name says it is a secret (`*KEY*`, `*SECRET*`, `*TOKEN*`, `*PASSWORD*`, ...), the password of a
URL that carries one, and the forms these take on the wire: URL-encoded, JSON-escaped, and the
HTTP Basic credentials (`base64("<a>:<b>")`) of every two secrets of one config section, which
is how the Amplitude client sends `api_key` and `secret_key`. `redact(text)` replaces each by
`***`, longest first. Values shorter than `MIN_LENGTH` characters are not registered: replacing
every `ab` in a message would make it unreadable, and such a value protects nothing anyway.

The exits call it: the CLI's error lines and logging, the journal's run details and alert
records, alert payloads. Sources redact an upstream's answer before quoting it, as a second
line of defence.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from pydantic import BaseModel, SecretStr

MASK = "***"
MIN_LENGTH = 4
SECRET_NAME = re.compile(
    r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|PASS$|PWD|SALT|AUTH|CREDENTIAL|PRIVATE|WEBHOOK", re.I
)

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def add_secret(value: str) -> None:
    """Redact `value` from now on, with its URL-encoded and JSON-escaped forms."""
    if len(value) < MIN_LENGTH:
        return
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    forms.add(json.dumps(value)[1:-1])
    _register(forms)


def add_basic_auth(user: str, password: str) -> None:
    """Redact the `Authorization: Basic` credentials built from `user` and `password`."""
    for pair in (f"{user}:{password}", f"{password}:{user}"):
        _register({base64.b64encode(pair.encode()).decode()})


def add_project(config: BaseModel, substituted: Iterable[str] = ()) -> None:
    """Register every secret of a loaded project, and `substituted` environment values."""
    for value in substituted:
        add_secret(value)
    _walk(config)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    pattern = _pattern
    return text if pattern is None or not text else pattern.sub(MASK, text)


def shorten(text: str, limit: int) -> str:
    """`text` redacted, then cut to `limit` characters without leaving the start of a secret
    at the cut (which `redact` would no longer recognise)."""
    short = redact(text)[:limit]
    if len(short) < limit:
        return short
    with _lock:
        secrets = list(_secrets)
    for secret in secrets:
        for size in range(min(len(secret) - 1, len(short)), MIN_LENGTH - 1, -1):
            if short.endswith(secret[:size]):
                return short[:-size] + MASK
    return short


def redact_value(value: Any) -> Any:
    """`redact` applied to every string inside lists and dicts (an alert's details)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def is_secret_variable(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    return bool(SECRET_NAME.search(name))


class RedactingFilter(logging.Filter):
    """Redacts a log record's message (and its traceback) before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = redact(message), ()
        return True


def _walk(node: Any) -> None:
    if isinstance(node, BaseModel):
        secrets = []
        for name in type(node).model_fields:
            value = getattr(node, name)
            if isinstance(value, SecretStr):
                secrets.append(value.get_secret_value())
            else:
                _walk(value)
        for secret in secrets:
            add_secret(secret)
            _add_url_password(secret)
        for user, password in itertools.combinations(secrets, 2):
            add_basic_auth(user, password)
    elif isinstance(node, SecretStr):  # inside a mapping or a list (`headers:` of a source)
        add_secret(node.get_secret_value())
        _add_url_password(node.get_secret_value())
    elif isinstance(node, dict):
        for value in node.values():
            _walk(value)
    elif isinstance(node, list | tuple):
        for value in node:
            _walk(value)
    elif isinstance(node, str):
        _add_url_password(node)


def _add_url_password(text: str) -> None:
    if "://" not in text or "@" not in text:
        return
    try:
        password = urlsplit(text).password
    except ValueError:
        return
    if password:
        add_secret(password)


def _register(forms: set[str]) -> None:
    global _pattern
    with _lock:
        new = {f for f in forms if len(f) >= MIN_LENGTH} - _secrets
        if not new:
            return
        _secrets.update(new)
        ordered = sorted(_secrets, key=len, reverse=True)  # the longest form wins
        _pattern = re.compile("|".join(map(re.escape, ordered)))


_DSN_PASSWORD = re.compile(r"(?i)(://[^:/@\s]*:)[^@\s]*(@)|(password\s*=\s*)('[^']*'|\S+)")


def redact_dsn(dsn: str) -> str:
    """A connection string without its password (URL or key=value form), and without any
    registered secret."""
    return redact(
        _DSN_PASSWORD.sub(lambda m: f"{m[1]}{MASK}{m[2]}" if m[1] else f"{m[3]}{MASK}", dsn)
    )
