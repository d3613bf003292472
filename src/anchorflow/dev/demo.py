"""The demo and the emulator commands: generate traffic, serve it, run the pipeline on it."""

from __future__ import annotations

import errno
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from rich.console import Console

from anchorflow.config import Project, load_project, resolve_project_file
from anchorflow.config.project import WarehouseSettings
from anchorflow.console import (
    print_arrow,
    print_model,
    print_summary,
    print_table,
    run_with_progress,
)
from anchorflow.dev import demo_accounts as accounts
from anchorflow.dev import demo_grading as grading
from anchorflow.dev.demo_accounts import (
    FIRST_SCAN_BEFORE,
    accounts_history,
    accounts_line,
    first_scan,
    local_dynamodb,
)
from anchorflow.dev.demo_backend import backend_line, feed_backend
from anchorflow.dev.demo_fraud import demo_traffic, show_fraud
from anchorflow.dev.demo_grading import (
    GRADING_SAMPLE,
    grading_emulator,
    grading_line,
    load_grading,
)
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, run_emulator
from anchorflow.dev.emulators.amplitude_faults import parse_fault
from anchorflow.dev.postgres import LocalPostgres
from anchorflow.dev.synth.amplitude import SynthSpec
from anchorflow.dev.synth.costs import write_cost_files
from anchorflow.errors import ConfigError
from anchorflow.journal.schema_events import reported_events
from anchorflow.project_types import format_hour
from anchorflow.redact import redact_dsn
from anchorflow.run import Pipeline
from anchorflow.sources.amplitude.config import AmplitudeConfig

DEMO_KEY, DEMO_SECRET = "demo-key", "demo-secret"
# Binding the port failed: taken, not ours to take, or not an address of this machine.
CANNOT_LISTEN = {errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL}


def generate_amplitude(
    console: Console,
    out: Path,
    start: datetime,
    hours: int,
    events_per_hour: int,
    seed: int,
    new_field_from: datetime | None = None,
) -> list[Path]:
    from anchorflow.dev.emulators.amplitude import write_export_files

    spec = SynthSpec(seed=seed, events_per_hour=events_per_hour, new_field_from=new_field_from)
    started = time.perf_counter()
    with console.status(f"generating {hours} hours of Amplitude export files in {out}"):
        files = write_export_files(
            spec, start, start + timedelta(hours=hours), out, workers=os.cpu_count() or 2
        )
    size = sum(f.stat().st_size for f in files)
    console.print(
        f"export files: {len(files)} files, {size / 1e6:,.0f} MB gzip in {out} "
        f"({time.perf_counter() - started:.1f}s)"
    )
    return files


def serve_amplitude(
    console: Console,
    host: str,
    port: int,
    data: Path | None,
    start: datetime,
    hours: int,
    events_per_hour: int,
    seed: int,
    api_key: str,
    secret_key: str,
    now: datetime | None,
    faults: list[str],
) -> None:
    end = start + timedelta(hours=hours)
    if data is not None:
        store = ExportStore.from_directory(data, start, end)
    else:
        store = ExportStore(start, end, spec=SynthSpec(seed=seed, events_per_hour=events_per_hour))
    try:
        plan = [parse_fault(text) for text in faults]
    except ValueError as error:
        raise ConfigError([f"--fault: {error}"]) from None
    try:
        run_emulator(
            store,
            api_key,
            secret_key,
            host=host,
            port=port,
            faults=plan,
            now=now,
            on_ready=lambda url: console.print(
                f"Amplitude Export API emulator on {url}/api/2/export "
                f"(hours {format_hour(start)}..{format_hour(end - timedelta(hours=1))}); "
                "Ctrl-C stops"
            ),
        )
    except OSError as error:
        if error.errno not in CANNOT_LISTEN:
            raise
        raise ConfigError([
            f"emulate amplitude: cannot listen on {host}:{port} ({error.strerror}); stop what "
            "holds it, or choose another --port (0 picks a free one)"
        ]) from None  # fmt: skip


def serve_maestroqa(
    console: Console, host: str, port: int, seed: int, agents: int, graded_per_day: int,
    polls: int, token: str, faults: list[str],
) -> None:  # fmt: skip
    from anchorflow.dev.emulators.maestroqa import parse_fault, run_emulator
    from anchorflow.dev.synth.maestroqa import GradingSpec

    try:
        plan = [parse_fault(text) for text in faults]
    except ValueError as error:
        raise ConfigError([f"--fault: {error}"]) from None
    spec = GradingSpec(seed=seed, agents=agents, graded_per_day=graded_per_day)
    try:
        run_emulator(token, spec, host, port, plan, polls, on_ready=lambda url: console.print(
            f"MaestroQA export API emulator on {url} (header apitoken); Ctrl-C stops"))  # fmt: skip
    except OSError as error:
        if error.errno not in CANNOT_LISTEN:
            raise
        raise ConfigError([
            f"emulate maestroqa: cannot listen on {host}:{port} ({error.strerror}); stop what "
            "holds it, or choose another --port (0 picks a free one)"
        ]) from None  # fmt: skip


def run_demo(
    console: Console,
    project_dir: Path,
    hours: int,
    events_per_hour: int,
    engine: str = "duckdb",
    dsn: str | None = None,
) -> None:
    """Generate, serve and load `hours` of traffic, then show what landed and the mart. With
    `engine` postgres, the warehouse is the database `dsn` names, or one in a local cluster
    kept in the project's `.postgres` folder (started, or found running, and left running)."""
    project_file = resolve_project_file(project_dir)
    os.environ.setdefault("AMPLITUDE_API_KEY", DEMO_KEY)
    os.environ.setdefault("AMPLITUDE_SECRET_KEY", DEMO_SECRET)
    os.environ.setdefault(grading.TOKEN_ENV, grading.TOKEN)  # the local emulators' secrets
    os.environ.setdefault(accounts.KEY_ENV, accounts.DEMO_KEY)
    os.environ.setdefault(accounts.SECRET_ENV, accounts.DEMO_SECRET)
    project = load_project(project_file)  # validate before generating anything
    cluster = None
    if engine == "postgres" and not dsn:
        cluster = demo_cluster(console, project.root)
        dsn = cluster.ensure_database(project.name)
    if dsn:
        project = on_postgres(project, dsn)
    config = project.sources["amplitude"]
    if not isinstance(config, AmplitudeConfig):
        raise ConfigError(
            [f"{project.file.name}: the demo needs sources.amplitude of kind amplitude"]
        )
    start = config.start
    end = start + timedelta(hours=hours)
    data = project.root / ".data" / "amplitude"
    # Halfway through, the app starts sending a new event property (the drift a later stage
    # reports); its data is deterministic, so a second demo reuses the files.
    generate_amplitude(
        console,
        data,
        start,
        hours,
        events_per_hour,
        42,
        new_field_from=start + timedelta(hours=hours // 2),
    )
    # The ad platforms' daily spend per campaign, dropped as CSV files (the `files` source).
    costs = write_cost_files(project.root / ".data" / "costs", start, max(1, hours // 24))
    console.print(f"cost files: {len(costs)} daily CSV files in {costs[0].parent}")
    # The backend's events on Redis (a list and a stream), drained into landing chunks by the
    # readers; the run below loads them with the other sources.
    feed_backend(console, project_file, project, start, hours, 42)
    # The marketing traffic the fraud rules read: labelled daily files (the truth apart).
    demo_traffic(console, project, start, max(1, hours // 24))
    # The replay's clock: the last generated hour has just become available.
    now = end + config.availability_delay
    store = ExportStore.from_directory(data, start, end)
    # MaestroQA's grading exports and the users table in a local DynamoDB load in runs of their
    # own first: the grades on the clock of the demo's last complete day, the users' first scan
    # an hour before the demo's run, which scans them again after some changed.
    with grading_emulator(console, project), local_dynamodb(console, project) as users, \
            AmplitudeEmulator(store, DEMO_KEY, DEMO_SECRET, now=now) as emulator:  # fmt: skip
        os.environ["AMPLITUDE_BASE_URL"] = emulator.base_url
        console.print(
            f"emulator: {emulator.base_url}/api/2/export, replaying as of {now:%Y-%m-%d %H:00} UTC"
        )
        loaded = load_project(project_file, defer_source_env=True)
        loaded = on_postgres(loaded, dsn) if dsn else loaded
        load_grading(console, loaded, end)
        first_scan(console, loaded, users, now - FIRST_SCAN_BEFORE)
        summary = run_with_progress(console, loaded, now, lambda p: p.run())
    print_summary(console, summary)
    _show(console, on_postgres(load_project(project_file), dsn) if dsn else project, now, start)
    if dsn:
        _explore_postgres(console, project, dsn, cluster)


def on_postgres(project: Project, dsn: str) -> Project:
    """The project with its warehouse in the PostgreSQL database `dsn` names."""
    settings = WarehouseSettings(
        engine="postgres", dsn=dsn, lock_timeout=project.warehouse.lock_timeout
    )
    return project.model_copy(update={"warehouse": settings})


def demo_cluster(console: Console, root: Path) -> LocalPostgres:
    """The demo's PostgreSQL cluster in `<project>/.postgres`: made the first time, started
    when it is not running (on a free loopback port)."""
    cluster = LocalPostgres(root / ".postgres", keep=True)
    with console.status(f"starting PostgreSQL in {cluster.directory}"):
        cluster.start()
    console.print(f"PostgreSQL {cluster.dsn()} (cluster in {cluster.directory})")
    return cluster


def _explore_postgres(
    console: Console, project: Project, dsn: str, cluster: LocalPostgres | None
) -> None:
    shown = redact_dsn(dsn)
    console.print(
        f"warehouse: PostgreSQL {shown}. The other commands read it with the project's "
        f"warehouse set to it: ANCHORFLOW_ENGINE=postgres ANCHORFLOW_DEMO_DSN={shown} "
        f"anchorflow status --project {project.root}"
    )
    if cluster is not None:
        console.print(f"the cluster keeps running; stop it with: {cluster.stop_command()}")


def _warehouse_name(project: Project) -> str:
    dsn = project.warehouse.dsn
    return f"PostgreSQL {redact_dsn(dsn)}" if dsn else str(project.warehouse_path)


def _show(console: Console, project: Project, now: datetime, start: datetime) -> None:
    """What the demo loaded: counts, staging models, drift, the anchor model, a query, marts."""
    with Pipeline(project, now=now) as pipeline:
        wh = pipeline.warehouse
        totals = pipeline.totals()
        staged = wh.scalar("SELECT count(*) FROM staging.events")
        console.print(
            f"warehouse {_warehouse_name(project)}: {totals.loads} loads "
            f"(hours, files and chunks), "
            f"{totals.raw_rows:,} raw records, {staged:,} events staged (unique), "
            f"{totals.quarantined:,} quarantined"
        )
        history = accounts_history(wh, now - FIRST_SCAN_BEFORE) if "Account" in (
            pipeline.plan.entities) else None  # fmt: skip
        for line in (
            backend_line(wh, project),
            grading_line(wh, project),
            accounts_line(wh, project, len(history or [])),
        ):
            if line:
                console.print(line)
        grades = wh.query_arrow(GRADING_SAMPLE) if "qa" in project.sources else None
        models = [[m.model, m.loads, m.staged, m.type_errors, m.quarantined]
                  for m in totals.models]  # fmt: skip
        events = [
            [e.event_id, e.kind, e.model, ", ".join(e.fields), e.first_load_id,
             e.detail[e.field].get("mapping") or json.dumps(e.detail[e.field])]
            for e in reported_events(wh)
        ]  # fmt: skip
        rows = wh.query(
            "SELECT day, platform, active_users, events FROM marts.daily_active_users "
            "ORDER BY day, platform"
        )
        spend = wh.query_arrow("SELECT * FROM marts.cost_per_user") if "costs" in (
            project.sources) else None  # fmt: skip
        anchor = pipeline.describe_model()
        users, moved = None, 0
        if "User" in pipeline.plan.entities:  # the demo project's model
            # A user's attributes as they were at noon of the first day, through the query builder:
            # only the attribute and tie tables asked for are joined.
            noon = start + timedelta(hours=12)
            users = pipeline.query("User", ["country", "plan", "first_platform"],
                                   ["Device_User"], as_of=noon, limit=5)  # fmt: skip
            moved = wh.scalar(
                'SELECT count(*) FROM (SELECT id FROM anchor."User_history" '
                "WHERE attribute = 'plan' GROUP BY id HAVING count(*) > 1) AS m"
            )
    print_table(
        console, "staging models (the transfer log)",
        ["model", "loads typed", "rows staged", "type errors", "quarantined"], models,
    )  # fmt: skip
    print_table(
        console, "schema drift (alerted once each; `anchorflow drift`)",
        ["id", "kind", "model", "fields", "first load", "detail or mapping to add"], events,
    )  # fmt: skip
    if anchor:
        print_model(console, anchor)
    if users is not None:
        title = (
            "anchorflow query User --attrs country,plan,first_platform --ties Device_User "
            f"--as-of {start + timedelta(hours=12):%Y-%m-%dT%H:%M} --limit 5"
        )
        print_arrow(console, users, title)
        console.print(f"{moved:,} users changed plan at least once (anchor.User_history)")
    print_table(
        console, "marts.daily_active_users", ["day", "platform", "active users", "events"], rows
    )
    if spend is not None:
        print_arrow(console, spend, "marts.cost_per_user (the costs files × the anchor model)")
    if grades is not None:
        print_arrow(console, grades, "marts.grading (MaestroQA's grades × the agents' teams)")
    if history is not None:
        print_table(
            console, f"anchor.Account_history: the users' changes between the two scans "
            f"({min(10, len(history))} of {len(history)})",
            ["user", "attribute", "before", "after", "changed at"], history[:10],
        )  # fmt: skip
    with Pipeline(project, now=now) as pipeline:  # the report, and the rules against the truth
        show_fraud(console, pipeline, project)
        _show_metrics(console, pipeline, project)


def _show_metrics(console: Console, pipeline: Pipeline, project: Project) -> None:
    """A query of the semantic layer, and where the dashboards are."""
    from anchorflow.metrics import MetricQuery, run_query

    if "revenue" not in project.metrics.metrics:
        return
    query = MetricQuery(("revenue", "purchases", "buyers"), by=("country",), order="revenue")
    result = run_query(pipeline.warehouse, project, query)
    print_table(
        console,
        "anchorflow metrics query revenue purchases buyers --by country --order revenue",
        result.columns,
        [[round(v, 2) if isinstance(v, float) else v for v in row] for row in result.rows],
    )
    if project.dashboards_path.is_dir():
        console.print(
            f"the dashboards and the Explore page: anchorflow serve --project {project.root}, "
            "then open http://127.0.0.1:8787/dashboards/overview"
        )
