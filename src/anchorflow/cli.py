"""The `anchorflow` command: parses arguments, calls the façade, prints with rich.

No logic lives here that the web app would also need; known errors become one red line and
exit code 1.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from anchorflow.errors import AnchorflowError, ConfigError
from anchorflow.project import PROJECT_FILE, load_project, parse_hour
from anchorflow.scaffold import scaffold_project

app = typer.Typer(
    name="anchorflow",
    help="Declarative ELT for product analytics: land, type and model events on DuckDB.\n\n"
    "Every command reads anchorflow.yml from --project (default: the current directory).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
emulate_app = typer.Typer(help="Run local emulators of the SaaS APIs that sources talk to.")
synth_app = typer.Typer(help="Generate deterministic synthetic source data.")
app.add_typer(emulate_app, name="emulate")
app.add_typer(synth_app, name="synth")

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")

ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", "-p", help=f"The project: {PROJECT_FILE} or its directory."),
]
NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Pretend the current UTC time is this hour (YYYYMMDDTHH): for replays and demos.",
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log each step's timings.")]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/red]")
        sys.exit(130)


def guarded(action: Callable[[], T]) -> T:
    """Run `action`, turning known errors into one red line each and exit code 1."""
    try:
        return action()
    except AnchorflowError as error:
        lines = error.problems if isinstance(error, ConfigError) else [str(error)]
        for line in lines:
            errors.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=errors, show_path=False, markup=False)],
        force=True,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _hour(option: str, value: str) -> datetime:
    try:
        return parse_hour(value)
    except ValueError as error:
        raise ConfigError([f"{option}: {error}"]) from None


def _now(value: str | None) -> datetime | None:
    return None if value is None else _hour("--now", value)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project.")] = Path("."),
) -> None:
    """Create a project: anchorflow.yml, a models/ folder with one mart, and .env.example."""
    created = guarded(lambda: scaffold_project(directory))
    for path in created:
        console.print(f"created {path}")
    console.print("next: fill in .env, then `anchorflow validate` and `anchorflow run`")


@app.command()
def validate(project: ProjectOption = None) -> None:
    """Check the project file (and model SQL) without touching the warehouse."""
    loaded = guarded(lambda: load_project(project))
    console.print(
        f"[green]ok[/green] {loaded.file}: {len(loaded.sources)} source(s), "
        f"{len(loaded.staging)} staging model(s)"
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


@app.command()
def backfill(
    source: Annotated[str, typer.Argument(help="The source to reload.")],
    start: Annotated[str, typer.Option(help="First hour, YYYYMMDDTHH (UTC).")],
    end: Annotated[str, typer.Option(help="Last hour, inclusive, YYYYMMDDTHH (UTC).")],
    project: ProjectOption = None,
    now: NowOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Reload a past range of hours; each hour replaces its earlier load (idempotent)."""
    from anchorflow.console import print_summary, run_with_progress

    _setup_logging(verbose)

    def action(pipeline: Any) -> Any:
        try:
            first, last = parse_hour(start), parse_hour(end)
        except ValueError as error:
            raise ConfigError([f"backfill: {error}"]) from None
        return pipeline.backfill(source, first, last)

    summary = guarded(lambda: run_with_progress(console, project, _now(now), action))
    print_summary(console, summary)


@app.command()
def status(project: ProjectOption = None, now: NowOption = None) -> None:
    """Watermarks, lag, the last loads and runs."""
    from anchorflow.console import print_status
    from anchorflow.pipeline import Pipeline

    def action() -> dict[str, Any]:
        with Pipeline(load_project(project), now=_now(now)) as pipeline:
            return pipeline.status()

    print_status(console, guarded(action))


def _with_pipeline(project: Path | None, action: Callable[[Any], T], now: str | None = None) -> T:
    from anchorflow.pipeline import Pipeline

    def run() -> T:
        with Pipeline(load_project(project), now=_now(now)) as pipeline:
            return action(pipeline)

    return guarded(run)


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
) -> None:
    """Field statistics of a model's last typed batch, and type errors per column."""
    from anchorflow.console import print_fields

    print_fields(console, model, _with_pipeline(project, lambda p: p.field_stats(model)))


@app.command()
def drift(
    ack: Annotated[
        list[int] | None, typer.Option("--ack", help="Acknowledge (close) this event id.")
    ] = None,
    all_events: Annotated[
        bool, typer.Option("--all", help="Show acknowledged events too.")
    ] = False,
    project: ProjectOption = None,
) -> None:
    """Open schema events: new models and fields, type changes, vanished fields, null rates."""
    from anchorflow.console import print_drift

    if ack:
        closed = _with_pipeline(project, lambda p: p.acknowledge(ack))
        console.print(f"acknowledged {closed} event(s)")
        return
    print_drift(console, _with_pipeline(project, lambda p: p.schema_events(all_events)))


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
        project, lambda p: p.suggest_mapping(stream, model, selector, sample_percent)
    )
    sys.stdout.write(text)


@app.command()
def demo(
    project: ProjectOption = Path("examples/product_analytics"),
    hours: Annotated[int, typer.Option(help="Hours of traffic to generate and load.")] = 72,
    events_per_hour: Annotated[int, typer.Option(help="Average events per hour.")] = 15_000,
    verbose: VerboseOption = False,
) -> None:
    """Generate traffic, serve it from the local Amplitude emulator, and run the pipeline."""
    from anchorflow.demo import run_demo

    _setup_logging(verbose)
    guarded(lambda: run_demo(console, project or Path("."), hours, events_per_hour))


@emulate_app.command("amplitude")
def emulate_amplitude(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 8787,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    data: Annotated[Path | None, typer.Option(help="Directory of export files to serve.")] = None,
    start: Annotated[str, typer.Option(help="First hour served, YYYYMMDDTHH.")] = "20240301T00",
    hours: Annotated[int, typer.Option(help="Hours served from --start.")] = 72,
    events_per_hour: Annotated[int, typer.Option(help="Generated events per hour.")] = 15_000,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 42,
    api_key: Annotated[str, typer.Option(envvar="AMPLITUDE_API_KEY")] = "demo-key",
    secret_key: Annotated[str, typer.Option(envvar="AMPLITUDE_SECRET_KEY")] = "demo-secret",
    now: NowOption = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject a fault, e.g. rate_limit:times=2 or corrupt_gzip:hours=20240301T05."
        ),
    ] = None,
) -> None:
    """Serve Amplitude's Export API (GET /api/2/export) on loopback, with optional faults."""
    from anchorflow.demo import serve_amplitude

    guarded(
        lambda: serve_amplitude(
            console,
            host,
            port,
            data,
            parse_hour(start),
            hours,
            events_per_hour,
            seed,
            api_key,
            secret_key,
            _now(now),
            fault or [],
        )
    )


@synth_app.command("amplitude")
def synth_amplitude(
    out: Annotated[Path, typer.Option(help="Directory to write the export files to.")],
    start: Annotated[str, typer.Option(help="First hour, YYYYMMDDTHH.")] = "20240301T00",
    hours: Annotated[int, typer.Option(help="How many hours.")] = 72,
    events_per_hour: Annotated[int, typer.Option(help="Average events per hour.")] = 15_000,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 42,
) -> None:
    """Write Amplitude export files (<project>_<day>_<H>#<n>.json.gz) for a range of hours."""
    from anchorflow.demo import generate_amplitude

    guarded(
        lambda: generate_amplitude(
            console, out, _hour("--start", start), hours, events_per_hour, seed
        )
    )
