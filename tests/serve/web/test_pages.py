"""The pages in a real browser (Debian's chromium) against a real `anchorflow serve`."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.e2e]


def test_the_health_page_lists_the_sources_and_draws_the_rows_per_hour(
    server: str, browser_page: Any
) -> None:
    browser_page.goto(server + "/")
    chart = browser_page.locator("#rows-per-hour")
    chart.and_(browser_page.locator("[data-rendered='true']")).wait_for(timeout=20_000)
    assert int(chart.get_attribute("data-points")) > 0
    assert chart.locator("svg").count() == 1
    sources = browser_page.locator("#sources tbody tr[data-source]")
    names = set(sources.evaluate_all("rows => rows.map(r => r.dataset.source)"))
    assert {"amplitude", "costs", "clicks"} <= names
    loads = browser_page.locator("#last-loads tbody tr").all_inner_texts()
    assert any(line.startswith("amplitude") for line in loads)
