"""The web app of `anchorflow serve`: `POST /hooks/<source>` for each webhook source of the
project, and `GET /health`.

A delivery is checked in the order that costs the least before trusting it: its declared size
(413), its content type (415), its body read up to the limit and no further (413), its
signature (401), then its JSON (400). Only then are its records handed to the source's intake,
and the answer waits until they are durable (200), or were already stored (200, duplicate).
Every other route needs the serve token when one is set (a server bound beyond loopback).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from anchorflow.config.project import Project
from anchorflow.serve.deliveries import BadDelivery, records_of
from anchorflow.serve.guard import Guard
from anchorflow.serve.intake import Intake, IntakeFailed
from anchorflow.serve.signatures import Delivery, refusal
from anchorflow.serve.web.context import WebContext
from anchorflow.sources.webhook.config import WebhookConfig

log = logging.getLogger("anchorflow.serve")
HOOKS = "/hooks/"


class TooLarge(Exception):
    """The body passed the source's `max_body`."""


def webhook_sources(project: Project) -> dict[str, WebhookConfig]:
    return {n: c for n, c in project.sources.items() if isinstance(c, WebhookConfig)}


def _answer(code: int, **body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=code)


async def _respond(send: Send, code: int, **body: Any) -> None:
    """One JSON answer, sent without building a Response object (the webhook path is hot)."""
    text = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(text))]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": text})


async def _bounded_body(receive: Receive, limit: int) -> bytes:
    """The body, reading no more than `limit` bytes of it (a liar's Content-Length included)."""
    parts: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise TooLarge()  # nobody to answer: nothing stored either way
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise TooLarge()
        parts.append(part)
        more = message.get("more_body", False)
    return b"".join(parts)


class Receiver:
    """`POST /hooks/<source>`: the checks, then the intake of the source. A bare ASGI app
    (no routing, request or response objects): at thousands of deliveries a second the
    framework's layers cost more than the checks."""

    def __init__(self, intakes: dict[str, Intake], clock: Callable[[], float]) -> None:
        self.intakes = intakes
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"][len(HOOKS) :]
        intake = self.intakes.get(name)
        if intake is None:
            await _respond(send, 404, error=f"no webhook source {name!r}")
        elif scope["method"] != "POST":
            await _respond(send, 405, error="expected POST")
        else:
            code, answer = await self.deliver(intake, scope, receive)
            await _respond(send, code, **answer)

    async def deliver(
        self, intake: Intake, scope: Scope, receive: Receive
    ) -> tuple[int, dict[str, Any]]:
        config = intake.config
        limit = int(config.max_body)
        # ASGI header names are lower case; a repeated header keeps its last value.
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "0")
        if not declared.isdigit():
            return 400, {"error": "Content-Length is not a number"}
        if int(declared) > limit:
            return 413, {"error": f"the body is larger than {limit} bytes"}
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return 415, {"error": "expected Content-Type: application/json"}
        try:
            body = await _bounded_body(receive, limit)
        except TooLarge:
            return 413, {"error": f"the body is larger than {limit} bytes"}
        reason = refusal(config, Delivery(body, headers, self.clock()))
        if reason is not None:
            log.info("sources.%s: delivery refused: %s", intake.name, reason)
            return 401, {"error": reason}
        try:
            records = records_of(config, body)
            stored = await intake.deliver(records.texts, records.ids)
        except BadDelivery as bad:
            return 400, {"error": str(bad)}
        except IntakeFailed:
            return 503, {"error": "not stored; deliver it again later"}
        status = "stored" if stored or not records.texts else "duplicate"
        return 200, {"status": status, "records": stored}


class FrontDoor:
    """Webhooks go straight to the receiver (their sender signs them); every other request
    carries the token when one is set, then reaches the app (see `serve.guard`)."""

    def __init__(self, app: ASGIApp, receiver: Receiver, token: str | None) -> None:
        self.app = app
        self.receiver = receiver
        self.guard = Guard(app, token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(HOOKS):
            await self.receiver(scope, receive, send)
            return
        await self.guard(scope, receive, send)


def create_app(
    project: Project,
    *,
    token: str | None = None,
    intakes: dict[str, Intake] | None = None,
    clock: Callable[[], float] = time.time,
    web: WebContext | None = None,
) -> ASGIApp:
    """The app serving `project`. `intakes` already opened (their landing held, leftovers
    published) are used as they are; the others are opened at startup. `web`: the pages and
    the read API over the warehouse the server holds (none without it)."""
    hooks = dict(intakes or {})
    for name, config in webhook_sources(project).items():
        hooks.setdefault(name, Intake(name, config, project.root))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Intake] = []
        try:
            if web is not None:
                web.open()
            for intake in hooks.values():
                await intake.start()
                started.append(intake)
            yield
        finally:
            for intake in started:
                await intake.stop()
            if web is not None:
                web.close()

    async def health(request: Request) -> JSONResponse:
        sources = {name: intake.health() for name, intake in hooks.items()}
        ok = not any(s["failed"] for s in sources.values())
        return _answer(200 if ok else 503, status="ok" if ok else "failing", sources=sources)

    routes: list[BaseRoute] = [Route("/health", health, methods=["GET"])]
    if web is not None:
        from anchorflow.serve.web import web_routes

        routes += web_routes(web)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.web = web
    return FrontDoor(app, Receiver(hooks, clock), token)
