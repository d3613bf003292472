"""The page tests' fixtures: a small loaded demo warehouse (built once a session), a real
`anchorflow serve` over a copy of it, and Debian's chromium driven by Playwright.

`demo_warehouse`: the demo project (examples/product_analytics) with 26 hours of the tests'
synthetic Amplitude traffic, two days of cost files and of the marketing traffic (so the fraud
rules have a report), loaded through the real pipeline; DuckDB. Tests that change it serve a
copy (`served_project`), which `server` does.

`server`: `anchorflow serve` in its own process on a free loopback port over a copy of the
demo (readers and loader off, so nothing runs unless a test asks), its base URL; SIGTERM at
teardown. `serve_process(root, *options, token=...)` starts another (another address, a token).

`browser_page`: a Playwright page of a headless /usr/bin/chromium with a fresh profile; every
console error and uncaught exception fails the test; `browser_page.screenshot(name)` writes
tests/artifacts/screenshots/<name>.png (gitignored).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from anchorflow.config import Project, load_project
from anchorflow.dev.synth.marketing import MarketingSpec, write_marketing
from tests.anchor.pipeline_project import emulator_running
from tests.builders import ENV as AMPLITUDE_ENV
from tests.conftest import available_at
from tests.publish.demo import demo_project
from tests.serve.hooks import ANCHORFLOW, free_port

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
HOURS = 26
FEEDS = ("amplitude", "costs", "clicks", "signups", "app")  # the others are made empty
MARKETING = MarketingSpec(
    seed=5, start=datetime(2024, 3, 1, tzinfo=UTC), days=2, clicks_per_day=1500
)
COPY_IGNORE = shutil.ignore_patterns("*.writer.lock", ".anchorflow")


def _load_demo(root: Path) -> Project:
    from anchorflow.run import Pipeline
    from anchorflow.stage.tables import prepare_tables

    with emulator_running() as emulator:
        project = demo_project(root, emulator.base_url)
        write_marketing(root / ".data" / "marketing", root / ".data" / "truth", MARKETING)
        project = load_project(root, env={**os.environ, **AMPLITUDE_ENV,
                                          "AMPLITUDE_BASE_URL": emulator.base_url})  # fmt: skip
        with Pipeline(project, now=available_at(HOURS)) as pipeline:
            for source, stream in project.streams():
                if source not in FEEDS:
                    prepare_tables(pipeline.warehouse, project, source, stream)
            pipeline.run(FEEDS)
    return project


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of the loaded demo project (do not change it: copy it)."""
    root = tmp_path_factory.mktemp("web") / "demo"
    _load_demo(root)
    return root


@pytest.fixture
def served_project(demo_warehouse: Path, tmp_path: Path) -> Path:
    """A copy of the loaded demo, for a test that changes it."""
    root = tmp_path / "demo"
    shutil.copytree(demo_warehouse, root, ignore=COPY_IGNORE)
    return root


class Served:
    """`anchorflow serve` in its own process."""

    def __init__(self, root: Path, options: list[str], host: str, token: str | None) -> None:
        self.root, self.host, self.token = root, host, token
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k != "ANCHORFLOW_SERVE_TOKEN"}
        env.update(AMPLITUDE_ENV)
        if token:
            env["ANCHORFLOW_SERVE_TOKEN"] = token
        self.process = subprocess.Popen(
            [str(ANCHORFLOW), "serve", "--project", str(root), "--host", host,
             "--port", str(self.port), *options],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def wait_ready(self, deadline: float = 60.0) -> Served:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        until = time.monotonic() + deadline
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {self.process.communicate()}")
            try:
                if httpx.get(self.url + "/health", headers=headers, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("serve did not answer /health in time")

    def stop(self) -> subprocess.CompletedProcess[str]:
        """SIGTERM, and the graceful stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, err = self.process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, out, err)


@pytest.fixture
def serve_process() -> Iterator[Callable[..., Served]]:
    """serve_process(root, *options, host="127.0.0.1", token=None): a started server."""
    started: list[Served] = []

    def start(
        root: Path, *options: str, host: str = "127.0.0.1", token: str | None = None
    ) -> Served:
        defaults = ["--readers", "0", "--load-every", "0"]
        served = Served(root, [*defaults, *options], host, token)
        started.append(served)
        return served.wait_ready()

    yield start
    for served in started:
        served.stop()


@pytest.fixture
def server(served_project: Path, serve_process: Callable[..., Served]) -> str:
    """The base URL of `anchorflow serve` over a copy of the demo."""
    return str(serve_process(served_project).url)


class BrowserPage:
    """A Playwright page (every attribute of it), with the console errors it met and
    `screenshot(name)`."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.page, name)

    def screenshot(self, name: str) -> Path:  # type: ignore[override]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[BrowserPage]:
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        try:
            page = BrowserPage(context.new_page())
            yield page
        finally:
            context.close()
    assert not page.errors, f"console errors: {page.errors}"
