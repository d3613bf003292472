"""Vega-Lite specs of tile results: plain JSON with the data inline, one mark per value."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from anchorflow.dashboards.specs import kpi_view, tile_json, tile_spec
from anchorflow.dashboards.tiles import TileResult

pytestmark = pytest.mark.unit


def _result(kind: str, columns: list[str], rows: list[tuple[object, ...]]) -> TileResult:
    return TileResult(0, kind, "t", 6, columns, rows, "SELECT 1", [], 0.01)


def test_a_funnel_by_a_series_is_grouped_bars_with_the_conversion() -> None:
    rows = [("ios", 1, "view", 4, 100.0, 100.0), ("ios", 2, "buy", 1, 25.0, 25.0),
            ("web", 1, "view", 2, 100.0, 100.0), ("web", 2, "buy", 0, 0.0, 0.0)]  # fmt: skip
    result = _result(
        "funnel", ["platform", "step", "label", "users", "pct_of_first", "pct_of_previous"], rows
    )
    spec = tile_spec(result)
    assert spec is not None
    assert spec["encoding"]["yOffset"] == {"field": "platform"}
    assert spec["encoding"]["y"]["sort"] == {"field": "step"}
    assert [v["shown"] for v in spec["data"]["values"]] == [
        "4 (100%)",
        "1 (25%)",
        "2 (100%)",
        "0 (0%)",
    ]
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "text"]


def test_retention_is_a_heatmap_with_the_percent_in_each_cell() -> None:
    rows = [(date(2024, 3, 4), 3, 0, 3, 100.0), (date(2024, 3, 4), 3, 1, 1, 33.3)]
    spec = tile_spec(_result("retention", ["cohort", "cohort_users", "week", "users", "pct"], rows))
    assert spec is not None
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rect", "text"]
    assert spec["data"]["values"][1] == {
        "cohort": "2024-03-04", "cohort_users": 3, "week": 1, "users": 1, "pct": 33.3,
    }  # fmt: skip


def test_kpi_and_table_are_html_and_every_result_is_json() -> None:
    kpi = _result("kpi", ["value", "previous", "change_pct"], [(Decimal("12.50"), None, None)])
    assert tile_spec(kpi) is None and kpi_view(kpi) == {
        "value": 12.5, "previous": None, "change_pct": None,
    }  # fmt: skip
    line = _result("line", ["day", "events"], [(datetime(2024, 3, 1), 3)])
    data = json.loads(json.dumps(tile_json(line)))
    assert data["spec"]["encoding"]["x"]["timeUnit"] == "yearmonthdate"
    assert data["rows"] == [["2024-03-01T00:00:00", 3]] and "color" not in data["spec"]["encoding"]
    failed = TileResult(0, "bar", "t", 6, error="Binder Error: no column x")
    assert tile_spec(failed) is None and tile_json(failed)["error"] == "Binder Error: no column x"
