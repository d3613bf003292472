"""The Fraud page (`/fraud`, when the project has `fraud:`) and `/api/fraud/report`: the
report (`fraud.report`, as `anchorflow fraud report` sums it) over a date range, per country ×
campaign, with a column per rule, and a chart of the fraud registrations per campaign."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anchorflow.fraud.report import COUNTS, report_days, report_rows
from anchorflow.serve.web.context import WebContext
from anchorflow.serve.web.render import json_answer, render
from anchorflow.warehouse import Warehouse

CHART_TOP = 30  # country × campaign pairs in the chart, most fraud registrations first


@dataclass(frozen=True)
class FraudReport:
    first_day: date | None
    last_day: date | None
    start: date | None
    end: date | None
    columns: list[str]
    rows: list[dict[str, Any]]  # per country × campaign (sub-campaigns summed)
    rules: list[str]


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} must be a day, YYYY-MM-DD (got {text!r})") from None


def by_country_campaign(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """The report's rows (per sub-campaign too) summed per country × campaign."""
    rules = columns[len(COUNTS) + 4 :]
    summed: dict[tuple[Any, Any], dict[str, Any]] = {}
    for row in rows:
        record = dict(zip(columns, row, strict=True))
        key = (record["country"], record["campaign"])
        into = summed.setdefault(key, {"country": key[0], "campaign": key[1],
                                       **dict.fromkeys([*COUNTS, *rules], 0)})  # fmt: skip
        for name in (*COUNTS, *rules):
            into[name] += int(record[name] or 0)
    for record in summed.values():
        registrations = record["registrations"]
        record["fraud_rate"] = (
            round(record["fraud_registrations"] / registrations, 4) if registrations else None
        )
    return sorted(summed.values(), key=lambda r: (-r["fraud_registrations"],
                                                  -r["registrations"], str(r["country"]),
                                                  str(r["campaign"])))  # fmt: skip


def read_report(start: date | None, end: date | None) -> Any:
    def read(warehouse: Warehouse) -> FraudReport:
        first, last = report_days(warehouse)
        columns, rows = report_rows(warehouse, start, end)
        rules = columns[len(COUNTS) + 4 :]
        table = by_country_campaign(columns, rows) if columns else []
        head = ["country", "campaign", *COUNTS, "fraud_rate", *rules]
        return FraudReport(first, last, start, end, head, table, rules)

    return read


def chart(report: FraudReport) -> dict[str, Any]:
    values = [
        {"campaign": str(r["campaign"]), "country": str(r["country"]),
         "fraud registrations": r["fraud_registrations"], "registrations": r["registrations"],
         "fraud rate": r["fraud_rate"]}
        for r in report.rows[:CHART_TOP] if r["fraud_registrations"]
    ]  # fmt: skip
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": "container",
        "height": 260,
        "data": {"values": values},
        "mark": {"type": "bar"},
        "encoding": {
            "x": {"field": "campaign", "type": "nominal", "sort": "-y"},
            "y": {"field": "fraud registrations", "type": "quantitative", "aggregate": "sum"},
            "color": {"field": "country", "type": "nominal"},
            "tooltip": [
                {"field": "campaign"},
                {"field": "country"},
                {"field": "fraud registrations", "type": "quantitative"},
                {"field": "registrations", "type": "quantitative"},
                {"field": "fraud rate", "type": "quantitative", "format": ".1%"},
            ],
        },
    }


def routes(ctx: WebContext) -> list[Route]:
    def dates(request: Request) -> tuple[date | None, date | None]:
        query = request.query_params
        return _day(query.get("start"), "start"), _day(query.get("end"), "end")

    async def page(request: Request) -> Response:
        if not ctx.has_fraud:
            return render(request, "fraud.html", title="Fraud", report=None, status_code=404)
        try:
            start, end = dates(request)
        except ValueError as error:
            return render(request, "fraud.html", title="Fraud", report=None,
                          messages=[str(error)], status_code=400)  # fmt: skip
        report = await ctx.read(read_report(start, end))
        return render(request, "fraud.html", title="Fraud", report=report, chart=chart(report))

    async def api(request: Request) -> Response:
        if not ctx.has_fraud:
            return json_answer({"error": "the project has no fraud: section"}, 404)
        try:
            start, end = dates(request)
        except ValueError as error:
            return json_answer({"error": str(error)}, 400)
        return json_answer(await ctx.read(read_report(start, end)))

    return [
        Route("/fraud", page, methods=["GET"]),
        Route("/api/fraud/report", api, methods=["GET"]),
    ]
