"""Metric queries run on each engine over the small shop: known answers, no fan-out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from anchorflow.config import Project
from anchorflow.metrics import MetricQuery, describe, parse_filter, run_query
from anchorflow.warehouse import Warehouse
from tests.builders import open_warehouse
from tests.metrics.cases import fill_shop, shop_project

pytestmark = pytest.mark.integration


@pytest.fixture
def shop(engine: str, tmp_path: Path) -> Iterator[tuple[Warehouse, Project]]:
    project = shop_project(tmp_path / "shop")
    with open_warehouse(project) as warehouse:
        fill_shop(warehouse, project)
        yield warehouse, project


def rows(shop: tuple[Warehouse, Project], query: MetricQuery) -> list[tuple[object, ...]]:
    warehouse, project = shop
    return run_query(warehouse, project, query).rows


def test_revenue_by_country_and_day(shop: tuple[Warehouse, Project]) -> None:
    result = run_query(*shop, MetricQuery(("revenue", "events"), by=("country",), grain="day"))
    assert result.columns == ["day", "country", "revenue", "events"]
    assert result.rows == [
        (date(2024, 3, 1), "DE", 15.0, 3),
        (date(2024, 3, 1), "FR", None, 1),
        (date(2024, 3, 2), "DE", 7.5, 1),
        (date(2024, 3, 2), None, None, 1),
        (date(2024, 3, 4), "FR", 20.0, 2),
    ]
    assert result.seconds >= 0 and result.params == []


def test_weeks_start_on_monday_and_hours_are_timestamps(shop: tuple[Warehouse, Project]) -> None:
    assert rows(shop, MetricQuery(("events",), grain="week")) == [
        (date(2024, 2, 26), 6),
        (date(2024, 3, 4), 2),
    ]
    hours = rows(shop, MetricQuery(("events",), grain="hour", start=date(2024, 3, 4)))
    assert hours == [(datetime(2024, 3, 4, 10), 1), (datetime(2024, 3, 4, 11), 1)]


def test_filters_and_the_time_range(shop: tuple[Warehouse, Project]) -> None:
    query = MetricQuery(
        ("active_users",), by=("platform",),
        where=(parse_filter("country in (DE, FR)"), parse_filter("kind != open")),
        start=date(2024, 3, 1), end=date(2024, 3, 4),
    )  # fmt: skip
    assert rows(shop, query) == [("Web", 1), ("iOS", 1)]  # purchases of u3 and u1


def test_a_many_to_one_join_does_not_fan_out_a_measure(shop: tuple[Warehouse, Project]) -> None:
    """Every user has several events: grouping events by their account's plan joins each
    event to one account, and the sums over the plans are the sums without the join."""
    warehouse, _ = shop
    by_plan = rows(shop, MetricQuery(("revenue", "events", "active_users"), by=("plan",)))
    assert by_plan == [("free", 27.5, 4, 2), ("pro", 15.0, 3, 1), (None, None, 1, 1)]
    (total,) = rows(shop, MetricQuery(("revenue", "events")))
    assert total == (sum(r[1] or 0 for r in by_plan), sum(r[2] for r in by_plan)) == (42.5, 8)
    # duplicated rows on the many side: the same again
    warehouse.execute("INSERT INTO staging.events SELECT * FROM staging.events")
    (doubled,) = rows(shop, MetricQuery(("revenue", "events")))
    assert doubled == (85.0, 16)
    assert [r[1:3] for r in rows(shop, MetricQuery(("revenue", "events"), by=("plan",)))] == [
        (55.0, 8), (30.0, 6), (None, 2),
    ]  # fmt: skip


def test_metrics_of_two_models_are_aggregated_apart(shop: tuple[Warehouse, Project]) -> None:
    query = MetricQuery(("purchases", "active_users", "conversion"), by=("country",))
    assert rows(shop, query) == [
        ("DE", 3, 2, 1.0),
        ("FR", 1, 1, 1.0),
        (None, 0, 1, 0.0),  # no purchase without a country: counts are 0, not NULL
    ]
    by_plan_week = MetricQuery(("buyers", "active_users", "conversion"), by=("plan",), grain="week")
    assert rows(shop, by_plan_week) == [
        (date(2024, 2, 26), "free", 1, 2, 0.5),
        (date(2024, 2, 26), "pro", 1, 1, 1.0),
        (date(2024, 2, 26), None, 0, 1, 0.0),
        (date(2024, 3, 4), "free", 1, 1, 1.0),
    ]


def test_order_by_a_metric_and_limit(shop: tuple[Warehouse, Project]) -> None:
    query = MetricQuery(("events", "biggest", "average"), by=("kind",), order="events", limit=2)
    # four opens (one spelled Open) and four purchases: the tie is ordered by the dimension
    assert rows(shop, query) == [("open", 4, None, None), ("purchase", 4, 20.0, 10.625)]


def test_describe_lists_dimensions_and_grains(shop: tuple[Warehouse, Project]) -> None:
    infos = {info.name: info for info in describe(shop[1])}
    revenue = infos["revenue"]
    assert (revenue.label, revenue.model, revenue.format) == ("Revenue", "events", "currency")
    assert revenue.dimensions == ["country", "platform", "kind", "plan"]
    assert revenue.grains == ["hour", "day", "week", "month"]
    assert revenue.time_dimension == "event_time"
    conversion = infos["conversion"]
    assert conversion.model == "purchases+events"
    assert conversion.dimensions == ["country", "plan"] and conversion.grains == [
        "day",
        "week",
        "month",
    ]
    assert infos["accounts"].grains == [] and infos["accounts"].dimensions == ["plan"]


def test_filters_on_the_time_dimension_and_on_numbers(shop: tuple[Warehouse, Project]) -> None:
    query = MetricQuery(
        ("events",), by=("kind",),
        where=(parse_filter("event_time >= 2024-03-02"), parse_filter("platform in (Web, iOS)")),
    )  # fmt: skip
    assert rows(shop, query) == [("open", 1), ("purchase", 1)]
    spent = MetricQuery(("events", "revenue"), where=(parse_filter("kind = purchase"),))
    assert rows(shop, spent) == [(4, 42.5)]


def test_approx_count_distinct(shop: tuple[Warehouse, Project]) -> None:
    """A sketch on DuckDB, exact on PostgreSQL: for a handful of values, both exact."""
    query = MetricQuery(("devices", "purchases"), by=("country",))
    assert rows(shop, query) == [("DE", 2, 3), ("FR", 1, 1), (None, 1, 0)]


def test_a_filter_on_a_metric_keeps_the_groups_whose_value_passes(
    shop: tuple[Warehouse, Project],
) -> None:
    query = MetricQuery(
        ("revenue", "purchases"), by=("country",), grain="day",
        where=(parse_filter("revenue >= 10"), parse_filter("country != FR")),
    )  # fmt: skip
    result = run_query(*shop, query)
    assert result.rows == [(date(2024, 3, 1), "DE", 15.0, 2)]
    assert result.params == ["FR", "FR", 10]  # each model's rows, then the aggregates
