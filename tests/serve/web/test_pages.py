"""The pages in a real browser (Debian's chromium) against a real `anchorflow serve` over the
loaded demo: every page loads without a console error, its charts draw marks, its buttons
act."""

from __future__ import annotations

from typing import Any

import pytest

from tests.serve.hooks import wait_for

pytestmark = [pytest.mark.e2e]
PAGES = {"health": "/", "model": "/model", "fraud": "/fraud"}
CHARTS = {"health": ["#rows-per-hour"], "model": [], "fraud": ["#fraud-by-campaign"]}


DRAWN = (
    "s => { const d = document.querySelector(s); "
    "return d && (d.dataset.rendered || d.dataset.error) }"
)


def rendered(page: Any, selector: str) -> int:
    """The marks of the chart at `selector`, once drawn (its SVG there)."""
    chart = page.locator(selector)
    page.wait_for_function(DRAWN, arg=selector, timeout=20_000)
    assert chart.get_attribute("data-error") is None, chart.get_attribute("data-error")
    assert chart.get_attribute("data-rendered") == "true"
    assert chart.locator("svg").count() == 1
    return int(chart.get_attribute("data-points") or 0)


def test_every_page_loads_and_draws_its_charts(server: str, browser_page: Any) -> None:
    for name, path in PAGES.items():
        response = browser_page.goto(server + path)
        assert response.status == 200, name
        assert browser_page.locator("nav a.current").inner_text() == {
            "health": "Health", "model": "Data model", "fraud": "Fraud"}[name]  # fmt: skip
        for selector in CHARTS[name]:
            assert rendered(browser_page, selector) > 0, (name, selector)


@pytest.mark.slow
def test_screenshots_of_every_page(server: str, browser_page: Any) -> None:
    for name, path in PAGES.items():
        browser_page.goto(server + path)
        for selector in CHARTS[name]:
            rendered(browser_page, selector)
        shot = browser_page.screenshot(name)
        assert shot.stat().st_size > 10_000


def test_the_health_page_lists_the_sources_and_their_last_loads(
    server: str, browser_page: Any
) -> None:
    browser_page.goto(server + "/")
    sources = browser_page.locator("#sources tbody tr[data-source]")
    names = set(sources.evaluate_all("rows => rows.map(r => r.dataset.source)"))
    assert {"amplitude", "costs", "clicks", "backend"} <= names
    loads = browser_page.locator("#last-loads tbody tr").all_inner_texts()
    amplitude = next(line for line in loads if line.startswith("amplitude"))
    assert "committed" in amplitude


def test_acknowledge_removes_a_drift_event(server: str, browser_page: Any) -> None:
    browser_page.goto(server + "/model")
    events = browser_page.locator("#drift-events tbody tr[data-event]")
    before = events.evaluate_all("rows => rows.map(r => r.dataset.event)")
    assert before, "the demo has open drift events"
    first = before[0]
    browser_page.locator(f"tr[data-event='{first}'] button").click()
    browser_page.wait_for_url("**/model?message=*")
    assert "1 drift event acknowledged" in browser_page.locator(".message").inner_text()
    after = events.evaluate_all("rows => rows.map(r => r.dataset.event)")
    assert first not in after and len(after) == len(before) - 1


def test_run_now_starts_a_run_that_shows_up(server: str, browser_page: Any) -> None:
    browser_page.goto(server + "/")
    browser_page.locator("tr[data-source='costs'] button", has_text="Run now").click()
    browser_page.wait_for_url("**/?message=*")
    assert "run requested: costs" in browser_page.locator(".message").inner_text()

    def shown() -> bool:
        browser_page.goto(server + "/")
        rows = browser_page.locator("#served-runs tbody tr").all_inner_texts()
        return any(row.startswith("manual\tcosts") and "\tok" in row for row in rows)

    wait_for(shown, deadline=60)
    assert "run costs" in browser_page.locator("#runs tbody tr").first.inner_text()
