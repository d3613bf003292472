"""The commands of continuously running intake: `read` (Redis readers into landing chunks)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from anchorflow.cli.base import ProjectOption, _setup_logging, app, console, guarded
from anchorflow.config import load_project
from anchorflow.errors import ConfigError

CHECK_EVERY = 1.0  # seconds between two looks at the reader processes
STOP_TIMEOUT = 60.0  # seconds the readers get to publish their chunk in hand


@app.command()
def read(
    source: Annotated[str, typer.Argument(help="A redis source of the project.")],
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", metavar="QUEUE", help="A queue to read (default: all)."),
    ] = None,
    procs: Annotated[
        int, typer.Option("--procs", "-n", min=1, max=64, help="Reader processes per queue.")
    ] = 1,
    project: ProjectOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log restarts.")] = False,
) -> None:
    """Drain a redis source's lists and streams into landing chunk files until stopped.

    Runs PROCS reader processes per queue, restarts one that dies, and on SIGTERM or Ctrl-C
    stops them gracefully (each publishes its chunk in hand). `anchorflow run` loads the chunks.
    """
    from anchorflow.sources.redis.config import RedisConfig
    from anchorflow.sources.redis.supervise import ReaderPool

    _setup_logging(verbose)

    def pool() -> ReaderPool:
        loaded = load_project(project)
        config = loaded.sources.get(source)
        if not isinstance(config, RedisConfig):
            raise ConfigError([f"{loaded.file.name}: sources.{source}: not a redis source"])
        loaded.require_env([source])
        unknown = sorted(set(queue or ()) - set(config.queues))
        if unknown:
            known = ", ".join(config.queues)
            raise ConfigError([f"sources.{source}.queues: no queue {unknown[0]!r} ({known})"])
        return ReaderPool(loaded, source, queue or list(config.queues), procs)

    readers = guarded(pool)
    readers.start()
    console.print(f"reading {source}: {len(readers.slots)} reader(s); stop with Ctrl-C")
    try:
        while True:
            time.sleep(CHECK_EVERY)
            readers.check()
    except KeyboardInterrupt:  # SIGINT, or SIGTERM (the CLI's handler raises Terminated)
        codes = readers.stop(STOP_TIMEOUT)
        killed = codes.count(None)
        console.print(f"stopped {len(codes)} reader(s)" + (f", {killed} killed" if killed else ""))
