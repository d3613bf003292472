"""KPI, line, bar and table tiles through the semantic layer on every engine: exact numbers,
the KPI's change against the previous period, top N, and the global segment filter applied
where the metric has the dimension (and said to be ignored where not)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project
from anchorflow.dashboards import dashboard_json, find, run_dashboard
from anchorflow.dashboards.tiles import Selection
from tests.builders import build_project, events_model, open_warehouse

pytestmark = pytest.mark.integration

D = datetime
EVENTS = [
    # user, time, type, country, platform, amount
    ("u1", D(2024, 3, 1, 9), "purchase", "DE", "ios", 10.0),
    ("u1", D(2024, 3, 2, 9), "view", "DE", "ios", None),
    ("u2", D(2024, 3, 1, 9), "purchase", "FR", "web", 4.0),
    ("u3", D(2024, 3, 2, 9), "purchase", "ES", "web", 1.5),
    ("u4", D(2024, 3, 2, 10), "view", "DE", "web", None),
    ("u9", D(2024, 2, 28, 9), "view", "DE", "web", None),  # the previous period
]
METRICS = {
    "models": {
        "events": {
            "model": "events",
            "time": {"column": "event_time", "grains": ["day", "week"]},
            "dimensions": {"country": "country", "platform": "platform"},
            "measures": {
                "events": {"agg": "count"},
                "users": {"agg": "count_distinct", "column": "user_id"},
                "revenue": {"agg": "sum", "column": "amount"},
            },
        }
    },
    "metrics": {
        "events": {"measure": "events.events"},
        "users": {"measure": "events.users"},
        "revenue": {"measure": "events.revenue"},
    },
}
BOARD = """
title: Metrics
filters: {date: {default: 2024-03-01..2024-03-02}, segments: [country]}
tiles:
  - {kind: kpi, metric: users}
  - {kind: line, metric: events, grain: day, by: platform}
  - {kind: bar, metric: revenue, by: country, top: 2}
  - {kind: table, metrics: [revenue, users], by: [country, platform]}
"""


def _project(root: Path) -> Project:
    (root / "dashboards").mkdir(parents=True)
    (root / "dashboards" / "m.yml").write_text(BOARD)
    columns = {**events_model()["columns"], "country": "VARCHAR"}
    return build_project(root, staging={"events": events_model(columns=columns)}, metrics=METRICS)


def _run(project: Project, segments: dict[str, str] | None = None) -> list[Any]:
    return _result(project, segments).tiles


def _result(project: Project, segments: dict[str, str] | None = None) -> Any:
    with open_warehouse(project) as warehouse:
        warehouse.create_schema("staging")
        warehouse.execute(
            "CREATE TABLE IF NOT EXISTS staging.events (user_id VARCHAR, event_time TIMESTAMP, "
            "event_type VARCHAR, country VARCHAR, platform VARCHAR, amount DOUBLE)"
        )
        if not warehouse.scalar("SELECT count(*) FROM staging.events"):
            for event in EVENTS:
                warehouse.execute(
                    "INSERT INTO staging.events VALUES (?, ?, ?, ?, ?, ?)", list(event)
                )
        board = find(project, "m")
        selection = Selection(date(2024, 3, 1), date(2024, 3, 3), segments or {})
        result = run_dashboard(warehouse, project, board, selection)
    assert result.choices == {"country": ["DE", "ES", "FR"]}
    assert [t.error for t in result.tiles] == [None] * 4
    return result


def test_metric_tiles_on_every_engine(engine: str, tmp_path: Path) -> None:
    kpi, line, bar, table = _run(_project(tmp_path / "p"))
    assert kpi.columns == ["value", "previous", "change_pct"]
    assert kpi.rows == [(4, 1, 300.0)]  # u1..u4 against u9 in the two days before
    assert line.columns == ["day", "platform", "events"]
    assert [(r[0].isoformat()[:10], r[1], r[2]) for r in line.rows] == [
        ("2024-03-01", "ios", 1), ("2024-03-01", "web", 1),
        ("2024-03-02", "ios", 1), ("2024-03-02", "web", 2),
    ]  # fmt: skip
    assert [(r[0], float(r[1])) for r in bar.rows] == [("DE", 10.0), ("FR", 4.0)]  # top 2
    assert table.columns == ["country", "platform", "revenue", "users"]
    assert len(table.rows) == 4 and table.sql and kpi.seconds > 0


def test_a_segment_filters_the_tiles_that_have_the_dimension(engine: str, tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    kpi, line, bar, _ = _run(project, {"country": "DE"})
    assert kpi.rows == [(2, 1, 100.0)]  # u1 u4
    assert [float(r[1]) for r in bar.rows] == [10.0] and "DE" in bar.params
    assert sum(r[2] for r in line.rows) == 3 and line.ignored == []
    kpi, *_ = _run(project, {"team": "x"})
    assert kpi.ignored == ["team"] and kpi.rows[0][0] == 4


def test_a_dashboard_as_json(tmp_path: Path) -> None:
    data = json.loads(json.dumps(dashboard_json(_result(_project(tmp_path / "p")))))
    assert (data["from"], data["to"], data["choices"]) == (
        "2024-03-01",
        "2024-03-03",
        {"country": ["DE", "ES", "FR"]},
    )
    kpi, line, bar, table = data["tiles"]
    assert kpi["spec"] is None and kpi["rows"] == [[4, 1, 300.0]]
    assert line["spec"]["mark"]["type"] == "line" and len(line["spec"]["data"]["values"]) == 4
    assert line["spec"]["encoding"]["color"] == {"field": "platform", "type": "nominal"}
    assert line["spec"]["data"]["values"][0]["day"].startswith("2024-03-01")
    assert bar["spec"]["encoding"]["y"]["sort"] == "-x" and table["spec"] is None


@pytest.mark.unit
def test_a_tile_naming_a_metric_the_project_lacks_is_refused_when_read(tmp_path: Path) -> None:
    from anchorflow.errors import ConfigError

    root = tmp_path / "p"
    (root / "dashboards").mkdir(parents=True)
    (root / "dashboards" / "m.yml").write_text(
        "title: x\ntiles: [{kind: kpi, metric: users}, {kind: table, metrics: [revenue, userz]}]\n"
    )
    columns = {**events_model()["columns"], "country": "VARCHAR"}
    with pytest.raises(ConfigError) as error:
        build_project(root, staging={"events": events_model(columns=columns)}, metrics=METRICS)
    assert error.value.problems == [
        "dashboards/m.yml: tiles.1: unknown metric 'userz' (did you mean 'users'?)"
    ]
