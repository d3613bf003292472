"""`anchorflow serve`: the project's long-running process (for now: the webhook intake)."""

from __future__ import annotations

from typing import Annotated

import typer

from anchorflow.cli.base import ProjectOption, VerboseOption, _setup_logging, app, guarded
from anchorflow.config import load_project


@app.command()
def serve(
    project: ProjectOption = None,
    host: Annotated[
        str,
        typer.Option(
            help="The address to bind; beyond loopback, ANCHORFLOW_SERVE_TOKEN must be set."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 8787,
    verbose: VerboseOption = False,
) -> None:
    """Receive the project's webhooks (POST /hooks/<source>) until SIGTERM or Ctrl-C.

    Each accepted delivery is durable in a landing chunk before it is answered; `anchorflow
    run` loads the published chunks into raw.
    """
    from anchorflow.serve.server import serve as run_server

    _setup_logging(verbose)
    guarded(lambda: run_server(load_project(project, defer_source_env=True), host=host, port=port))
