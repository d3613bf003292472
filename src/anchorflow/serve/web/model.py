"""(placeholder: filled in below)"""

from __future__ import annotations

from starlette.routing import Route

from anchorflow.serve.web.context import WebContext


def routes(ctx: WebContext) -> list[Route]:
    return []
