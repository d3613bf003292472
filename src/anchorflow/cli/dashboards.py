"""`anchorflow dashboards`: list the project's dashboards, print one's tiles (read-only)."""

from __future__ import annotations

import json as jsonlib
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer

from anchorflow.cli.base import (
    PlainHelp,
    ProjectOption,
    _with_pipeline,
    app,
    console,
    day_option,
    guarded,
)
from anchorflow.cli.fraud import FromOption, ToOption
from anchorflow.errors import ConfigError

dashboards_app = typer.Typer(
    help="Dashboards defined in dashboards/<name>.yml: list them, print one's tiles.",
    cls=PlainHelp,
    no_args_is_help=True,
)
app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.command("list")
def list_dashboards(project: ProjectOption = None) -> None:
    """The project's dashboards: name, title, tiles and file."""
    from anchorflow.config.loader import load_project
    from anchorflow.console import print_table
    from anchorflow.dashboards import dashboards

    found = guarded(lambda: dashboards(load_project(project, defer_source_env=True)))
    print_table(
        console,
        "dashboards",
        ["name", "title", "tiles", "file"],
        [[d.name, d.title, ", ".join(t.kind for t in d.tiles), d.file] for d in found.values()],
    )


def segment_values(filters: list[str]) -> dict[str, str]:
    """`--filter country=DE` (repeatable) as {dimension: value}."""
    found = {}
    for text in filters:
        dimension, sep, value = text.partition("=")
        if not sep or not dimension.strip() or not value.strip():
            raise ConfigError(
                [f"--filter: expected DIMENSION=VALUE such as country=DE, got {text!r}"]
            )
        found[dimension.strip()] = value.strip()
    return found


@dashboards_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The dashboard (its file's name).")],
    start: FromOption = None,
    end: ToOption = None,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", help="A segment filter DIMENSION=VALUE (repeatable)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table or json.", case_sensitive=False)
    ] = "table",
    project: ProjectOption = None,
) -> None:
    """Run every tile of a dashboard and print its data (the warehouse is opened read-only).

    Without --from/--to, the dashboard's default date range (filters.date.default)."""
    from anchorflow.dashboards import dashboard_json, find, run_dashboard
    from anchorflow.dashboards.tiles import Selection, default_selection

    if fmt.lower() not in ("table", "json"):
        raise typer.BadParameter("expected table or json", param_hint="--format")
    first, last = day_option("--from", start), day_option("--to", end)
    segments = guarded(lambda: segment_values(filters or []))

    def action(pipeline: Any) -> Any:
        dashboard = find(pipeline.project, name)
        default = default_selection(pipeline.warehouse, dashboard)
        selection = Selection(
            first or default.start,
            last + timedelta(days=1) if last else default.end,
            segments,
        )
        return run_dashboard(pipeline.warehouse, pipeline.project, dashboard, selection)

    result = _with_pipeline(project, action, read_only=True)
    if fmt.lower() == "json":
        sys.stdout.write(jsonlib.dumps(dashboard_json(result), default=str, indent=2) + "\n")
        return
    print_dashboard(result)


def print_dashboard(result: Any) -> None:
    """The dashboard's range and filters, then each tile's data as a table with its timing."""
    from anchorflow.console import print_table
    from anchorflow.dashboards.specs import plain

    last = result.selection.end - timedelta(days=1)
    shown = ", ".join(f"{k}={v}" for k, v in result.selection.segments.items()) or "none"
    console.print(
        f"[bold]{result.title}[/bold]: {result.selection.start} .. {last}, filters: {shown} "
        f"({result.seconds:.2f} s)",
        highlight=False,
    )
    for tile in result.tiles:
        title = f"{tile.index + 1}. {tile.title} [{tile.kind}, {tile.seconds * 1000:.0f} ms]"
        if tile.error:
            console.print(f"{title}\n  [red]error:[/red] {tile.error}", highlight=False)
            continue
        if tile.ignored:
            title += f" (not filtered by {', '.join(tile.ignored)})"
        rows = [[plain(v) for v in row] for row in tile.rows]
        print_table(console, title, tile.columns, rows)
