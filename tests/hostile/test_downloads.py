"""Downloads hold raw PII: they go into the project's own state directory, never the system's
temp directory, and what a killed run left there is removed at the next start."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from anchorflow.config import load_project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.run import Pipeline
from tests.anchor.pipeline_project import ANCHORFLOW, ENV, cli_env
from tests.builders import amplitude_source, build_project
from tests.conftest import API_KEY, SECRET_KEY, available_at

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

HOURS = 6


class StallingExport:
    """Amplitude's export endpoint on loopback that sends the first half of a real export, then
    stalls (the connection stays open) until released."""

    def __init__(self, body: bytes) -> None:
        self.sending = threading.Event()
        self.release = threading.Event()
        stalling = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                stalling.sending.set()
                stalling.release.wait(120)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stalling(emulator: AmplitudeEmulator) -> Iterator[StallingExport]:
    export = httpx.get(
        f"{emulator.base_url}/api/2/export",
        params={"start": "20240301T00", "end": f"20240301T{HOURS - 1:02d}"},
        auth=(API_KEY, SECRET_KEY),
    )
    assert export.status_code == 200
    server = StallingExport(export.content)
    yield server
    server.close()


def wait_for(found: Any, what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = found()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_run_killed_mid_download_leaves_nothing_outside_the_project_and_the_next_start_cleans_up(
    tmp_path: Path, stalling: StallingExport, emulator: AmplitudeEmulator, stop: signal.Signals
) -> None:
    root = tmp_path / "project"
    build_project(root, sources={"amplitude": amplitude_source(stalling.url)})
    system_tmp = tmp_path / "system-tmp"  # where tempfile would put files by default
    system_tmp.mkdir()
    env = {**cli_env(), "TMPDIR": str(system_tmp)}
    now = available_at(HOURS).strftime("%Y%m%dT%H")
    process = subprocess.Popen(
        [str(ANCHORFLOW), "run", "--project", str(root), "--now", now],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert stalling.sending.wait(60), "the run never asked for the export"
        work = root / ".anchorflow" / "work"
        (download,) = wait_for(lambda: list(work.glob("*/export.zip")), "the download's file")
        process.send_signal(stop)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0
    assert files_under(system_tmp) == []  # nothing of the download outside the project
    if stop == signal.SIGKILL:
        assert download.exists()  # a killed process cleans nothing: the next start does

    data = yaml.safe_load((root / "anchorflow.yml").read_text())
    data["sources"]["amplitude"]["base_url"] = emulator.base_url
    (root / "anchorflow.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    project = load_project(root, env=ENV)
    with Pipeline(project, now=available_at(HOURS)) as pipeline:
        pipeline.warehouse.acquire()  # what a writing command's first statement does
        assert not download.exists()  # removed on opening, before anything is fetched
        summary = pipeline.run()
    assert len(summary.windows) == HOURS and summary.rows > 0
    assert files_under(work) == []
    assert files_under(system_tmp) == []


def test_a_new_project_ignores_the_state_directory_in_git(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ANCHORFLOW), "init", str(tmp_path / "new")], env=cli_env(), capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ignored = (tmp_path / "new" / ".gitignore").read_text().splitlines()
    assert {".anchorflow/", "*.duckdb", "*.duckdb.wal", ".env"} <= set(ignored)
    repository = Path(__file__).resolve().parents[2] / ".gitignore"
    assert ".anchorflow/" in repository.read_text().splitlines()
