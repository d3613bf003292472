"""Who may use the pages and the API of `anchorflow serve`.

Bound beyond loopback the server has a token (ANCHORFLOW_SERVE_TOKEN), and every request but a
signed webhook must show it: `Authorization: Bearer <token>` (scripts, the API), or the
`anchorflow_token` cookie, which a browser gets by opening any page once with `?token=<token>`:
the answer sets the cookie (HttpOnly, SameSite=Strict) and redirects to the same address
without the token, so that it stays out of the address bar and the history.

A form post (Run now, Acknowledge) must come from the server's own pages: a request that does
not carry the bearer header must name this server as its `Origin` (or `Referer`), else 403.
With the SameSite=Strict cookie another site cannot make a browser post as its user; on
loopback without a token the origin check alone keeps other sites' pages from posting.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "anchorflow_token"
SAFE = {"GET", "HEAD", "OPTIONS"}


async def _refuse(send: Send, code: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _cookie(headers: dict[bytes, bytes]) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get(b"cookie", b"").decode("latin-1"))
    except Exception:  # a malformed cookie header is no token
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def same_origin(headers: dict[bytes, bytes], scheme: str) -> bool:
    """Whether the request's Origin (or, without one, its Referer) is this server."""
    host = headers.get(b"host", b"").decode("latin-1")
    ours = f"{scheme}://{host}"
    origin = headers.get(b"origin", b"").decode("latin-1")
    if origin and origin != "null":
        return origin == ours
    referer = headers.get(b"referer", b"").decode("latin-1")
    return bool(host) and (referer == ours or referer.startswith(ours + "/"))


class Guard:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    def _matches(self, given: str | bytes | None) -> bool:
        if self.token is None or not given:
            return False
        value = given.encode() if isinstance(given, str) else given
        return hmac.compare_digest(self.token, value)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"")
        bearer = authorization.startswith(b"Bearer ") and self._matches(authorization[7:])
        if self.token is not None and not bearer:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if scope["method"] == "GET" and self._matches(query.get("token")):
                await self._set_cookie(scope, send, query)
                return
            if not self._matches(_cookie(headers)):
                await _refuse(send, 401, "expected Authorization: Bearer <ANCHORFLOW_SERVE_TOKEN> "
                              "(or open the page once with ?token=<token>)")  # fmt: skip
                return
        posted = scope["method"] not in SAFE and not bearer
        if posted and not same_origin(headers, scope.get("scheme", "http")):
            await _refuse(send, 403, "a form post must come from this server's own pages")
            return
        await self.app(scope, receive, send)

    async def _set_cookie(self, scope: Scope, send: Send, query: dict[str, str]) -> None:
        """The token as an HttpOnly SameSite=Strict cookie, and the address without it."""
        assert self.token is not None
        rest = urlencode({k: v for k, v in query.items() if k != "token"})
        location = scope["path"] + (f"?{rest}" if rest else "")
        cookie = f"{COOKIE}={self.token.decode()}; HttpOnly; SameSite=Strict; Path=/"
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode()), (b"set-cookie", cookie.encode()),
            (b"content-length", b"0"), (b"cache-control", b"no-store"),
        ]})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})
