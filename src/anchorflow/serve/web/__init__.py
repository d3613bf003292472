"""The pages of `anchorflow serve`: server-rendered (Jinja2), charts drawn in the browser by the
vendored Vega-Lite from specs with their data inline. Each page module exposes
`routes(ctx) -> list[Route]`; `PAGES` lists them (Explore and Dashboards add theirs)."""

from __future__ import annotations

from types import ModuleType

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from anchorflow.serve.web import dashboards, explore, fraud, health, model
from anchorflow.serve.web.context import WebContext
from anchorflow.serve.web.render import STATIC

PAGES: list[ModuleType] = [health, model, explore, dashboards, fraud]


def web_routes(ctx: WebContext) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for page in PAGES:
        routes += page.routes(ctx)
    routes.append(Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"))
    return routes


__all__ = ["PAGES", "WebContext", "web_routes"]
