"""Rendering: Jinja2 templates from `templates/`, chart specs as escaped JSON, JSON answers of
the façade's dataclasses."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# (path, label) of the nav, in order; Fraud is shown only when the project has `fraud:`.
NAV = [
    ("/", "Health"),
    ("/model", "Data model"),
    ("/explore", "Explore"),
    ("/dashboards", "Dashboards"),
    ("/fraud", "Fraud"),
]

environment = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def plain(value: Any) -> Any:
    """`value` as JSON can hold it: dataclasses as dicts, times as ISO text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    return value


def spec_json(spec: dict[str, Any]) -> str:
    """A Vega-Lite spec as JSON, for a `data-spec` attribute (Jinja escapes it there)."""
    return json.dumps(plain(spec), separators=(",", ":"))


def json_answer(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(plain(value), status_code=status_code)


def nav(request: Request) -> list[tuple[str, str]]:
    ctx = getattr(request.app.state, "web", None)
    has_fraud = bool(ctx is not None and ctx.has_fraud)
    return [(path, label) for path, label in NAV if path != "/fraud" or has_fraud]


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    """The page `template` (which extends base.html) with `context`."""
    page = environment.get_template(template)
    path = request.url.path
    current = next((p for p, _ in reversed(NAV) if path == p or (p != "/" and
                    path.startswith(p + "/"))), path)  # fmt: skip
    html = page.render(
        request=request, nav=nav(request), current=current, spec_json=spec_json,
        **context,
    )  # fmt: skip
    status = int(context.get("status_code", 200))
    return HTMLResponse(html, status_code=status)


MAX_FORM = 64 << 10


async def form(request: Request) -> dict[str, list[str]]:
    """The fields of a urlencoded form (the pages' buttons post nothing else); a body larger
    than `MAX_FORM` counts as empty."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
