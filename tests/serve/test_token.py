"""The serve token: required beyond loopback, checked on every request but a signed webhook."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from anchorflow.errors import ConfigError
from anchorflow.serve.app import create_app
from anchorflow.serve.server import serve_token
from tests.serve.hooks import ANCHORFLOW, ENV, free_port, hooks_project, signed, wait_for

TOKEN = "serve-token-91c2"


@pytest.mark.unit
def test_binding_beyond_loopback_needs_a_token() -> None:
    assert serve_token("127.0.0.1", {}) is None
    assert serve_token("::1", {}) is None
    assert serve_token("localhost", {"ANCHORFLOW_SERVE_TOKEN": TOKEN}) == TOKEN
    assert serve_token("0.0.0.0", {"ANCHORFLOW_SERVE_TOKEN": TOKEN}) == TOKEN
    with pytest.raises(ConfigError, match="ANCHORFLOW_SERVE_TOKEN"):
        serve_token("0.0.0.0", {})
    with pytest.raises(ConfigError, match="ANCHORFLOW_SERVE_TOKEN"):
        serve_token("10.1.2.3", {"ANCHORFLOW_SERVE_TOKEN": "  "})


@pytest.mark.e2e
def test_serve_refuses_a_public_host_without_a_token(tmp_path: Path) -> None:
    project = hooks_project(tmp_path)
    result = subprocess.run(
        [str(ANCHORFLOW), "serve", "--project", str(project.root), "--host", "0.0.0.0"],
        env={
            **{k: v for k, v in __import__("os").environ.items() if k != "ANCHORFLOW_SERVE_TOKEN"},
            **ENV,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "ANCHORFLOW_SERVE_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def guarded_server(tmp_path: Path) -> Iterator[tuple[str, object]]:
    project = hooks_project(tmp_path)
    port = free_port()
    config = uvicorn.Config(
        create_app(project, token=TOKEN), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: server.started)
    yield url, project
    server.should_exit = True
    thread.join(timeout=30)


@pytest.mark.integration
def test_every_request_but_a_webhook_needs_the_token(guarded_server: tuple[str, object]) -> None:
    url, project = guarded_server
    assert httpx.get(url + "/health", timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.get(url + "/health", headers=wrong, timeout=5).status_code == 401
    right = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url + "/health", headers=right, timeout=5).status_code == 200
    body, headers = signed(project, "intercom", {"id": f"n-{time.time()}"})  # type: ignore[arg-type]
    assert httpx.post(url + "/hooks/intercom", content=body, headers=headers).status_code == 200
