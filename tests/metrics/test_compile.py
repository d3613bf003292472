"""The semantic layer's SQL: golden files per engine, and the requests it refuses."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from anchorflow.config.metrics import MetricsConfig
from anchorflow.errors import ConfigError
from anchorflow.metrics import Filter, MetricQuery, compile_query, parse_filter
from tests.metrics.cases import METRICS

pytestmark = pytest.mark.unit
GOLDEN = Path(__file__).parent / "golden"
# `ANCHORFLOW_GOLDEN=write pytest tests/metrics/test_compile.py` rewrites the files: review
# the diff before committing it.
WRITE = os.environ.get("ANCHORFLOW_GOLDEN") == "write"
SECTION = MetricsConfig.model_validate(METRICS)

QUERIES = {
    "revenue_by_country_day": MetricQuery(
        ("revenue",), by=("country",), grain="day",
        where=(parse_filter("country in (DE, FR)"),),
        start=date(2024, 3, 1), end=date(2024, 4, 1), limit=100,
    ),
    "conversion_by_plan_week": MetricQuery(
        ("conversion", "purchases"), by=("plan",), grain="week",
        where=(parse_filter("country != FR"),),
    ),
    "events_total_by_kind": MetricQuery(
        ("events", "average"), by=("kind",), order="events", limit=5,
        where=(parse_filter("events > 1"),),
    ),
}  # fmt: skip


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_compiled_sql_matches_the_golden_file(name: str, dialect: str) -> None:
    sql, params = compile_query(SECTION, QUERIES[name], dialect)
    golden = GOLDEN / f"{name}.{dialect}.sql"
    if WRITE:
        golden.write_text(sql + "\n")
    assert sql == golden.read_text().rstrip("\n")
    assert sql.count("?" if dialect == "duckdb" else "%s") == len(params)


def test_values_are_parameters_and_identifiers_are_quoted() -> None:
    hostile = "DE'; DROP TABLE staging.events; --"
    query = MetricQuery(("revenue",), by=("country",), where=(Filter("country", "=", hostile),))
    sql, params = compile_query(SECTION, query, "duckdb")
    assert hostile not in sql and params == [hostile]
    assert '"staging"."events" AS "t"' in sql and '"t"."country" AS "country"' in sql


def test_the_time_range_and_filters_are_bound_in_the_order_of_the_sql() -> None:
    query = QUERIES["revenue_by_country_day"]
    _, params = compile_query(SECTION, query, "postgres")
    assert params == [date(2024, 3, 1), date(2024, 4, 1), "DE", "FR"]


def test_metrics_of_two_models_aggregate_each_model_on_its_own() -> None:
    sql, _ = compile_query(
        SECTION, MetricQuery(("revenue", "purchases"), by=("country",)), "duckdb"
    )
    assert sql.count("GROUP BY") == 3  # each model, then the stacked aggregates
    assert "JOIN" not in sql  # the aggregates are stacked, never joined row to row


def test_a_dimension_on_the_many_side_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        compile_query(SECTION, MetricQuery(("accounts",), by=("country",)), "duckdb")
    (line,) = error.value.problems
    assert "refused" in line and "one_to_many" in line and "events" in line


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (MetricQuery(("revenu",)), "unknown metric 'revenu' (did you mean 'revenue'?"),
        (MetricQuery(("revenue",), by=("contry",)), "did you mean 'country'?"),
        (MetricQuery(("revenue",), grain="fortnight"), "unknown grain 'fortnight'"),
        (MetricQuery(("purchases",), grain="hour"), "no grain 'hour' (day, week, month)"),
        (MetricQuery(("accounts",), grain="day"), "accounts has no grain 'day' (none: no time"),
        (MetricQuery(("revenue",), order="events"), "order 'events' is not one of the metrics"),
        (MetricQuery(()), "name at least one metric"),
    ],
)  # fmt: skip
def test_an_unknown_name_is_one_line_naming_what_exists(query: MetricQuery, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        compile_query(SECTION, query, "duckdb")
    (line,) = error.value.problems
    assert expected in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("country = DE", Filter("country", "=", "DE")),
        ("country in (DE, FR)", Filter("country", "in", ("DE", "FR"))),
        ("country NOT IN ('a, b', c)", Filter("country", "not in", ("a, b", "c"))),
        ("revenue >= 10", Filter("revenue", ">=", 10)),
        ("ratio < 0.5", Filter("ratio", "<", 0.5)),
        ("code = '042'", Filter("code", "=", "042")),
        ("platform <> ios", Filter("platform", "!=", "ios")),
        ("account.plan = pro", Filter("account.plan", "=", "pro")),
    ],
)
def test_parse_filter_reads_a_dimension_an_operator_and_values(text: str, expected: Filter) -> None:
    assert parse_filter(text) == expected
    assert parse_filter(expected.text()) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("country", "expected <dimension> <operator> <value>"),
        ("country ~ DE", "expected <dimension> <operator> <value>"),
        ("country =", "a value is missing"),
        ("country in DE", "in takes a list in parentheses"),
        ("1country = DE", "expected <dimension> <operator> <value>"),
    ],
)
def test_parse_filter_refuses_in_one_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_filter(text)
    (line,) = error.value.problems
    assert expected in line and repr(text) in line
