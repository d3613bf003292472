"""Bound beyond loopback with a token, every page, API call and static file needs it: the
bearer header, or the cookie a browser gets by opening a page once with `?token=`. Form posts
must come from the server's own pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e]
TOKEN = "serve-token-4b1d"
PATHS = ["/", "/model", "/fraud", "/api/health", "/api/model", "/api/fraud/report",
         "/static/app.js", "/static/vendor/vega.min.js"]  # fmt: skip


@pytest.fixture
def guarded(served_project: Path, serve_process: Callable[..., Any]) -> str:
    return str(serve_process(served_project, host="127.0.0.2", token=TOKEN).url)


def test_without_the_token_401_with_it_200(guarded: str) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    wrong = {"Authorization": "Bearer nope"}
    with httpx.Client(timeout=30) as client:
        for path in PATHS:
            assert client.get(guarded + path).status_code == 401, path
            assert client.get(guarded + path, headers=wrong).status_code == 401, path
            assert client.get(guarded + path, headers=bearer).status_code == 200, path
        assert client.get(guarded + "/?token=nope").status_code == 401
        # A script posts with its bearer header (no cookie: nothing for another site to ride).
        posted = client.post(guarded + "/run", data={"source": "costs"},
                             headers={**bearer, "Accept": "application/json"})  # fmt: skip
        assert posted.status_code == 202


def test_a_token_in_the_address_becomes_a_strict_cookie(guarded: str) -> None:
    with httpx.Client(timeout=30) as client:
        answer = client.get(guarded + "/model?token=" + TOKEN + "&x=1")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/model?x=1"  # the token leaves the address
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert client.get(guarded + "/model").status_code == 200  # the cookie now
        assert client.get(guarded + "/api/health").status_code == 200
        # A post riding the cookie must name this server as its origin.
        assert client.post(guarded + "/run", data={"source": "costs"}).status_code == 403
        foreign = {"Origin": "http://evil.example"}
        assert (
            client.post(guarded + "/run", data={"source": ""}, headers=foreign).status_code == 403
        )
        ours = client.post(guarded + "/run", data={"source": "costs"}, headers={"Origin": guarded})
        assert ours.status_code == 303


def test_a_browser_opens_the_pages_with_the_token_once(guarded: str, browser_page: Any) -> None:
    answer = browser_page.goto(guarded + "/?token=" + TOKEN)
    assert answer.status == 200 and browser_page.url == guarded + "/"
    assert browser_page.locator("h1").inner_text() == "Pipeline health"
    browser_page.wait_for_selector("#rows-per-hour[data-rendered='true']", timeout=20_000)
    assert browser_page.goto(guarded + "/model").status == 200
    assert browser_page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it


def test_on_loopback_without_a_token_a_foreign_post_is_refused(server: str) -> None:
    foreign = httpx.post(server + "/model/acknowledge", data={"event_id": "1"},
                         headers={"Origin": "http://evil.example"})  # fmt: skip
    assert foreign.status_code == 403
    bare = httpx.post(server + "/run", data={"source": "costs"})  # no Origin, no Referer
    assert bare.status_code == 403
    ours = httpx.post(server + "/run", data={"source": "costs"},
                      headers={"Referer": server + "/"})  # fmt: skip
    assert ours.status_code == 303
