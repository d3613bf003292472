"""Secrets never leave the process: an upstream that echoes the credentials it was sent finds
them redacted in stderr, in `meta.runs`, in `meta.alerts` and in the alert a receiver gets."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.builders import amplitude_source, project_data, write_project
from tests.conftest import table_rows
from tests.hostile.upstreams import Upstream
from tests.receiver import Receiver, running_receiver

pytestmark = [pytest.mark.hostile, pytest.mark.integration]
receiver = pytest.fixture(running_receiver)

ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
API_KEY = "k3y-0f-7he-pr0ject"
SECRET = "s3cr3t/with+plus=and/slash"  # its URL-encoded form differs from it
BASIC = base64.b64encode(f"{API_KEY}:{SECRET}".encode()).decode()
FORMS = [SECRET, API_KEY, BASIC, quote(SECRET, safe="")]


@pytest.fixture
def echoing() -> Iterator[Upstream]:
    upstream = Upstream("echo")
    yield upstream
    upstream.close()


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AMPLITUDE_", "FORCE_"))}
    return subprocess.run(
        [str(ANCHORFLOW), *args], env={**base, "NO_COLOR": "1", "COLUMNS": "200", **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_credentials_an_upstream_echoes_are_redacted_at_every_exit(
    tmp_path: Path, echoing: Upstream, receiver: Receiver
) -> None:
    source = amplitude_source(echoing.base_url, hours_per_request=1)
    alerts = [{"kind": "webhook", "url": receiver.url}, {"kind": "log"}]
    root = write_project(tmp_path, project_data(sources={"amplitude": source}, alerts=alerts))
    env = {"AMPLITUDE_API_KEY": API_KEY, "AMPLITUDE_SECRET_KEY": SECRET}
    ran = cli("run", "--project", str(root), "--now", "20240301T06", "-v", env=env)

    assert ran.returncode == 1, ran.stderr
    assert echoing.arrived  # the proxy was asked, and answered with the credentials
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert (
        len(errors) == 1 and "HTTP 400" in errors[0] and "bad request; got Basic ***" in errors[0]
    )
    (detail,) = table_rows(root / "warehouse.duckdb", "SELECT detail FROM meta.runs")[0]
    assert "HTTP 400" in detail and "***" in detail
    alerts_rows = table_rows(root / "warehouse.duckdb", "SELECT * FROM meta.alerts")
    assert len(alerts_rows) == 2
    assert [body["kind"] for body in receiver.delivered] == ["run_failed"]
    texts = [ran.stdout, ran.stderr, detail, repr(alerts_rows), repr(receiver.bodies)]
    for form in FORMS:
        for text in texts:
            assert form not in text
