"""The redactor on its own: which forms of a secret it finds, and what it leaves alone."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from anchorflow import redact

pytestmark = [pytest.mark.hostile, pytest.mark.unit]


def test_a_secret_is_redacted_in_its_wire_forms_and_a_short_value_is_left_alone() -> None:
    secret = "Zq9/pa ss+word"
    redact.add_secret(secret)
    redact.add_basic_auth("user-x1", secret)
    redact.add_secret("abc")  # too short to redact without mangling every message
    basic = base64.b64encode(f"user-x1:{secret}".encode()).decode()
    text = f"a {secret} b {quote(secret, safe='')} c Basic {basic} d abc"
    assert redact.redact(text) == "a *** b *** c Basic *** d abc"


def test_a_message_cut_short_never_ends_in_the_start_of_a_secret() -> None:
    redact.add_secret("tail-secret-5e2d9")
    text = "x" * 90 + "tail-secret-5e2d9"
    assert redact.shorten(text, 100) == "x" * 90 + "***"
    assert redact.shorten("short tail-secret-5e2d9", 100) == "short ***"
