"""What the webhook tests share: a project with one source of each preset, a real `anchorflow
serve` in its own process on a free loopback port, signed deliveries, and the published chunks
read back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from anchorflow.config import Project
from anchorflow.serve.signatures import sign
from anchorflow.sources.chunks import SEALED, TEMPORARY
from anchorflow.sources.webhook.config import WebhookConfig
from tests.builders import build_project

ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
SECRET = "hook-secret-7f3a"
ENV = {"HOOK_SECRET": SECRET}
SOURCES: dict[str, Any] = {
    "intercom": {"kind": "webhook", "preset": "intercom", "secret": "${HOOK_SECRET}"},
    "wistia": {"kind": "webhook", "preset": "wistia", "secret": "${HOOK_SECRET}"},
    "orders": {
        "kind": "webhook",
        "preset": "hmac",
        "secret": "${HOOK_SECRET}",
        "dedup": "delivery.id",
        "max_body": 4096,
    },
}


def hooks_project(root: Path, **overrides: Any) -> Project:
    sources = {name: {**config, **overrides.get(name, {})} for name, config in SOURCES.items()}
    return build_project(root, sources=sources, staging={}, env=ENV)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeProcess:
    """`anchorflow serve` for a project, in its own process."""

    def __init__(self, root: Path, port: int | None = None, extra: list[str] | None = None) -> None:
        """`extra`: more options; by default the loader is off (`--load-every 0`), so the
        published chunks stay for the tests to read."""
        self.extra = ["--load-every", "0"] if extra is None else extra
        self.root = root
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self, deadline: float = 30.0) -> ServeProcess:
        env = {k: v for k, v in os.environ.items() if k != "ANCHORFLOW_SERVE_TOKEN"}
        self.process = subprocess.Popen(
            [
                str(ANCHORFLOW),
                "serve",
                "--project",
                str(self.root),
                "--port",
                str(self.port),
                *self.extra,
            ],
            env={**env, **ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        until = time.monotonic() + deadline
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.process.communicate()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("serve did not answer /health in time")

    def stop(self) -> subprocess.CompletedProcess[str]:
        """SIGTERM, and wait for the graceful stop."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=60)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, out, err)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.communicate(timeout=30)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


def signed(
    project: Project, source: str, payload: Any, now: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body of `payload` and its headers, signed as the source's sender would."""
    config = project.sources[source]
    assert isinstance(config, WebhookConfig)
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **sign(config, body, now or time.time())}
    return body, headers


def chunk_dir(project: Project, source: str) -> Path:
    config = project.sources[source]
    return project.root / ".anchorflow" / "landing" / source / config.stream


def published_records(project: Project, source: str) -> list[dict[str, Any]]:
    """Every record in the source's published chunks, in chunk order."""
    records = []
    directory = chunk_dir(project, source)
    for path in sorted(directory.glob(f"*{SEALED}")):
        records += [json.loads(line) for line in path.read_bytes().splitlines()]
    return records


def leftovers(project: Project, source: str) -> list[Path]:
    return sorted(chunk_dir(project, source).glob(f"*{TEMPORARY}"))


def wait_for(condition: Any, deadline: float = 60.0) -> None:
    until = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > until:
            raise AssertionError("the condition was not met in time")
        time.sleep(0.05)


def stored_lines(project: Project, source: str) -> int:
    """Records written so far, published or in the open chunk."""
    directory = chunk_dir(project, source)
    files = [*directory.glob(f"*{SEALED}"), *directory.glob(f"*{TEMPORARY}")]
    return sum(path.read_bytes().count(b"\n") for path in files)
