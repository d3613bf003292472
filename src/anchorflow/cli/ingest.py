"""The commands that set a project up and load it: init, validate, run, backfill, status, stage,
and the staging's fields, drift and suggest-mapping."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from anchorflow.cli.base import (
    STOPPING,
    JsonOption,
    NowOption,
    ProjectOption,
    VerboseOption,
    _hour,
    _now,
    _setup_logging,
    _with_pipeline,
    app,
    console,
    errors,
    guarded,
)
from anchorflow.config import load_project
from anchorflow.errors import ConfigError, Terminated
from anchorflow.scaffold import scaffold_project


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project.")] = Path("."),
    start: Annotated[
        str | None,
        typer.Option(
            metavar="HOUR",
            help="First hour to load, YYYYMMDDTHH UTC (default: midnight a week ago).",
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            metavar="HOUR",
            help="Last hour to load, inclusive, to replay a past export (default: no end).",
        ),
    ] = None,
) -> None:
    """Create a project: anchorflow.yml, a models/ folder with one mart, and .env.example."""
    created = guarded(
        lambda: scaffold_project(
            directory,
            _hour("--start", start) if start else None,
            _hour("--end", end) if end else None,
        )
    )
    for path in created:
        console.print(f"created {path}")
    console.print(
        "next: copy .env.example to .env and fill it in, then `anchorflow validate` and "
        "`anchorflow run`"
    )


@app.command()
def validate(project: ProjectOption = None) -> None:
    """Check the project file (and model SQL) without touching the warehouse.

    Selectors are also run on odd values in an empty, in-memory engine of the project's kind.
    """
    from anchorflow.run import check_project

    def action() -> Any:
        loaded = load_project(project, defer_source_env=True)
        check_project(loaded)
        return loaded

    loaded = guarded(action)
    _warn_unset_env(loaded)
    console.print(
        f"[green]ok[/green] {loaded.file}: {len(loaded.sources)} source(s), "
        f"{len(loaded.staging)} staging model(s)"
    )


def _warn_unset_env(project: Any) -> None:
    """A source's variable missing is fine for reading, not for loading: say so, once each."""
    empty = {v for config in project.sources.values() for v in config.empty_env}
    for key, variable in project.unset_env():
        state = "is set but empty" if variable in empty else "is not set"
        errors.print(
            f"[yellow]warning:[/yellow] {escape(project.file.name)}: {escape(key)}: environment "
            f"variable {escape(variable)} {state} (`run` and `backfill` need it)",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def run(
    sources: Annotated[
        list[str] | None, typer.Argument(help="Sources to load (default: all).")
    ] = None,
    project: ProjectOption = None,
    now: NowOption = None,
    no_marts: Annotated[bool, typer.Option("--no-marts", help="Skip building marts.")] = False,
    verbose: VerboseOption = False,
) -> None:
    """Load every closed, available window that is due, then rebuild the marts."""
    from anchorflow.console import run_with_progress

    _setup_logging(verbose)
    summary = guarded(
        lambda: run_with_progress(
            console, project, _now(now), lambda p: p.run(sources or (), not no_marts)
        )
    )
    from anchorflow.console import print_summary

    print_summary(console, summary)
    if summary.failed_mart_tests:  # the data is loaded; a failed test still fails the command
        raise typer.Exit(1)


@app.command()
def backfill(
    source: Annotated[str, typer.Argument(help="The source to reload.")],
    start: Annotated[
        str | None,
        typer.Option(
            help="First window, as the source names it: an hour YYYYMMDDTHH (UTC) for "
            "amplitude; for files a key (the path below the glob's fixed part), compared as "
            "text (default: the first)."
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            help="Last window, inclusive, in the same notation (files: every key that starts "
            "with it is included, so 2024-03-05 takes 2024-03-05.csv.gz)."
        ),
    ] = None,
    project: ProjectOption = None,
    now: NowOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Reload a past range of hours (or any source's windows); each window replaces its
    earlier load (idempotent)."""
    from anchorflow.console import print_summary, run_with_progress

    _setup_logging(verbose)
    summary = guarded(
        lambda: run_with_progress(
            console, project, _now(now), lambda p: p.backfill(source, start, end)
        )
    )
    print_summary(console, summary)


@app.command()
def status(project: ProjectOption = None, now: NowOption = None, json: JsonOption = False) -> None:
    """Watermarks, lag, the last loads and runs: per source stream its position (cursor), lag
    and windows due, then the last loads, the last runs and the quarantine."""
    from anchorflow.console import print_json, print_status

    result = _with_pipeline(project, lambda p: p.status(), now, read_only=True)
    if json:
        print_json(result)
    else:
        print_status(console, result)


@app.command()
def stage(
    models: Annotated[
        list[str] | None, typer.Argument(help="Staging models to type (default: all).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Type every untyped load now, whatever the thresholds.")
    ] = False,
    project: ProjectOption = None,
    now: NowOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Type raw loads that the transfer log does not hold yet into their staging models.

    A model runs when its thresholds are met (min_rows untyped rows, or max_age since its last
    run); each batch (at most batch_rows rows, whole loads) commits on its own.
    """
    from anchorflow.console import print_staging

    _setup_logging(verbose)
    runs = _with_pipeline(project, lambda p: p.stage(models or (), force), now)
    if not any(r.batches or r.waiting for r in runs):
        console.print("nothing to stage: every load is typed")
    print_staging(console, runs)


@app.command()
def fields(
    model: Annotated[str, typer.Argument(help="A staging model.")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Field statistics of a model's last typed batch, and type errors per column."""
    from anchorflow.console import print_fields, print_json

    report = _with_pipeline(project, lambda p: p.field_stats(model), read_only=True)
    if json:
        print_json(report)
    else:
        print_fields(console, report)


@app.command()
def drift(
    ack: Annotated[
        list[int] | None,
        typer.Option("--ack", metavar="ID", help="Acknowledge (close) this event id; repeatable."),
    ] = None,
    all_events: Annotated[
        bool, typer.Option("--all", help="Show acknowledged events too.")
    ] = False,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Open schema events: new models and fields, type changes, vanished fields, null rates."""
    from anchorflow.console import print_drift, print_json

    if ack:
        closed = _with_pipeline(project, lambda p: p.acknowledge(ack))
        console.print(f"acknowledged {closed} event(s)")
        return
    events = _with_pipeline(project, lambda p: p.schema_events(all_events), read_only=True)
    if json:
        print_json(events)
    else:
        print_drift(console, events)


@app.command("suggest-mapping")
def suggest_mapping(
    stream: Annotated[
        str, typer.Argument(help="A source, source.stream, or raw table name (source_stream).")
    ],
    model: Annotated[str | None, typer.Option(help="Name of the suggested model.")] = None,
    selector: Annotated[
        str | None,
        typer.Option(
            help="Only records matching this SQL condition, e.g. \"event_type = 'purchase'\"."
        ),
    ] = None,
    sample_percent: Annotated[
        float, typer.Option(help="Share of raw records read.", min=0.01, max=100)
    ] = 10.0,
    project: ProjectOption = None,
) -> None:
    """Print a staging model inferred from the raw records, as YAML for the project file."""
    text = _with_pipeline(
        project, lambda p: p.suggest_mapping(stream, model, selector, sample_percent),
        read_only=True,
    )  # fmt: skip
    sys.stdout.write(text)


@app.command()
def load(
    sources: Annotated[list[str], typer.Argument(help="Chunk sources to load (redis, webhook).")],
    every: Annotated[
        str, typer.Option("--every", metavar="DURATION", help="Time between runs, e.g. 5s.")
    ] = "5s",
    project: ProjectOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Load the landing chunks of queue sources continuously: `run SOURCE...` every few
    seconds (staging, anchor and marts included), until Ctrl-C or SIGTERM."""
    from anchorflow.console import print_summary
    from anchorflow.project_types import parse_duration
    from anchorflow.run.loop import LoadLoop

    _setup_logging(verbose)

    def action() -> None:
        try:
            interval = parse_duration(every).total_seconds()
        except ValueError as error:
            raise ConfigError([f"--every: {error}"]) from None
        loaded = load_project(project, defer_source_env=True)
        loop = LoadLoop(
            loaded, sources, interval,
            on_run=lambda s: print_summary(console, s) if s.windows else None,
        )  # fmt: skip
        loop.run_forever(STOPPING)
        raise Terminated()  # only SIGTERM ends the loop

    guarded(action)
