"""The `anchorflow` command: parses arguments, calls the façade, prints with rich.

No logic lives here that the web app would also need; known errors become one red line and
exit code 1.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from typer.core import TyperGroup

from anchorflow.config import PROJECT_FILE, load_project
from anchorflow.errors import AnchorflowError, ConfigError, Terminated
from anchorflow.project_types import parse_hour, parse_instant
from anchorflow.redact import RedactingFilter, redact
from anchorflow.scaffold import scaffold_project


class PlainHelp(TyperGroup):
    """typer's help shows a placeholder of each parameter's Python type: `--all <bool>`,
    `--ack <list[int]>`. A flag takes no value, and a value given several times shows what
    one of them is: `--all`, `--ack ID`, `SOURCES... <str>`."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_placeholders(super().get_params(ctx), ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not isinstance(command, TyperGroup):
            _plain_placeholders(command.get_params(ctx), ctx)
        return command


def _plain_placeholders(params: list[Any], ctx: Any) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.metavar is None and hasattr(param, "display_type"):
            element = re.fullmatch(r"<list\[(.+)\]>", param.display_type(ctx))
            if element is not None:  # an argument's type ignores its metavar: its own label
                label = f"<{element.group(1)}>"
                setattr(param, "display_type_rich", lambda ctx, label=label: label)  # noqa: B010
    return params


app = typer.Typer(
    name="anchorflow",
    help="Declarative ELT for product analytics: land, type and model events on DuckDB.\n\n"
    "Every command reads anchorflow.yml from --project (default: the current directory).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=PlainHelp,
)
emulate_app = typer.Typer(
    help="Run local emulators of the SaaS APIs that sources talk to.", cls=PlainHelp
)
synth_app = typer.Typer(help="Generate deterministic synthetic source data.", cls=PlainHelp)
app.add_typer(emulate_app, name="emulate")
app.add_typer(synth_app, name="synth")

# Rich cuts every line at 80 columns when it does not write to a terminal (a CI log, a pipe, a
# file); there, a line is as long as it needs to be, unless COLUMNS says otherwise.
PIPE_WIDTH = 10_000


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr)
    if console.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH)


console = _console()
errors = _console(stderr=True)
T = TypeVar("T")

ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", "-p", help=f"The project: {PROJECT_FILE} or its directory."),
]
NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Pretend the current UTC time is this (YYYYMMDDTHH or ISO 8601): for replays and "
        "demos.",
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log each step's timings.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON (for scripts and other tools).")
]


INTERRUPTED = "interrupted: the window in flight was rolled back; run the command again to continue"


def _version(value: bool) -> None:
    if value:
        console.print(f"anchorflow {metadata.version('anchorflow')}", highlight=False)
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    # The options of `anchorflow` itself; its help text is the Typer's, above.
    return


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except KeyboardInterrupt as stop:  # outside a command (typer turns it into exit 130 inside)
        _interrupted(stop)
    except Exception:  # a bug: its traceback, without the secrets it may quote
        sys.stderr.write(redact(traceback.format_exc()))
        sys.exit(1)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM stops the command like Ctrl-C does; a second one during the cleanup waits."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def _interrupted(stop: KeyboardInterrupt) -> NoReturn:
    errors.print(f"[yellow]{INTERRUPTED}[/yellow]", highlight=False, soft_wrap=True)
    sys.exit(143 if isinstance(stop, Terminated) else 130)


def guarded(action: Callable[[], T]) -> T:
    """Run `action`, turning known errors into one red line each and exit code 1, and an
    interrupt into one line and exit code 130 (143 for SIGTERM). Every line is redacted."""
    try:
        return action()
    except AnchorflowError as error:
        # An engine's message can span lines (a caret under the SQL); its first line says it.
        lines = error.problems if isinstance(error, ConfigError) else [str(error).split("\n")[0]]
        for line in lines:
            errors.print(
                f"[red]error:[/red] {escape(redact(line))}", highlight=False, soft_wrap=True
            )
        raise typer.Exit(1) from None
    except KeyboardInterrupt as stop:
        _interrupted(stop)


def _setup_logging(verbose: bool) -> None:
    handler: logging.Handler = RichHandler(console=errors, show_path=False, markup=False)
    if not errors.is_terminal:  # a CI log or a file: plain lines, not a table padded to its width
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(message)s"))
    handler.addFilter(RedactingFilter())
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _hour(option: str, value: str) -> datetime:
    try:
        return parse_hour(value)
    except ValueError as error:
        raise ConfigError([f"{option}: {error}"]) from None


def _now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as error:
        raise ConfigError([f"--now: {error}"]) from None


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


def _with_pipeline(
    project: Path | None,
    action: Callable[[Any], T],
    now: str | None = None,
    read_only: bool = False,  # a command that only reads: beside other readers, never creates
) -> T:
    from anchorflow.run import Pipeline

    def run() -> T:
        # These commands never contact a source: its secrets may be missing (`run` needs them).
        loaded = load_project(project, defer_source_env=True)
        with Pipeline(loaded, now=_now(now), read_only=read_only) as pipeline:
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
def anchor(project: ProjectOption = None, verbose: VerboseOption = False) -> None:
    """Load typed staging rows that the anchor model does not hold yet (`run` does it too).

    Entities and knots first, then every attribute and tie, each in its own transaction and
    checked for integrity; a failed check alerts, rolls that table back and exits 1.
    """
    from anchorflow.console import print_anchor

    _setup_logging(verbose)
    print_anchor(console, _with_pipeline(project, lambda p: p.anchor()))


@app.command()
def model(project: ProjectOption = None, json: JsonOption = False) -> None:
    """The anchor model on one page: entities, knots, attributes and ties, with their history
    kind, source model, row counts, latest change and loads still to anchor."""
    from anchorflow.console import print_json, print_model

    infos = _with_pipeline(project, lambda p: p.describe_model(), read_only=True)
    if json:
        print_json(infos)
    else:
        print_model(console, infos)


@app.command()
def query(
    entity: Annotated[str, typer.Argument(help="The entity, e.g. User.")],
    attrs: Annotated[
        str | None,
        typer.Option("--attrs", help="Comma-separated attributes (default: all of them)."),
    ] = None,
    ties: Annotated[
        str | None, typer.Option("--ties", help="Comma-separated ties to add partner ids from.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Values in force at this instant, e.g. 2024-03-02T12:00."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="table (print), or a file written by the engine (needs --output): csv, "
            "parquet or json (one object per line).",
        ),
    ] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many rows.", min=0)] = None,
    project: ProjectOption = None,
) -> None:
    """One row per entity with only the attributes asked for: joins nothing else.

    Without --as-of the values are the latest (scd0: the first); with it, each scd2 attribute
    shows the value in force then, scd0 the first value if it existed by then, scd1 the latest.
    """
    from anchorflow.anchor.query import FORMATS
    from anchorflow.console import print_arrow

    if fmt not in FORMATS:
        guarded(lambda: _fail(f"query: --format must be one of {', '.join(FORMATS)}"))
    if fmt != "table" and output is None:
        guarded(lambda: _fail(f"query: --format {fmt} writes a file; give --output PATH"))
    instant = guarded(lambda: _instant(as_of)) if as_of else None
    chosen = [a.strip() for a in attrs.split(",") if a.strip()] if attrs is not None else None
    related = [t.strip() for t in ties.split(",") if t.strip()] if ties else []
    if output is not None and fmt != "table":
        path = output.absolute()
        written = _with_pipeline(
            project,
            lambda p: p.export_query(entity, chosen, related, instant, limit, fmt, path),
            read_only=True,
        )
        console.print(f"wrote {written:,} rows to {output}")
        return
    result = _with_pipeline(
        project, lambda p: p.query(entity, chosen, related, instant, limit), read_only=True
    )
    print_arrow(console, result, f"{entity}" + (f" as of {as_of}" if as_of else ""))


def _fail(message: str) -> None:
    raise ConfigError([message])


def _instant(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            [f"query: --as-of expects an ISO timestamp such as 2024-03-02T12:00, got {value!r}"]
        ) from None


@app.command()
def rollback(
    load_id: Annotated[int, typer.Argument(help="The load to remove (see `anchorflow status`).")],
    project: ProjectOption = None,
) -> None:
    """Remove a load from staging, the anchor model and the marts, keeping its raw records;
    the next `run` (or `stage --force`) types and anchors it again."""
    counts = _with_pipeline(project, lambda p: p.rollback(load_id))
    for name, rows in sorted(counts.items()):
        console.print(f"removed {rows:,} row(s) from {name}")
    console.print(f"load {load_id} rolled back; `anchorflow run` loads it again")


@app.command()
def forget(
    entity: Annotated[str, typer.Argument(help="The entity, e.g. User.")],
    key: Annotated[list[str], typer.Argument(help="Its natural key (one value per key column).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    project: ProjectOption = None,
) -> None:
    """Erase an entity everywhere (GDPR): its anchor rows, attribute values and ties, the staging
    rows and raw records that carry its key, and their traces in the journal. Leaves an audit
    row in the journal (its erasures table) with counts only, and the key hashed with pii_salt
    so that a backfill does not bring the entity back. Cannot be undone."""
    if not yes:
        typer.confirm(f"Erase this {entity} from every layer, raw included?", abort=True)
    counts = _with_pipeline(project, lambda p: p.forget(entity, key))
    for name, rows in sorted(counts.items()):
        console.print(f"erased {rows:,} row(s) from {name}")
    if not counts:
        console.print(f"no {entity} with that key was found; nothing was erased")
    console.print(
        "its key is kept hashed, so loading the same windows again drops its records; the "
        "file still holds the deleted bytes until `anchorflow compact` (or a `run` near the "
        "deadline, see `anchorflow status`)"
    )


@app.command()
def compact(project: ProjectOption = None) -> None:
    """Rewrite the warehouse file so that the rows `forget` deleted leave no byte behind;
    applies every pending erasure request (`run` does it by itself near their deadline)."""
    from anchorflow.console import print_compaction

    print_compaction(console, _with_pipeline(project, lambda p: p.compact()))


@app.command("export")
def export_tables(
    tables: Annotated[
        list[str] | None,
        typer.Argument(
            help="Tables to export: schema.table or a glob such as marts.* (default: the "
            "project's exports.tables)."
        ),
    ] = None,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Directory of the files (default: exports.path, exports/)."),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Publish tables as Parquet files, <dir>/<schema>/<table>.parquet, for tools that read
    while anchorflow loads: each file is written under a temporary name, then renamed over the
    previous one, so a reader sees a whole file, old or new."""
    from anchorflow.console import print_exports

    exported = _with_pipeline(project, lambda p: p.export(tables or (), to), read_only=True)
    print_exports(console, exported)


@app.command("dbt-sources")
def dbt_sources(
    schema: Annotated[
        list[str] | None,
        typer.Option(
            "--schema", help="A schema to describe, repeatable (default: staging, anchor, marts)."
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="The warehouse's catalog name in dbt (default: the file's name without .duckdb, "
            "as dbt-duckdb names it; use the alias of an attach: entry)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Print (or write) a dbt sources.yml for the warehouse: one source per schema, its tables
    and columns with the project file's descriptions, and tests for the declared keys."""
    from anchorflow.publish.dbt import write_dbt_sources

    text = _with_pipeline(project, lambda p: p.dbt_sources(schema or (), database), read_only=True)
    if output is None:
        sys.stdout.write(text)
        return
    write_dbt_sources(text, output)
    console.print(f"wrote {output}")


@app.command()
def demo(
    project: ProjectOption = Path("examples/product_analytics"),
    hours: Annotated[int, typer.Option(help="Hours of traffic to generate and load.")] = 72,
    events_per_hour: Annotated[int, typer.Option(help="Average events per hour.")] = 15_000,
    verbose: VerboseOption = False,
) -> None:
    """Generate traffic, serve it from the local Amplitude emulator, and run the pipeline."""
    from anchorflow.dev.demo import run_demo

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
    from anchorflow.dev.demo import serve_amplitude

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
    from anchorflow.dev.demo import generate_amplitude

    guarded(
        lambda: generate_amplitude(
            console, out, _hour("--start", start), hours, events_per_hour, seed
        )
    )
