"""The Health page (`/`) and `/api/health`: every source's cursor and lag, the last loads, the
runs (the journal's, and this server's with their schedules), the alerts waiting; a chart of
the rows loaded per hour per source. `POST /run` is the page's `Run now`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from anchorflow.errors import ConfigError
from anchorflow.journal.health import (
    HourlyRows,
    LastLoad,
    SentAlert,
    last_loads,
    recent_alerts,
    rows_per_hour,
)
from anchorflow.run.results import Status
from anchorflow.serve.web.context import WebContext
from anchorflow.serve.web.render import form, json_answer, plain, render
from anchorflow.warehouse import Warehouse

DAYS = 3


@dataclass(frozen=True)
class Health:
    status: Status
    last_loads: list[LastLoad]
    hourly: list[HourlyRows]
    sent: list[SentAlert]


def read_health(ctx: WebContext) -> Any:
    def read(warehouse: Warehouse) -> Health:
        with ctx.pipeline(warehouse) as pipeline:
            status = pipeline.status()
        hourly = rows_per_hour(warehouse, DAYS)
        return Health(status, last_loads(warehouse), hourly, recent_alerts(warehouse))

    return read


def served(ctx: WebContext) -> dict[str, Any]:
    """This server's side: the schedules, the run in flight, the runs it made."""
    runner = ctx.runner
    if runner is None:
        return {"schedules": [], "running": None, "pending": [], "runs": []}
    return {
        "schedules": [
            {"source": s.source, "cron": s.cron.text, "next_at": s.next_at}
            for s in runner.schedules()
        ],
        "running": list(runner.running) if runner.running else None,
        "pending": runner.pending,
        "runs": runner.history,
    }


def chart(hourly: list[HourlyRows]) -> dict[str, Any]:
    """Rows per hour, a row of bars per source on its own time axis."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": [{"source": h.source, "hour": h.hour, "rows": h.rows} for h in hourly]},
        "facet": {"row": {"field": "source", "type": "nominal", "title": None}},
        "resolve": {"scale": {"x": "independent", "y": "independent"}},
        "spec": {
            "width": 900,
            "height": 70,
            "mark": {"type": "bar", "tooltip": True},
            "encoding": {
                "x": {"field": "hour", "type": "temporal", "title": None},
                "y": {"field": "rows", "type": "quantitative", "title": "rows"},
                "color": {"field": "source", "type": "nominal", "legend": None},
            },
        },
    }


def routes(ctx: WebContext) -> list[Route]:
    async def page(request: Request) -> Response:
        health = await ctx.read(read_health(ctx))
        return render(
            request, "health.html", title="Pipeline health", health=health,
            served=served(ctx), chart=chart(health.hourly), sources=list(ctx.project.sources),
            days=DAYS, messages=request.query_params.getlist("message"),
        )  # fmt: skip

    async def api(request: Request) -> Response:
        health = await ctx.read(read_health(ctx))
        status = health.status
        return json_answer({
            "sources": status.sources, "last_loads": health.last_loads,
            "loads": status.loads, "runs": status.runs, "quarantined": status.quarantined,
            "alerts": {"pending": status.alerts, "sent": health.sent},
            "open_schema_events": status.open_schema_events,
            "rows_per_hour": health.hourly, "served": plain(served(ctx)),
        })  # fmt: skip

    async def run_now(request: Request) -> Response:
        source = (await form(request)).get("source", [""])[0]
        if ctx.runner is None:
            return json_answer({"error": "this server runs no loads"}, 409)
        try:
            names = ctx.runner.request([source] if source else [], reason="manual")
        except ConfigError as error:
            return json_answer({"error": str(error)}, 404)
        if "application/json" in request.headers.get("accept", ""):
            return json_answer({"requested": names}, 202)
        message = f"run requested: {', '.join(names)}"
        return RedirectResponse("/?" + urlencode({"message": message}), status_code=303)

    return [
        Route("/", page, methods=["GET"]),
        Route("/api/health", api, methods=["GET"]),
        Route("/run", run_now, methods=["POST"]),
    ]
