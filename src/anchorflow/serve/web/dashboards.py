"""The Dashboards pages: `/dashboards` (the project's dashboards) and `/dashboards/<name>` (its
tiles in a 12-column grid under the global date range and segment filters), and the JSON of a
dashboard at `/api/dashboards/<name>`. The filters are a GET form, so the URL holds the state:
`?from=2024-03-01&to=2024-03-07&country=Germany` (`to` is the last day shown)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anchorflow.config.dashboards import Dashboard
from anchorflow.dashboards import dashboard_json, dashboards, find, run_dashboard
from anchorflow.dashboards.specs import kpi_view, plain, table_view, tile_spec
from anchorflow.dashboards.tiles import DashboardResult, Selection, default_selection
from anchorflow.errors import ConfigError
from anchorflow.serve.web.context import WebContext
from anchorflow.serve.web.render import json_answer, render
from anchorflow.warehouse import Warehouse


def day_param(request: Request, name: str) -> date | None:
    """A `YYYY-MM-DD` query parameter (empty: not given)."""
    text = request.query_params.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError([f"{name}: expected a day such as 2024-03-01, got {text!r}"]) from None


def requested(
    request: Request, dashboard: Dashboard
) -> tuple[date | None, date | None, dict[str, str]]:
    """The URL's range (first and last day, either may be missing) and segment values."""
    first, last = day_param(request, "from"), day_param(request, "to")
    if first and last and last < first:
        raise ConfigError([f"to: {last} is before from: {first}"])
    segments = {
        name: request.query_params[name]
        for name in dashboard.filters.segments
        if request.query_params.get(name, "")
    }
    return first, last, segments


def read_dashboard(ctx: WebContext, dashboard: Dashboard, request: Request) -> Any:
    first, last, segments = requested(request, dashboard)

    def read(warehouse: Warehouse) -> DashboardResult:
        default = default_selection(warehouse, dashboard) if not (first and last) else None
        start = first or (default.start if default else None)
        end = last + timedelta(days=1) if last else (default.end if default else None)
        assert start is not None and end is not None
        return run_dashboard(warehouse, ctx.project, dashboard, Selection(start, end, segments))

    return read


def number(value: Any, digits: int = 2) -> str:
    """A number for people: thousands separated, whole numbers without decimals."""
    value = plain(value)
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.{digits}f}"
    return f"{int(value):,}"


def formatted(value: Any, fmt: str | None) -> str:
    """A metric's value as its `format:` says (percent: a ratio shown as %)."""
    value = plain(value)
    if fmt == "percent" and isinstance(value, int | float):
        return f"{100 * value:,.1f}%"
    if fmt == "currency" and isinstance(value, int | float):
        return f"{value:,.2f}"
    return number(value)


def tiles_view(result: DashboardResult, dashboard: Dashboard, project: Any) -> list[dict[str, Any]]:
    """What the template draws for each tile: its chart spec, KPI (formatted as its metric
    says) or table."""
    formats: dict[str, str | None] = {}
    if any(tile.kind == "kpi" for tile in result.tiles):
        from anchorflow.metrics import describe

        formats = {info.name: info.format for info in describe(project)}
    shown = []
    for tile in result.tiles:
        view: dict[str, Any] = {"tile": tile, "spec": tile_spec(tile)}
        if tile.kind == "kpi" and tile.error is None:
            view["kpi"] = kpi_view(tile)
            fmt = formats.get(getattr(dashboard.tiles[tile.index], "metric", ""))
            view["kpi"]["shown"] = formatted(view["kpi"]["value"], fmt)
            view["kpi"]["previous_shown"] = formatted(view["kpi"]["previous"], fmt)
        if tile.kind == "table" and tile.error is None:
            view["table"] = table_view(tile)
        shown.append(view)
    return shown


def routes(ctx: WebContext) -> list[Route]:
    async def listing(request: Request) -> Response:
        try:
            found = dashboards(ctx.project)
            problem = None
        except ConfigError as error:
            found, problem = {}, str(error)
        return render(
            request, "dashboards.html", title="Dashboards", dashboards=list(found.values()),
            folder=ctx.project.dashboards.path, messages=[problem] if problem else [],
        )  # fmt: skip

    async def page(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            dashboard = find(ctx.project, name)
            result = await ctx.read(read_dashboard(ctx, dashboard, request))
        except ConfigError as error:
            return render(
                request, "dashboard.html", title=name, result=None, messages=[str(error)],
                status_code=404 if "no dashboard" in str(error) else 400,
            )  # fmt: skip
        last = result.selection.end - timedelta(days=1)
        return render(
            request, "dashboard.html", title=result.title, result=result, dashboard=dashboard,
            tiles=tiles_view(result, dashboard, ctx.project), last_day=last, number=number,
        )  # fmt: skip

    async def api(request: Request) -> Response:
        try:
            dashboard = find(ctx.project, request.path_params["name"])
            result = await ctx.read(read_dashboard(ctx, dashboard, request))
        except ConfigError as error:
            status = 404 if "no dashboard" in str(error) else 400
            return json_answer({"error": str(error)}, status)
        return json_answer(dashboard_json(result))

    async def api_list(request: Request) -> Response:
        try:
            found = dashboards(ctx.project)
        except ConfigError as error:
            return json_answer({"error": str(error)}, 400)
        return json_answer([
            {"name": d.name, "title": d.title, "description": d.description, "file": d.file,
             "tiles": [t.kind for t in d.tiles]}
            for d in found.values()
        ])  # fmt: skip

    return [
        Route("/dashboards", listing, methods=["GET"]),
        Route("/dashboards/{name}", page, methods=["GET"]),
        Route("/api/dashboards", api_list, methods=["GET"]),
        Route("/api/dashboards/{name}", api, methods=["GET"]),
    ]
