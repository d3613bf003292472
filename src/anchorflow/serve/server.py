"""Running the app: uvicorn on 127.0.0.1 unless told otherwise, a token beyond loopback, and a
SIGTERM that finishes what is in flight.

The server holds the warehouse while it runs: its runner (`serve.runs`) writes through that
connection, one run at a time, and its pages read through cursors of it.

On SIGTERM or Ctrl-C uvicorn stops accepting connections, lets the requests in flight finish
(each waits for the fsync that covers it), then runs the app's shutdown: every intake commits
what is pending and publishes its open chunk. A second signal cuts the wait short (what was
acknowledged is durable anyway; the next start publishes it).
"""

from __future__ import annotations

import ipaddress
import os
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import uvicorn

from anchorflow.config.project import Project
from anchorflow.errors import ConfigError
from anchorflow.run.pipeline import Pipeline
from anchorflow.serve.app import create_app, webhook_sources
from anchorflow.serve.background import Background, chunk_sources
from anchorflow.serve.intake import Intake
from anchorflow.serve.runs import Runner
from anchorflow.serve.web.context import WebContext

TOKEN_VARIABLE = "ANCHORFLOW_SERVE_TOKEN"
GRACE_SECONDS = 30


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_token(host: str, env: Mapping[str, str]) -> str | None:
    """The token every non-webhook request must carry: required to bind beyond loopback, where
    anyone on the network could otherwise read the server."""
    token = env.get(TOKEN_VARIABLE, "").strip() or None
    if token is None and not is_loopback(host):
        raise ConfigError([
            f"serve --host {host}: binding beyond loopback needs a token; set {TOKEN_VARIABLE} "
            "(every request but a signed webhook must then carry Authorization: Bearer <token>)"
        ])  # fmt: skip
    return token


class Server(uvicorn.Server):
    """uvicorn's server, minus the re-raise of the captured signal once it has stopped: the
    command exits 0 after a graceful stop."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _stop(self, signum: int, frame: Any) -> None:
        if self.should_exit:  # a second signal: stop waiting for the requests in flight
            self.force_exit = True
        self.should_exit = True


def open_intakes(project: Project) -> dict[str, Intake]:
    """Every webhook source's intake, opened: its landing held, a killed server's leftovers
    published, its recent ids loaded. Before binding, so a problem is one line, not a trace."""
    project.require_env(webhook_sources(project))
    opened: dict[str, Intake] = {}
    try:
        for name, config in webhook_sources(project).items():
            intake = Intake(name, config, project.root)
            intake.open()
            opened[name] = intake
    except BaseException:
        for intake in opened.values():
            intake.close()
        raise
    return opened


def open_warehouse(project: Project) -> Pipeline:
    """The warehouse the server holds while it runs, opened now (waiting up to the lock
    timeout for another writer), its journal made: a pipeline owning it, whose `warehouse`
    the runner and the pages share."""
    owner = Pipeline(project)
    try:
        owner.warehouse.scalar("SELECT 1")  # opens it, and prepares the journal
    except BaseException:
        owner.close()
        raise
    owner.warehouse.kept_open = True  # the pages read through cursors of this connection
    return owner


def serve(
    project: Project,
    host: str = "127.0.0.1",
    port: int = 8787,
    readers: int = 1,
    load_every: float = 5.0,
) -> None:
    """Serve `project` until SIGTERM or Ctrl-C: the webhook intake, the redis sources' readers
    (`readers` per queue), the loader of chunk sources (every `load_every` seconds), each
    source's `schedule:`, and the pages and read API over the warehouse it holds."""
    token = serve_token(host, os.environ)
    intakes = open_intakes(project)
    owner = open_warehouse(project)
    runner = Runner(project, owner.warehouse, chunk_sources(project), load_every)
    web = WebContext(project, owner.warehouse, runner)
    app = create_app(project, token=token, intakes=intakes, web=web)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",
        log_config=None,  # uvicorn's records go through our handler, which redacts secrets
        access_log=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
        server_header=False,
    )
    background = Background(project, readers=readers)
    try:
        web.open()  # the readers' cursors, before a run holds the connection
        background.start()
        runner.start()
        Server(config).run()
    finally:
        background.stop()
        runner.stop()
        web.close()
        owner.close()
