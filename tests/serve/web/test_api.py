"""The read API over the loaded demo: the same data the pages render, as JSON."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e]


def get(server: str, path: str, code: int = 200) -> Any:
    answer = httpx.get(server + path, timeout=30)
    assert answer.status_code == code, answer.text
    return answer.json()


def test_the_api_answers_what_the_pages_show(server: str) -> None:
    health = get(server, "/api/health")
    streams = {(s["source"], s["stream"]) for s in health["sources"]}
    assert {("amplitude", "events"), ("costs", "daily"), ("backend", "payments")} <= streams
    last = {load["source"]: load for load in health["last_loads"]}
    assert last["amplitude"]["status"] == "committed" and last["amplitude"]["rows"] > 0
    assert {h["source"] for h in health["rows_per_hour"]} >= {"amplitude", "costs"}
    assert health["runs"][0]["status"] == "ok"
    assert health["alerts"]["sent"] and "pending" in health["alerts"]

    model = get(server, "/api/model")
    assert model["entities"] and model["attributes"] and model["ties"]
    assert all(t["kind"] == "attribute" for t in model["attributes"])
    assert any(t["rows"] > 0 for t in model["entities"])
    staging = {m["model"]: m for m in model["staging_models"]}
    assert staging["events"]["totals"]["staged"] > 0
    assert {e["status"] for e in model["drift"]} == {"open"}

    report = get(server, "/api/fraud/report")
    assert report["first_day"] == "2024-03-01" and report["last_day"] == "2024-03-02"
    assert report["rules"] and report["columns"][:2] == ["country", "campaign"]
    total = sum(r["fraud_registrations"] for r in report["rows"])
    day = get(server, "/api/fraud/report?start=2024-03-02&end=2024-03-02")
    one_day = sum(r["fraud_registrations"] for r in day["rows"])
    assert 0 < one_day < total
    bad = get(server, "/api/fraud/report?start=March", code=400)
    assert bad["error"] == "start must be a day, YYYY-MM-DD (got 'March')"
