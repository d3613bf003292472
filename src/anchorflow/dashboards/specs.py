"""Vega-Lite specs of tile results: plain dicts with the data inline, for the page's `.chart`
divs (see `serve/web`) and for `anchorflow dashboards show --format json`.

KPI and table tiles are HTML, not charts (`kpi_view`, `table_view`); line, bar, funnel (bars
with the conversion %) and retention (a heatmap with the % written in each cell) are specs.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from anchorflow.dashboards.tiles import TileResult

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
TEMPORAL = ("hour", "day", "week", "month", "quarter", "year")


def plain(value: Any) -> Any:
    """A value as JSON holds it: dates as ISO text, decimals as floats."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def records(columns: list[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [{c: plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]


def _base(result: TileResult, values: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "width": "container",
        "height": 220,
        "autosize": {"type": "fit", "contains": "padding"},
        "data": {"values": values},
    }


def line_spec(result: TileResult) -> dict[str, Any]:
    """Time on x, the metric on y, a line per series when the tile has `by`."""
    time, *rest = result.columns
    metric = rest[-1]
    spec = _base(result, records(result.columns, result.rows))
    encoding: dict[str, Any] = {
        "x": {"field": time, "type": "temporal", "title": None, **_time_unit(time)},
        "y": {"field": metric, "type": "quantitative"},
        "tooltip": [{"field": c} for c in result.columns],
    }
    if len(rest) > 1:
        encoding["color"] = {"field": rest[0], "type": "nominal"}
    spec.update(mark={"type": "line", "point": True}, encoding=encoding)
    return spec


def _time_unit(grain: str) -> dict[str, Any]:
    """Axis labels at the grain: days, not hours, for a daily series."""
    unit = {"hour": "yearmonthdatehours", "day": "yearmonthdate", "week": "yearmonthdate",
            "month": "yearmonth", "quarter": "yearquarter", "year": "year"}.get(grain)  # fmt: skip
    return {"timeUnit": unit} if unit else {}


def bar_spec(result: TileResult) -> dict[str, Any]:
    """One horizontal bar per dimension value, longest first."""
    dimension, metric = result.columns[0], result.columns[-1]
    spec = _base(result, records(result.columns, result.rows))
    spec.update(
        mark={"type": "bar"},
        encoding={
            "y": {"field": dimension, "type": "nominal", "sort": "-x", "title": None},
            "x": {"field": metric, "type": "quantitative"},
            "tooltip": [{"field": c} for c in result.columns],
        },
    )
    return spec


def funnel_spec(result: TileResult) -> dict[str, Any]:
    """A bar per step (in order) with its % of step 1 written beside it; a colour per series."""
    values = records(result.columns, result.rows)
    for value in values:
        pct = value["pct_of_first"]
        value["shown"] = f"{value['users']} ({pct:g}%)" if pct is not None else str(value["users"])
    spec = _base(result, values)
    y = {"field": "label", "type": "nominal", "sort": {"field": "step"}, "title": None}
    encoding: dict[str, Any] = {"y": y, "x": {"field": "users", "type": "quantitative"}}
    series = result.columns[0] if result.columns[0] != "step" else None
    if series:
        encoding["yOffset"] = {"field": series}
        encoding["color"] = {"field": series, "type": "nominal"}
    encoding["tooltip"] = [{"field": c} for c in result.columns]
    spec.update(
        encoding=encoding,
        layer=[
            {"mark": {"type": "bar"}},
            {
                "mark": {"type": "text", "align": "left", "dx": 3},
                "encoding": {"text": {"field": "shown"}},
            },
        ],
    )
    return spec


def retention_spec(result: TileResult) -> dict[str, Any]:
    """Cohorts down, weeks across, each cell coloured and labelled by its % returning."""
    spec = _base(result, records(result.columns, result.rows))
    spec["height"] = {"step": 22}
    spec.update(
        encoding={
            "x": {"field": "week", "type": "ordinal", "title": "week"},
            "y": {"field": "cohort", "type": "ordinal", "timeUnit": "yearmonthdate", "title": None},
        },
        layer=[
            {
                "mark": {"type": "rect"},
                "encoding": {
                    "color": {"field": "pct", "type": "quantitative", "scale": {"scheme": "blues"}},
                    "tooltip": [{"field": c} for c in result.columns],
                },
            },
            {
                "mark": {"type": "text", "fontSize": 10},
                "encoding": {
                    "text": {"field": "pct", "type": "quantitative", "format": ".0f"},
                    "color": {
                        "condition": {"test": "datum.pct > 50", "value": "white"},
                        "value": "black",
                    },
                },
            },
        ],
    )
    return spec


def tile_spec(result: TileResult) -> dict[str, Any] | None:
    """The tile's chart, or None for a KPI or table tile (HTML) or a tile that failed."""
    if result.error is not None:
        return None
    builders = {
        "line": line_spec,
        "bar": bar_spec,
        "funnel": funnel_spec,
        "retention": retention_spec,
    }
    builder = builders.get(result.kind)
    return builder(result) if builder else None


def kpi_view(result: TileResult) -> dict[str, Any]:
    """The big number: value, previous period's value, change in %."""
    value, previous, change = result.rows[0] if result.rows else (None, None, None)
    return {"value": plain(value), "previous": plain(previous), "change_pct": change}


def table_view(result: TileResult) -> dict[str, Any]:
    return {"columns": result.columns, "rows": [[plain(v) for v in row] for row in result.rows]}


def tile_json(result: TileResult) -> dict[str, Any]:
    """A tile result as JSON: its data, query and timing, and its chart when it has one."""
    return {
        "index": result.index,
        "kind": result.kind,
        "title": result.title,
        "width": result.width,
        "columns": result.columns,
        "rows": [[plain(v) for v in row] for row in result.rows],
        "sql": result.sql,
        "params": [plain(v) for v in result.params],
        "seconds": round(result.seconds, 4),
        "ignored_filters": result.ignored,
        "error": result.error,
        "spec": tile_spec(result),
    }
