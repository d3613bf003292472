"""`anchorflow serve`: the project's long-running process: intake, loads, schedules, pages."""

from __future__ import annotations

from typing import Annotated

import typer

from anchorflow.cli.base import ProjectOption, VerboseOption, _setup_logging, app, guarded
from anchorflow.config import load_project
from anchorflow.project_types import parse_duration


@app.command()
def serve(
    project: ProjectOption = None,
    host: Annotated[
        str,
        typer.Option(
            help="The address to bind; beyond loopback, ANCHORFLOW_SERVE_TOKEN must be set "
            "(browsers: open a page once with ?token=<token>)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 8787,
    readers: Annotated[
        int,
        typer.Option(
            help="Reader processes per queue of each redis source, supervised (0: run "
            "`anchorflow read` yourself)."
        ),
    ] = 1,
    load_every: Annotated[
        str,
        typer.Option(
            help="How often the chunk sources (redis, webhook) are loaded into raw, e.g. 5s "
            "(0: never; `anchorflow run` does it)."
        ),
    ] = "5s",
    verbose: VerboseOption = False,
) -> None:
    """Run the project's long-running work until SIGTERM or Ctrl-C: receive its webhooks
    (POST /hooks/<source>), run its Redis readers, load both into raw, run each source's
    `schedule:` (cron, UTC), and serve the pages (http://HOST:PORT/: pipeline health, data
    model, fraud) and the read API (/api/health, /api/model, /api/fraud/report).

    The server holds the warehouse: its runs (loader, schedules, Run now)
    write one at a time, its pages read the last commit. A delivery is
    durable before it is answered; readers are restarted when they die.
    SIGTERM stops it gracefully: requests and chunks in hand are finished,
    a run in flight ends after the window it commits, and what was
    published is loaded before it exits. See docs/serve.md.
    """
    from anchorflow.serve.server import serve as run_server

    _setup_logging(verbose)
    every = parse_duration(load_every).total_seconds()

    def action() -> None:
        loaded = load_project(project, defer_source_env=True)
        run_server(loaded, host=host, port=port, readers=readers, load_every=every)

    guarded(action)
