"""The Explore page (`/explore`) and `/api/metrics/query`: a metric by dimensions, filters, a
time grain and a date range, through the semantic layer; a chart (a line over time with a grain,
else bars), the table, and the SQL with its bound values. The choices are a GET form, so the URL
holds them and can be shared:
`/explore?metric=revenue&by=country&grain=day&where=platform+%3D+iOS&from=2024-03-01&to=2024-03-07`
(`metric`, `by` and `where` repeat; `to` is the last day)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anchorflow.dashboards.specs import SCHEMA, plain, records
from anchorflow.errors import ConfigError
from anchorflow.metrics import (
    MetricInfo,
    MetricQuery,
    MetricResult,
    describe,
    parse_filter,
    run_query,
)
from anchorflow.serve.web.context import WebContext
from anchorflow.serve.web.dashboards import day_param, number
from anchorflow.serve.web.render import json_answer, render
from anchorflow.warehouse import Warehouse

DEFAULT_LIMIT = 500
MAX_LIMIT = 10_000


@dataclass
class ExploreState:
    """What the URL asks for, as the form shows it back."""

    metrics: list[str] = field(default_factory=list)
    by: list[str] = field(default_factory=list)
    grain: str = ""
    where: list[str] = field(default_factory=list)
    first: date | None = None
    last: date | None = None
    limit: int = DEFAULT_LIMIT


def explore_state(request: Request, infos: list[MetricInfo]) -> ExploreState:
    params = request.query_params
    metrics = [m for m in params.getlist("metric") if m] or ([infos[0].name] if infos else [])
    limit_text = params.get("limit", "") or str(DEFAULT_LIMIT)
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise ConfigError([f"limit: expected a number from 1 to {MAX_LIMIT}, got {limit_text!r}"])
    return ExploreState(
        metrics=metrics,
        by=[b for b in params.getlist("by") if b],
        grain=params.get("grain", ""),
        where=[w for w in params.getlist("where") if w.strip()],
        first=day_param(request, "from"),
        last=day_param(request, "to"),
        limit=int(limit_text),
    )


def fitted(state: ExploreState, infos: list[MetricInfo]) -> ExploreState:
    """The page's state without the dimensions and grain that its (first) metric lacks: what
    the form keeps when another metric is chosen. The API refuses them instead."""
    chosen = next((i for i in infos if state.metrics and i.name == state.metrics[0]), None)
    if chosen is None:
        return state
    state.by = [b for b in state.by if b in chosen.dimensions]
    state.grain = state.grain if state.grain in chosen.grains else ""
    return state


def metric_query(state: ExploreState) -> MetricQuery:
    return MetricQuery(
        metrics=tuple(state.metrics),
        by=tuple(state.by),
        grain=state.grain or None,
        where=tuple(parse_filter(text) for text in state.where),
        start=state.first,
        end=state.last + timedelta(days=1) if state.last else None,
        limit=state.limit,
    )


def chart(result: MetricResult, query: MetricQuery) -> dict[str, Any] | None:
    """A line per series over time when the query has a grain, else a bar per row."""
    if not result.rows:
        return None
    metric = query.metrics[0]
    values = records(result.columns, result.rows)
    spec: dict[str, Any] = {
        "$schema": SCHEMA, "width": "container", "height": 300,
        "autosize": {"type": "fit", "contains": "padding"}, "data": {"values": values},
    }  # fmt: skip
    tooltip = [{"field": c} for c in result.columns]
    if query.grain:
        encoding: dict[str, Any] = {
            "x": {"field": query.grain, "type": "temporal", "title": None},
            "y": {"field": metric, "type": "quantitative"},
            "tooltip": tooltip,
        }
        if query.by:
            for value in values:
                value["series"] = " / ".join(str(value[b]) for b in query.by)
            encoding["color"] = {"field": "series", "type": "nominal", "title": ", ".join(query.by)}
        spec.update(mark={"type": "line", "point": True}, encoding=encoding)
        return spec
    for value in values:
        value["label"] = " / ".join(str(value[b]) for b in query.by) if query.by else metric
    spec.update(
        mark={"type": "bar"},
        encoding={
            "y": {
                "field": "label",
                "type": "nominal",
                "sort": "-x",
                "title": ", ".join(query.by) or None,
            },
            "x": {"field": metric, "type": "quantitative"},
            "tooltip": tooltip,
        },
    )
    return spec


def result_json(result: MetricResult) -> dict[str, Any]:
    return {
        "columns": result.columns,
        "rows": [[plain(v) for v in row] for row in result.rows],
        "sql": result.sql,
        "params": [plain(v) for v in result.params],
        "seconds": round(result.seconds, 4),
    }


def routes(ctx: WebContext) -> list[Route]:
    def ask(query: MetricQuery) -> Any:
        def read(warehouse: Warehouse) -> MetricResult:
            return run_query(warehouse, ctx.project, query)

        return read

    async def page(request: Request) -> Response:
        infos = describe(ctx.project)
        state, result, query, problem = ExploreState(), None, None, None
        try:
            state = fitted(explore_state(request, infos), infos)
            if state.metrics:
                query = metric_query(state)
                result = await ctx.read(ask(query))
        except ConfigError as error:
            problem = str(error)
        chosen = next((i for i in infos if state.metrics and i.name == state.metrics[0]), None)
        return render(
            request, "explore.html", title="Explore", infos=infos, chosen=chosen, state=state,
            result=result, spec=chart(result, query) if result and query else None,
            number=number, messages=[problem] if problem else [],
            status_code=400 if problem else 200,
        )  # fmt: skip

    async def api(request: Request) -> Response:
        try:
            state = explore_state(request, describe(ctx.project))
            if not state.metrics:
                raise ConfigError(["metric: name at least one metric (the project has none)"])
            result = await ctx.read(ask(metric_query(state)))
        except ConfigError as error:
            return json_answer({"error": str(error)}, 400)
        return json_answer(result_json(result))

    async def api_metrics(request: Request) -> Response:
        return json_answer(describe(ctx.project))

    return [
        Route("/explore", page, methods=["GET"]),
        Route("/api/metrics/query", api, methods=["GET"]),
        Route("/api/metrics", api_metrics, methods=["GET"]),
    ]
