"""The Data model page (`/model`) and `/api/model`: the anchor model's entities, attributes,
ties and knots (history kind, rows, freshness), the staging models with their latest field
statistics (presence, nulls, JSON types, top values: never those of a `pii` column), and the
open drift events, each with an Acknowledge button (`POST /model/acknowledge`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from anchorflow.anchor.describe import TableInfo
from anchorflow.config.project import Project
from anchorflow.errors import WarehouseError
from anchorflow.journal.schema_events import SchemaEventInfo
from anchorflow.journal.transfers import ModelTotals, model_totals
from anchorflow.run.results import FieldReport
from anchorflow.serve.web.context import WebContext
from anchorflow.serve.web.render import form, json_answer, render
from anchorflow.warehouse import Warehouse

KINDS = ("entity", "attribute", "tie", "knot")


@dataclass(frozen=True)
class StagingInfo:
    model: str
    source: str
    stream: str | None
    description: str | None
    totals: ModelTotals | None
    fields: FieldReport


@dataclass(frozen=True)
class ModelView:
    tables: list[TableInfo]
    staging: list[StagingInfo]
    drift: list[SchemaEventInfo]

    def of_kind(self, kind: str) -> list[TableInfo]:
        return [t for t in self.tables if t.kind == kind]


def without_pii(project: Project, report: FieldReport) -> FieldReport:
    """The report with no example value of a column marked `pii` (the staging step records
    none; this keeps it so for statistics recorded before a column was marked)."""
    columns = project.staging[report.model].columns
    hidden = {name for name, column in columns.items() if column.pii}
    fields = [replace(f, examples=[], min_value=None, max_value=None)
              if f.column in hidden else f for f in report.fields]  # fmt: skip
    return replace(report, fields=fields)


def read_model(ctx: WebContext) -> Any:
    project = ctx.project

    def read(warehouse: Warehouse) -> ModelView:
        with ctx.pipeline(warehouse) as pipeline:
            tables = pipeline.describe_model()
            totals = {t.model: t for t in model_totals(warehouse)}
            staging = [
                StagingInfo(name, model.source, model.stream, model.description,
                            totals.get(name), without_pii(project, pipeline.field_stats(name)))
                for name, model in project.staging.items()
            ]  # fmt: skip
            drift = pipeline.schema_events()
        return ModelView(tables, staging, drift)

    return read


def routes(ctx: WebContext) -> list[Route]:
    async def page(request: Request) -> Response:
        view = await ctx.read(read_model(ctx))
        return render(request, "model.html", title="Data model", view=view, kinds=KINDS,
                      messages=request.query_params.getlist("message"))  # fmt: skip

    async def api(request: Request) -> Response:
        view = await ctx.read(read_model(ctx))
        answer: dict[str, Any] = {f"{kind}s": view.of_kind(kind) for kind in KINDS}
        answer["entities"] = answer.pop("entitys")
        answer["staging_models"] = view.staging
        answer["drift"] = view.drift
        return json_answer(answer)

    async def acknowledge(request: Request) -> Response:
        fields = await form(request)
        try:
            ids = [int(v) for v in fields.get("event_id", [])]
        except ValueError:
            return json_answer({"error": "event_id must be a number"}, 400)
        if not ids:
            return json_answer({"error": "no event_id given"}, 400)
        try:
            closed = await ctx.write(lambda warehouse: ctx.pipeline(warehouse).acknowledge(ids))
        except WarehouseError as error:  # a run wrote the same rows meanwhile: try again
            return json_answer({"error": str(error).split("\n")[0]}, 409)
        if "application/json" in request.headers.get("accept", ""):
            return json_answer({"acknowledged": closed})
        message = f"{closed} drift event{'s' if closed != 1 else ''} acknowledged"
        return RedirectResponse("/model?" + urlencode({"message": message}) + "#drift", 303)

    return [
        Route("/model", page, methods=["GET"]),
        Route("/api/model", api, methods=["GET"]),
        Route("/model/acknowledge", acknowledge, methods=["POST"]),
    ]
