"""`anchorflow dashboards list|show` and `validate` over a project with a dashboard, as a user
runs them (a subprocess), on a warehouse holding crafted events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anchorflow.config import Project
from tests.builders import build_project, events_model, open_warehouse
from tests.dashboards.test_events_sql import FUNNEL_EVENTS
from tests.test_cli import cli

pytestmark = pytest.mark.e2e

BOARD = """
title: Shop funnel
description: from a view to a purchase
events: {model: events, dimensions: [country, platform]}
filters:
  date: {default: 2024-03-01..2024-03-05}
  segments: [country]
tiles:
  - {kind: funnel, steps: [view, cart, purchase], window: 7d, title: Purchase funnel}
  - {kind: retention, weeks: 1}
"""


def _project(root: Path, board: str = BOARD) -> Project:
    (root / "dashboards").mkdir(parents=True)
    (root / "dashboards" / "shop.yml").write_text(board)
    columns = {**events_model()["columns"], "country": "VARCHAR"}
    return build_project(root, staging={"events": events_model(columns=columns)})


def _load(project: Project) -> None:
    with open_warehouse(project) as warehouse:
        warehouse.create_schema("staging")
        warehouse.execute(
            "CREATE TABLE staging.events (user_id VARCHAR, event_time TIMESTAMP, "
            "event_type VARCHAR, country VARCHAR, platform VARCHAR)"
        )
        for event in FUNNEL_EVENTS:
            warehouse.execute("INSERT INTO staging.events VALUES (?, ?, ?, ?, ?)", list(event))


def test_dashboards_list_and_show(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    _load(project)
    listed = cli("dashboards", "list", "--project", str(project.root))
    assert listed.returncode == 0, listed.stderr
    assert "shop" in listed.stdout and "funnel, retention" in listed.stdout

    shown = cli("dashboards", "show", "shop", "--project", str(project.root), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["from"], data["to"]) == ("2024-03-01", "2024-03-06")
    assert data["choices"] == {"country": ["DE", "FR"]}
    funnel = data["tiles"][0]
    assert funnel["title"] == "Purchase funnel" and funnel["error"] is None
    assert [row[2] for row in funnel["rows"]] == [6, 3, 2]
    assert funnel["spec"]["layer"][0]["mark"]["type"] == "bar" and funnel["seconds"] > 0

    germany = cli(
        "dashboards", "show", "shop", "--project", str(project.root), "--format", "json",
        "--filter", "country=DE", "--from", "2024-03-01", "--to", "2024-03-01",
    )  # fmt: skip
    assert germany.returncode == 0, germany.stderr
    assert [row[2] for row in json.loads(germany.stdout)["tiles"][0]["rows"]] == [3, 2, 2]

    table = cli("dashboards", "show", "shop", "--project", str(project.root))
    assert table.returncode == 0, table.stderr
    assert "Purchase funnel" in table.stdout and "purchase" in table.stdout


def test_show_names_what_is_wrong(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    _load(project)
    unknown = cli("dashboards", "show", "shp", "--project", str(project.root))
    assert unknown.returncode == 1 and "no dashboard 'shp' (did you mean 'shop'?)" in unknown.stderr
    bad = cli("dashboards", "show", "shop", "--project", str(project.root), "--filter", "DE")
    assert bad.returncode == 1 and "--filter: expected DIMENSION=VALUE" in bad.stderr


def test_validate_binds_every_tile(tmp_path: Path) -> None:
    board = BOARD.replace("dimensions: [country, platform]", "event: kind, dimensions: [country]")
    project = _project(tmp_path / "p", board)
    checked = cli("validate", "--project", str(project.root))
    assert checked.returncode == 1
    lines = [line for line in checked.stderr.splitlines() if "dashboards/shop.yml" in line]
    assert lines and "dashboards/shop.yml: tiles.0: " in lines[0]
    assert "kind" in lines[0]
    ok = _project(tmp_path / "q")
    assert cli("validate", "--project", str(ok.root)).returncode == 0
