"""Every metric of the demo project gives the same rows on DuckDB and on PostgreSQL, over the
demo loaded from the tests' synthetic traffic on each engine (tests/test_engines_agree.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from anchorflow.config import Project
from anchorflow.metrics import MetricQuery, describe, parse_filter, run_query
from anchorflow.warehouse import connect
from tests.test_engines_agree import loaded

pytestmark = pytest.mark.slow
__all__ = ["loaded"]


def normalised(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """Numbers as floats rounded to 9 digits (a PostgreSQL sum of integers is a numeric)."""
    return [
        tuple(round(float(v), 9) if isinstance(v, float | Decimal) else v for v in row)
        for row in rows
    ]


def answers(project: Project, queries: list[MetricQuery]) -> list[list[tuple[object, ...]]]:
    with connect(project, read_only=True) as warehouse:
        return [normalised(run_query(warehouse, project, q).rows) for q in queries]


def test_every_demo_metric_agrees_on_both_engines(loaded: dict[str, Project]) -> None:
    infos = describe(loaded["duckdb"])
    queries = [
        MetricQuery((i.name,), by=tuple(i.dimensions[:2]), grain=(i.grains or [None])[0])
        for i in infos
    ]
    queries += [
        MetricQuery(("revenue", "purchases", "daily_active_users"), by=("country",), grain="day",
                    where=(parse_filter("country in (DE, FR, US)"),)),
        MetricQuery(("purchase_conversion",), by=("user_plan",), grain="week", order=None),
        MetricQuery(("events",), by=("platform",), grain="hour", limit=5),
    ]  # fmt: skip
    duckdb, postgres = (answers(loaded[engine], queries) for engine in ("duckdb", "postgres"))
    for query, mine, theirs in zip(queries, duckdb, postgres, strict=True):
        assert mine == theirs, query
    assert sum(len(rows) for rows in duckdb) > 50  # there is data to compare
    assert any(
        rows for query, rows in zip(queries, duckdb, strict=True) if "revenue" in query.metrics
    )


def test_daily_active_users_match_the_demo_mart(loaded: dict[str, Project]) -> None:
    for project in loaded.values():
        query = MetricQuery(("daily_active_users", "events"), by=("platform",), grain="day")
        with connect(project, read_only=True) as warehouse:
            rows = run_query(warehouse, project, query).rows
            mart = warehouse.query(
                "SELECT day, platform, active_users, events FROM marts.daily_active_users "
                "ORDER BY day, platform NULLS LAST"
            )
        assert rows == mart and len(rows) >= 3
