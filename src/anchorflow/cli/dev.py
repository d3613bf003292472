"""The commands for trying anchorflow out: demo, emulate, synth."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from anchorflow.cli.base import (
    NowOption,
    ProjectOption,
    VerboseOption,
    _hour,
    _now,
    _setup_logging,
    app,
    console,
    emulate_app,
    guarded,
    synth_app,
)
from anchorflow.project_types import parse_hour


class Engine(StrEnum):
    """The demo's warehouse engines."""

    duckdb = "duckdb"
    postgres = "postgres"


@app.command()
def demo(
    project: ProjectOption = Path("examples/product_analytics"),
    hours: Annotated[int, typer.Option(help="Hours of traffic to generate and load.")] = 72,
    events_per_hour: Annotated[int, typer.Option(help="Average events per hour.")] = 15_000,
    engine: Annotated[
        Engine,
        typer.Option(
            help="The warehouse: the project's (duckdb), or a PostgreSQL database: --dsn, or a "
            "local cluster in <project>/.postgres, started with initdb/pg_ctl and left running."
        ),
    ] = Engine.duckdb,
    dsn: Annotated[
        str | None,
        typer.Option(
            envvar="ANCHORFLOW_PG_DSN",
            show_envvar=True,
            help="The PostgreSQL database for --engine postgres (postgresql://user@host/db).",
        ),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Generate traffic, serve it from the local Amplitude emulator, and run the pipeline."""
    from anchorflow.dev.demo import run_demo

    _setup_logging(verbose)
    chosen = dsn if engine is Engine.postgres else None
    guarded(
        lambda: run_demo(
            console, project or Path("."), hours, events_per_hour, engine.value, chosen
        )
    )


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


@emulate_app.command("maestroqa")
def emulate_maestroqa(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: a free one).")] = 8788,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 7,
    agents: Annotated[int, typer.Option(help="Agents in the roster.")] = 40,
    graded_per_day: Annotated[int, typer.Option(help="Tickets graded per day.")] = 60,
    polls: Annotated[int, typer.Option(help="Status calls before an export completes.")] = 2,
    token: Annotated[str, typer.Option(envvar="MAESTROQA_API_TOKEN")] = "demo-token",
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Inject a fault, e.g. errored:times=1, rate_limit:times=2,seconds=1."),
    ] = None,
) -> None:
    """Serve MaestroQA's export API (/api/v1/request-*-export, get-export-data) on loopback."""
    from anchorflow.dev.demo import serve_maestroqa

    guarded(
        lambda: serve_maestroqa(
            console, host, port, seed, agents, graded_per_day, polls, token, fault or []
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


@synth_app.command("marketing")
def synth_marketing(
    out: Annotated[
        Path, typer.Option(help="Directory of the traffic: clicks/, registrations/, events/.")
    ],
    truth: Annotated[
        Path, typer.Option(help="Directory of the labels (users.parquet, events.parquet).")
    ],
    start: Annotated[str, typer.Option(help="First UTC day, YYYY-MM-DD.")] = "2024-03-01",
    days: Annotated[int, typer.Option(help="How many days.")] = 7,
    clicks_per_day: Annotated[int, typer.Option(help="Genuine clicks per day.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 42,
) -> None:
    """Write labelled marketing traffic: daily NDJSON files of clicks, registrations and events
    with injected fraud (one pattern per rule family, plain and evasive) and hard negatives; the
    truth goes to --truth, which no source should read. Same seed, same bytes."""
    from anchorflow.dev.demo_fraud import write_traffic

    guarded(lambda: write_traffic(console, out, truth, start, days, clicks_per_day, seed))
