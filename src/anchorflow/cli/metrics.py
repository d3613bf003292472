"""`anchorflow metrics`: list the semantic layer's metrics, query them, check their alerts."""

from __future__ import annotations

import csv
import json as jsonlib
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from anchorflow.cli.base import (
    NowOption,
    PlainHelp,
    ProjectOption,
    _with_pipeline,
    app,
    console,
    day_option,
    guarded,
)
from anchorflow.config import load_project

if TYPE_CHECKING:
    from anchorflow.metrics import MetricResult
    from anchorflow.metrics.alerts import AlertCheck

metrics_app = typer.Typer(
    help="The semantic layer: the metrics of `metrics:`, by dimension and time grain.",
    cls=PlainHelp,
    no_args_is_help=True,
)
app.add_typer(metrics_app, name="metrics")
FORMATS = ("table", "csv", "json")


@metrics_app.command("list")
def list_metrics(project: ProjectOption = None) -> None:
    """Every metric: its label, model, the dimensions it can be grouped and filtered by, and
    its time grains. Reads the project file only."""
    from anchorflow.console import print_table
    from anchorflow.metrics import describe

    infos = guarded(lambda: describe(load_project(project, defer_source_env=True)))
    print_table(
        console,
        "metrics",
        ["metric", "label", "model", "dimensions", "grains", "format"],
        [[i.name, i.label, i.model, ", ".join(i.dimensions), ", ".join(i.grains), i.format]
         for i in infos],
    )  # fmt: skip


@metrics_app.command("query")
def query(
    metrics: Annotated[list[str], typer.Argument(help="Metric names (see `metrics list`).")],
    by: Annotated[
        list[str] | None, typer.Option("--by", help="Group by this dimension (repeatable).")
    ] = None,
    grain: Annotated[
        str | None, typer.Option("--grain", help="hour, day, week, month, quarter or year.")
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option("--where", help='A filter such as "country = DE" (repeatable).'),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (inclusive).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Day after the last (exclusive).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most N rows.", min=0)] = None,
    order: Annotated[
        str | None, typer.Option("--order", help="Largest first by this metric.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL and its values instead of running it.")
    ] = False,
    project: ProjectOption = None,
) -> None:
    """The metrics by the dimensions and time grain asked, as the Explore page shows them.

    Reads the warehouse read-only, beside other readers. A dimension of another model is
    reached only along many_to_one joins: a measure is never counted twice."""
    from anchorflow.metrics import MetricQuery, compile_query, parse_filter, run_query

    if fmt not in FORMATS:
        raise typer.BadParameter("expected table, csv or json", param_hint="--format")

    def asked() -> MetricQuery:
        return MetricQuery(
            metrics=tuple(metrics), by=tuple(by or ()), grain=grain,
            where=tuple(parse_filter(w) for w in where or ()),
            start=day_option("--from", start), end=day_option("--to", end),
            limit=limit, order=order,
        )  # fmt: skip

    request = guarded(asked)
    if sql:
        loaded = guarded(lambda: load_project(project, defer_source_env=True))
        text, params = guarded(
            lambda: compile_query(loaded.metrics, request, loaded.warehouse.engine)
        )
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        console.print(f"-- values: {params!r}", markup=False, highlight=False)
        return
    result, formats = _with_pipeline(
        project,
        lambda p: (run_query(p.warehouse, p.project, request), p.project.metrics.formats()),
        read_only=True,
    )
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    elif fmt == "json":
        sys.stdout.write(jsonlib.dumps(result.to_json(), default=str, indent=2) + "\n")
    else:
        print_metric_result(console, result, formats)


@metrics_app.command("alerts")
def alerts(
    force: Annotated[
        bool, typer.Option("--force", help="Check every alert, even if its data is unchanged.")
    ] = False,
    now: NowOption = None,
    project: ProjectOption = None,
) -> None:
    """Check the alerts of `metrics:` now (as `run` does after the marts when their data
    changed), send a breach once and a recovery when it clears, and print each one's state."""
    checks = _with_pipeline(project, lambda p: p.check_metric_alerts(force), now=now)
    print_alert_checks(console, checks)


def print_metric_result(
    console: Console, result: MetricResult, formats: dict[str, str | None]
) -> None:
    """The rows with each metric in its format (percent, currency, integer)."""
    from anchorflow.console import print_table

    shown = [
        [
            _shown(value, formats.get(column))
            for column, value in zip(result.columns, row, strict=True)
        ]
        for row in result.rows
    ]
    title = f"{', '.join(result.metrics)} ({len(result.rows):,} rows, {result.seconds:.3f} s)"
    print_table(console, title, result.columns, shown)


def _shown(value: object, fmt: str | None) -> object:
    if value is None or fmt is None or isinstance(value, bool):
        return value
    number = float(value) if isinstance(value, int | float | Decimal) else None
    if number is None:
        return value
    if fmt == "percent":
        return f"{number:.2%}"
    if fmt == "integer":
        return f"{round(number):,}"
    if fmt == "currency":
        return f"{number:,.2f}"
    return value


def print_alert_checks(console: Console, checks: list[AlertCheck]) -> None:
    from anchorflow.console import print_table

    if not checks:
        console.print("no alerts in metrics: (see docs/metrics.md)")
        return
    print_table(
        console,
        "metric alerts",
        ["alert", "metric", "series", "state", "period", "value", "previous", "condition", "sent"],
        [[c.alert, c.metric, c.series, f"failed: {c.error}" if c.error else c.state,
          c.period.date() if c.period and c.period.hour == 0 else c.period, c.value, c.previous,
          c.condition, c.sent] for c in checks],
    )  # fmt: skip
