"""`anchorflow metrics` end to end, in a subprocess, as a user runs it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from anchorflow.config import Project
from tests.builders import open_warehouse
from tests.metrics.cases import fill_shop, shop_project
from tests.test_cli import cli

pytestmark = pytest.mark.e2e
DROP = {"revenue_drop": {"metric": "revenue", "grain": "day", "change": {"by": "-30%"}}}


@pytest.fixture
def shop(engine: str, tmp_path: Path) -> Project:
    project = shop_project(tmp_path / "shop", metric_alerts=DROP, alerts=[{"kind": "log"}])
    with open_warehouse(project) as warehouse:
        fill_shop(warehouse, project)
    return project


def test_query_prints_the_result_as_csv_json_and_a_table(shop: Project) -> None:
    args = ["metrics", "query", "revenue", "events", "--by", "country", "--grain", "day",
            "--where", "country in (DE, FR)", "--from", "2024-03-01", "--to", "2024-03-04",
            "-p", str(shop.root)]  # fmt: skip
    done = cli(*args, "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert list(csv.reader(io.StringIO(done.stdout))) == [
        ["day", "country", "revenue", "events"],
        ["2024-03-01", "DE", "15.0", "3"],
        ["2024-03-01", "FR", "", "1"],
        ["2024-03-02", "DE", "7.5", "1"],
    ]
    result = json.loads(cli(*args, "--format", "json").stdout)
    assert result["columns"] == ["day", "country", "revenue", "events"]
    assert result["rows"][0] == {"day": "2024-03-01", "country": "DE", "revenue": 15.0, "events": 3}
    assert result["params"] == ["2024-03-01", "2024-03-04", "DE", "FR"]
    assert result["sql"].startswith('WITH "m_events" AS (SELECT ')
    table = cli(*args, "--limit", "1").stdout
    assert "revenue, events (1 rows" in table and "15.00" in table and "2024-03-02" not in table


def test_query_sql_prints_the_engine_s_sql_without_running_it(shop: Project) -> None:
    done = cli("metrics", "query", "conversion", "--by", "plan", "--sql", "-p", str(shop.root))
    assert done.returncode == 0, done.stderr
    placeholder = "%s" if shop.warehouse.engine == "postgres" else "?"
    quote = "`" if shop.warehouse.engine == "spark" else '"'  # each engine's own quoting
    assert f"{quote}m_purchases{quote}" in done.stdout and f"{quote}stacked{quote}" in done.stdout
    assert "-- values: []" in done.stdout and placeholder not in done.stdout.split("--")[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["revenu"], "unknown metric 'revenu' (did you mean 'revenue'?"),
        (["accounts", "--by", "country"], "refused: dimension 'country' is on events"),
        (["revenue", "--where", "country ~ DE"], "filter 'country ~ DE': expected <dimension>"),
        (["revenue", "--from", "March"], "--from: expected a day such as 2024-03-01"),
    ],
)
def test_query_refuses_in_one_line(shop: Project, args: list[str], expected: str) -> None:
    done = cli("metrics", "query", *args, "-p", str(shop.root))
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert expected in line


def test_list_and_alerts(shop: Project) -> None:
    listed = cli("metrics", "list", "-p", str(shop.root))
    assert listed.returncode == 0, listed.stderr
    revenue = next(line for line in listed.stdout.splitlines() if "│ revenue " in line)
    assert "country, platform, kind, plan" in revenue and "hour, day, week, month" in revenue
    checked = cli("metrics", "alerts", "--now", "2024-03-03T01:00", "-p", str(shop.root))
    assert checked.returncode == 0, checked.stderr
    row = next(line for line in checked.stdout.splitlines() if "revenue_drop" in line)
    assert "breached" in row and "7.50" in row and "breach" in row
    again = cli("metrics", "alerts", "--now", "2024-03-03T01:00", "-p", str(shop.root))
    row = next(line for line in again.stdout.splitlines() if "revenue_drop" in line)
    assert "unchanged" in row
