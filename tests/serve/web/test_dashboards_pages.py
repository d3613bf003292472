"""The Dashboards and Explore pages in a real browser (Debian's chromium) against a real
`anchorflow serve` over the loaded demo: every tile renders, a filter changes a tile, the
explore round trip through the URL, and the JSON API."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

pytestmark = [pytest.mark.e2e]

RENDERED = "[data-rendered='true'], [data-error]"


def _charts_rendered(page: Any) -> list[dict[str, Any]]:
    """Wait for every chart of the page, then each one's state."""
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.chart'))"
        ".every(c => c.dataset.rendered || c.dataset.error)",
        timeout=30_000,
    )
    return page.locator(".chart").evaluate_all(
        "charts => charts.map(c => ({id: c.closest('.tile') ? c.closest('.tile').id : c.id,"
        " points: Number(c.dataset.points || 0), error: c.dataset.error || null}))"
    )


def test_the_overview_dashboard_renders_every_tile(server: str, browser_page: Any) -> None:
    browser_page.goto(server + "/dashboards")
    browser_page.locator("#dashboards a", has_text="Product overview").click()
    browser_page.wait_for_url("**/dashboards/overview")
    tiles = browser_page.locator(".tile")
    kinds = tiles.evaluate_all("ts => ts.map(t => t.dataset.kind)")
    assert {"kpi", "line", "bar", "funnel", "retention", "table"} <= set(kinds)
    assert browser_page.locator(".tile-error").count() == 0
    charts = _charts_rendered(browser_page)
    assert len(charts) == kinds.count("line") + kinds.count("bar") + kinds.count(
        "funnel"
    ) + kinds.count("retention")
    assert all(c["error"] is None and c["points"] > 0 for c in charts), charts
    value = browser_page.locator("#tile-0 .kpi .value").get_attribute("data-value")
    assert float(value) > 0
    assert browser_page.locator(".tile-table tbody tr").count() > 0


def test_the_country_filter_changes_a_tile(server: str, browser_page: Any) -> None:
    browser_page.goto(server + "/dashboards/overview")
    before = float(browser_page.locator("#tile-0 .kpi .value").get_attribute("data-value"))
    funnel_before = browser_page.locator("#tile-6 .chart").get_attribute("data-spec")
    options = browser_page.locator("select[name=country] option").evaluate_all(
        "os => os.map(o => o.value)"
    )
    country = options[1]  # the first after "all"
    browser_page.select_option("select[name=country]", country)
    browser_page.locator("#filters button[type=submit]").click()
    browser_page.wait_for_url("**country=*")
    assert parse_qs(urlsplit(browser_page.url).query)["country"] == [country]
    after = float(browser_page.locator("#tile-0 .kpi .value").get_attribute("data-value"))
    assert 0 < after < before
    assert browser_page.locator("#tile-6 .chart").get_attribute("data-spec") != funnel_before
    assert browser_page.locator("select[name=country]").input_value() == country
    _charts_rendered(browser_page)


def test_the_explore_round_trip(server: str, browser_page: Any) -> None:
    browser_page.goto(server + "/explore")
    browser_page.select_option("#metric", "revenue")
    browser_page.wait_for_url("**metric=revenue*")
    browser_page.select_option("#by", ["country"])
    browser_page.select_option("#grain", "day")
    browser_page.locator("#run").click()
    browser_page.wait_for_url("**grain=day*")
    query = parse_qs(urlsplit(browser_page.url).query)
    assert query["metric"] == ["revenue"] and query["by"] == ["country"]
    rows = browser_page.locator("#result tbody tr").all_inner_texts()
    assert rows
    assert "SELECT" in browser_page.locator("#sql").inner_text()
    charts = _charts_rendered(browser_page)
    assert charts[0]["points"] > 0 and charts[0]["error"] is None
    shared = browser_page.url
    browser_page.goto("about:blank")
    browser_page.goto(shared)
    assert browser_page.locator("#result tbody tr").all_inner_texts() == rows
    assert browser_page.locator("#by").evaluate(
        "s => Array.from(s.selectedOptions).map(o => o.value)"
    ) == ["country"]
    # Another metric, whose model has no country: the form keeps what still applies.
    browser_page.select_option("#metric", "events")
    browser_page.wait_for_url("**metric=events*")
    assert browser_page.locator(".message").count() == 0
    assert browser_page.locator("#by").evaluate(
        "s => Array.from(s.selectedOptions).map(o => o.value)"
    ) == ["country"]  # events have a country too
    assert browser_page.locator("#grain").input_value() == "day"
    browser_page.select_option("#metric", "payments_collected")
    browser_page.wait_for_url("**metric=payments_collected*")
    assert browser_page.locator(".message").count() == 0
    assert browser_page.locator("#by").evaluate("s => s.selectedOptions.length") == 0
    assert "payments" in browser_page.locator("#sql").inner_text()


def test_the_json_api(server: str) -> None:
    board = httpx.get(server + "/api/dashboards/overview", timeout=60).json()
    assert board["name"] == "overview" and len(board["tiles"]) == 9
    assert all(t["error"] is None for t in board["tiles"]), [t["error"] for t in board["tiles"]]
    country = board["choices"]["country"][0]
    narrowed = httpx.get(
        server + "/api/dashboards/overview", params={"country": country}, timeout=60
    ).json()
    assert narrowed["segments"] == {"country": country}
    assert narrowed["tiles"][0]["rows"][0][0] < board["tiles"][0]["rows"][0][0]
    answer = httpx.get(
        server + "/api/metrics/query",
        params={"metric": "revenue", "by": "country", "where": f"country = '{country}'"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["columns"] == ["country", "revenue"] and [r[0] for r in data["rows"]] == [country]
    assert country in data["params"]
    bad = httpx.get(server + "/api/metrics/query", params={"metric": "revenu"}, timeout=60)
    assert bad.status_code == 400 and "revenu" in bad.json()["error"]
    missing = httpx.get(server + "/api/dashboards/nope", timeout=60)
    assert missing.status_code == 404 and "no dashboard 'nope'" in missing.json()["error"]
    bad_day = httpx.get(server + "/api/dashboards/overview", params={"from": "2024-13-01"})
    assert bad_day.status_code == 400
    assert bad_day.json()["error"] == "from: expected a day such as 2024-03-01, got '2024-13-01'"
    page = httpx.get(server + "/dashboards/overview", params={"to": "yesterday"}, timeout=60)
    assert page.status_code == 400 and "to: expected a day" in page.text


@pytest.mark.slow
def test_screenshots_of_the_dashboard_and_explore(server: str, browser_page: Any) -> None:
    browser_page.goto(server + "/dashboards/overview")
    _charts_rendered(browser_page)
    assert browser_page.screenshot("dashboard-overview").stat().st_size > 10_000
    browser_page.goto(server + "/explore?metric=daily_active_users&by=platform&grain=hour")
    _charts_rendered(browser_page)
    assert browser_page.screenshot("explore").stat().st_size > 10_000
