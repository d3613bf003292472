"""Funnel and retention queries on every engine, over crafted events with known answers: the
conversion window, the order of steps, the first step-1 event as the entry, segments; cohorts by
the week of the first event ever, week-n boundaries at Monday 00:00."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from anchorflow.config.dashboards import Dashboard
from anchorflow.dashboards.tiles import Selection, TileResult, run_tile
from anchorflow.warehouse import Warehouse

pytestmark = pytest.mark.integration

D = datetime
FUNNEL_EVENTS = [
    # user, time, type, country, platform
    ("u1", D(2024, 3, 1, 9), "view", "DE", "ios"),
    ("u1", D(2024, 3, 2, 9), "cart", "DE", "ios"),
    ("u1", D(2024, 3, 3, 9), "purchase", "DE", "ios"),
    ("u2", D(2024, 3, 1, 9), "view", "DE", "web"),
    ("u2", D(2024, 3, 9, 9), "cart", "DE", "web"),  # after the 7-day window
    ("u3", D(2024, 3, 1, 9), "cart", "FR", "web"),  # before its view: out of order
    ("u3", D(2024, 3, 2, 9), "view", "FR", "web"),
    ("u3", D(2024, 3, 3, 9), "purchase", "FR", "web"),  # no cart after the view
    ("u4", D(2024, 3, 1, 10), "view", "DE", "ios"),
    ("u4", D(2024, 3, 1, 11), "cart", "DE", "ios"),
    ("u4", D(2024, 3, 8, 9), "purchase", "DE", "ios"),  # 6 d 23 h after the view: inside
    ("u5", D(2024, 3, 1, 9), "view", "FR", "web"),
    ("u5", D(2024, 3, 2, 9), "purchase", "FR", "web"),  # before the cart: does not count
    ("u5", D(2024, 3, 3, 9), "cart", "FR", "web"),
    ("u6", D(2024, 2, 28, 9), "view", "FR", "web"),  # entered before the range
    ("u6", D(2024, 3, 1, 9), "cart", "FR", "web"),
    ("u7", D(2024, 3, 6, 0), "view", "FR", "web"),  # the range's end is exclusive
    ("u8", D(2024, 3, 1, 9), "view", "FR", "android"),  # entry is the first view...
    ("u8", D(2024, 3, 5, 9), "view", "FR", "android"),
    ("u8", D(2024, 3, 10, 9), "cart", "FR", "android"),  # ...so this is 9 days later
    (None, D(2024, 3, 1, 9), "view", "DE", "web"),  # before sign-up: no user
]
RETENTION_EVENTS = [
    ("a", D(2024, 3, 4, 0), "open", "DE", "ios"),  # Monday 00:00: cohort Mar 4
    ("a", D(2024, 3, 11, 12), "open", "DE", "ios"),  # week 1
    ("b", D(2024, 3, 10, 23), "open", "DE", "ios"),  # Sunday night: cohort Mar 4
    ("b", D(2024, 3, 11, 0, 30), "purchase", "DE", "ios"),  # Monday: week 1
    ("c", D(2024, 2, 20, 9), "open", "FR", "web"),  # first seen before the range: no cohort
    ("c", D(2024, 3, 5, 9), "open", "FR", "web"),
    ("d", D(2024, 3, 12, 9), "open", "FR", "web"),  # cohort Mar 11
    ("d", D(2024, 3, 25, 9), "purchase", "FR", "web"),  # week 2
    ("e", D(2024, 3, 5, 9), "open", "FR", "web"),  # cohort Mar 4
    ("e", D(2024, 3, 19, 9), "open", "FR", "web"),  # week 2 only
]


def _load(warehouse: Warehouse, events: list[tuple[Any, ...]]) -> None:
    warehouse.create_schema("staging")
    warehouse.execute(
        "CREATE TABLE staging.app_events (user_id VARCHAR, event_time TIMESTAMP, "
        "event_type VARCHAR, country VARCHAR, platform VARCHAR)"
    )
    for event in events:
        warehouse.execute("INSERT INTO staging.app_events VALUES (?, ?, ?, ?, ?)", list(event))


def _tile(warehouse: Warehouse, tile: dict[str, Any], selection: Selection) -> TileResult:
    dashboard = Dashboard.model_validate({
        "title": "t",
        "events": {"model": "app_events", "dimensions": ["country", "platform"]},
        "tiles": [tile],
    })  # fmt: skip
    result = run_tile(warehouse, None, dashboard, 0, selection)  # type: ignore[arg-type]
    assert result.error is None, result.error
    return result


FUNNEL = {"kind": "funnel", "steps": ["view", "cart", "purchase"], "window": "7d"}
MARCH = Selection(date(2024, 3, 1), date(2024, 3, 6))


def test_a_funnel_counts_users_in_order_within_the_window(warehouse: Warehouse) -> None:
    _load(warehouse, FUNNEL_EVENTS)
    result = _tile(warehouse, FUNNEL, MARCH)
    assert result.columns == ["step", "label", "users", "pct_of_first", "pct_of_previous"]
    assert result.rows == [
        (1, "view", 6, 100.0, 100.0),  # u1 u2 u3 u4 u5 u8
        (2, "cart", 3, 50.0, 50.0),  # u1 u4 u5
        (3, "purchase", 2, 33.3, 66.7),  # u1 u4
    ]
    assert "?" in result.sql and "view" not in result.sql  # event names are bound
    assert result.seconds > 0


def test_a_funnel_window_is_a_bound_duration(warehouse: Warehouse) -> None:
    _load(warehouse, FUNNEL_EVENTS)
    result = _tile(warehouse, {**FUNNEL, "window": "1d"}, MARCH)
    # u1: cart 24 h after the view (inside), purchase 48 h after (outside); u4: cart 1 h after.
    assert [row[2] for row in result.rows] == [6, 2, 0]


def test_a_funnel_by_a_dimension_and_under_a_segment(warehouse: Warehouse) -> None:
    _load(warehouse, FUNNEL_EVENTS)
    by = _tile(warehouse, {**FUNNEL, "by": "platform"}, MARCH)
    assert [(r[0], r[1], r[3]) for r in by.rows] == [
        ("android", 1, 1), ("android", 2, 0), ("android", 3, 0),
        ("ios", 1, 2), ("ios", 2, 2), ("ios", 3, 2),
        ("web", 1, 3), ("web", 2, 1), ("web", 3, 0),
    ]  # fmt: skip
    germany = _tile(warehouse, FUNNEL, Selection(MARCH.start, MARCH.end, {"country": "DE"}))
    assert [row[2] for row in germany.rows] == [3, 2, 2]  # u1 u2 u4
    assert "DE" in germany.params and germany.ignored == []
    elsewhere = _tile(warehouse, FUNNEL, Selection(MARCH.start, MARCH.end, {"team": "x"}))
    assert elsewhere.ignored == ["team"] and [row[2] for row in elsewhere.rows] == [6, 3, 2]


RETENTION = {"kind": "retention", "weeks": 2}
TWO_WEEKS = Selection(date(2024, 3, 4), date(2024, 3, 18))


def test_retention_cohorts_by_the_week_of_the_first_event(warehouse: Warehouse) -> None:
    _load(warehouse, RETENTION_EVENTS)
    result = _tile(warehouse, RETENTION, TWO_WEEKS)
    assert result.columns == ["cohort", "cohort_users", "week", "users", "pct"]
    assert result.rows == [
        (date(2024, 3, 4), 3, 0, 3, 100.0),  # a b e
        (date(2024, 3, 4), 3, 1, 2, 66.7),  # a b (Monday 00:30 is week 1)
        (date(2024, 3, 4), 3, 2, 1, 33.3),  # e
        (date(2024, 3, 11), 1, 0, 1, 100.0),  # d
        (date(2024, 3, 11), 1, 1, 0, 0.0),
        (date(2024, 3, 11), 1, 2, 1, 100.0),
    ]


def test_retention_counts_only_return_events_and_segments(warehouse: Warehouse) -> None:
    _load(warehouse, RETENTION_EVENTS)
    purchases = _tile(warehouse, {**RETENTION, "return_event": "purchase"}, TWO_WEEKS)
    assert [(r[0], r[2], r[3]) for r in purchases.rows] == [
        (date(2024, 3, 4), 0, 0), (date(2024, 3, 4), 1, 1), (date(2024, 3, 4), 2, 0),
        (date(2024, 3, 11), 0, 0), (date(2024, 3, 11), 1, 0), (date(2024, 3, 11), 2, 1),
    ]  # fmt: skip
    france = _tile(
        warehouse, RETENTION, Selection(TWO_WEEKS.start, TWO_WEEKS.end, {"country": "FR"})
    )
    assert [(r[0], r[1], r[2], r[3]) for r in france.rows] == [
        (date(2024, 3, 4), 1, 0, 1), (date(2024, 3, 4), 1, 1, 0), (date(2024, 3, 4), 1, 2, 1),
        (date(2024, 3, 11), 1, 0, 1), (date(2024, 3, 11), 1, 1, 0), (date(2024, 3, 11), 1, 2, 1),
    ]  # fmt: skip


@pytest.mark.unit
def test_retention_leaves_out_weeks_nobody_could_return_in_yet() -> None:
    from anchorflow.config.dashboards import RetentionTile
    from anchorflow.dashboards.tiles import retention_rows

    tile = RetentionTile(kind="retention", weeks=3)
    grid = [
        (D(2024, 3, 4), 4, 0, 4), (D(2024, 3, 4), 4, 1, 2),  # nobody back in week 2: a 0
        (D(2024, 3, 11), 2, 0, 2), (D(2024, 3, 11), 2, 1, 1),  # Mar 18: the last week anyone came
        (D(2024, 3, 18), 5, None, None),  # a cohort nobody of which came back
    ]  # fmt: skip
    _, rows = retention_rows(tile, grid)
    assert [(r[0].day, r[2], r[3]) for r in rows] == [
        (4, 0, 4), (4, 1, 2), (4, 2, 0), (11, 0, 2), (11, 1, 1), (18, 0, 0),
    ]  # fmt: skip


def test_retention_reads_a_mart_of_user_days(warehouse: Warehouse) -> None:
    """A DATE time column and no event column: the same cohorts and weeks as from events."""
    _load(warehouse, RETENTION_EVENTS)
    warehouse.create_schema("marts")
    warehouse.execute(
        "CREATE TABLE marts.user_days AS SELECT CAST(event_time AS DATE) AS day, user_id, "
        "country, count(*) AS events FROM staging.app_events GROUP BY ALL"
    )
    dashboard = Dashboard.model_validate({
        "title": "t",
        "events": {"table": "marts.user_days", "time": "day", "dimensions": ["country"]},
        "tiles": [RETENTION],
    })  # fmt: skip
    result = run_tile(warehouse, None, dashboard, 0, TWO_WEEKS)  # type: ignore[arg-type]
    assert result.error is None, result.error
    assert [(r[0], r[1], r[2], r[3]) for r in result.rows] == [
        (date(2024, 3, 4), 3, 0, 3), (date(2024, 3, 4), 3, 1, 2), (date(2024, 3, 4), 3, 2, 1),
        (date(2024, 3, 11), 1, 0, 1), (date(2024, 3, 11), 1, 1, 0), (date(2024, 3, 11), 1, 2, 1),
    ]  # fmt: skip


def test_a_funnel_step_may_share_types_with_another(warehouse: Warehouse) -> None:
    """One scan flags each event with every step whose types it has: a view may be step 1 and
    step 2 (u8 views again 4 days after entering), a purchase step 2 and step 3."""
    _load(warehouse, FUNNEL_EVENTS)
    again = _tile(warehouse, {**FUNNEL, "steps": ["view", "view"]}, MARCH)
    assert [row[2] for row in again.rows] == [6, 1]  # u8
    either = _tile(warehouse, {**FUNNEL, "steps": ["view", ["cart", "purchase"], "purchase"]},
                   MARCH)  # fmt: skip
    # Step 2: u1 u3 u4 u5 (u3 and u5 by a purchase); step 3, a purchase after their earliest
    # step 2: u1 and u4 (u3's and u5's step-2 purchase was their last).
    assert [row[2] for row in either.rows] == [6, 4, 2]


def test_a_funnel_reads_a_mart_of_user_events_ordered_by_type(warehouse: Warehouse) -> None:
    """The demo's models/funnel_events.sql: the events with a user, by type then time, the
    users numbered (`user_key`, a number per user_id, what the tile groups and joins on)."""
    _load(warehouse, FUNNEL_EVENTS)
    warehouse.create_schema("marts")
    warehouse.execute(
        "CREATE TABLE marts.funnel_events AS "
        "WITH users AS (SELECT user_id, ROW_NUMBER() OVER (ORDER BY user_id) AS user_key "
        "FROM (SELECT DISTINCT user_id FROM staging.app_events WHERE user_id IS NOT NULL) AS s) "
        "SELECT e.event_time, u.user_key, e.event_type, e.country, e.platform "
        "FROM staging.app_events AS e JOIN users AS u ON u.user_id = e.user_id "
        "ORDER BY e.event_type, e.event_time"
    )
    source = {
        "table": "marts.funnel_events", "user": "user_key", "dimensions": ["country", "platform"],
    }  # fmt: skip
    for selection in (MARCH, Selection(MARCH.start, MARCH.end, {"country": "DE"})):
        mart = _tile(warehouse, {**FUNNEL, "by": "platform", "events": source}, selection)
        events = _tile(warehouse, {**FUNNEL, "by": "platform"}, selection)
        assert mart.rows == events.rows and mart.rows


FIRSTS = [
    # f: first seen in DE before the range, then in FR within it: no cohort overall, the cohort
    # of Mar 4 under country = FR.
    ("f", D(2024, 2, 26, 9), "open", "DE", "ios"),
    ("f", D(2024, 3, 6, 9), "open", "FR", "ios"),
    ("f", D(2024, 3, 13, 9), "open", "FR", "ios"),
]


def test_retention_cohorts_from_a_mart_of_first_days(warehouse: Warehouse) -> None:
    """`first_seen:` (the demo's models/user_first_days.sql, per user, country and platform)
    gives the cohorts that grouping every user-day by user gives, under any segment."""
    _load(warehouse, RETENTION_EVENTS + FIRSTS)
    warehouse.create_schema("marts")
    warehouse.execute(
        "CREATE TABLE marts.user_days AS SELECT CAST(event_time AS DATE) AS day, user_id, "
        "country, platform, count(*) AS events FROM staging.app_events GROUP BY ALL"
    )
    warehouse.execute(
        "CREATE TABLE marts.user_first_days AS SELECT user_id, country, platform, "
        "CAST(MIN(event_time) AS DATE) AS first_day FROM staging.app_events GROUP BY ALL"
    )
    days = {"table": "marts.user_days", "time": "day", "dimensions": ["country", "platform"]}
    firsts = {**days, "table": "marts.user_first_days", "time": "first_day"}
    grids = {}
    for country in (None, "FR", "DE"):
        selection = Selection(TWO_WEEKS.start, TWO_WEEKS.end, {"country": country} if country
                              else {})  # fmt: skip
        plain = _tile(warehouse, {**RETENTION, "events": days}, selection)
        mart = _tile(warehouse, {**RETENTION, "events": days, "first_seen": firsts}, selection)
        assert mart.rows == plain.rows and "user_first_days" in mart.sql
        grids[country] = [(r[0], r[1], r[2], r[3]) for r in mart.rows]
    assert grids[None][:3] == [
        (date(2024, 3, 4), 3, 0, 3), (date(2024, 3, 4), 3, 1, 2), (date(2024, 3, 4), 3, 2, 1),
    ]  # fmt: skip
    assert grids["FR"][:3] == [  # e and f: f back in week 1
        (date(2024, 3, 4), 2, 0, 2), (date(2024, 3, 4), 2, 1, 1), (date(2024, 3, 4), 2, 2, 1),
    ]  # fmt: skip
