"""Threshold alerts on metrics, delivered over real HTTP to a webhook on loopback: once per
breach, a recovery when it clears, nothing while the data it reads is unchanged."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from anchorflow.alerts import AlertSender
from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.metrics.alerts import AlertCheck, check_metric_alerts, period_start, shift
from anchorflow.warehouse import Warehouse
from tests.builders import amplitude_source, build_project, open_warehouse
from tests.conftest import available_at, run_pipeline, table_rows
from tests.metrics.cases import fill_shop, mark_load, shop_project
from tests.receiver import Receiver, running_receiver

pytestmark = pytest.mark.integration
receiver = pytest.fixture(running_receiver)
DROP = {"metric": "revenue", "grain": "day", "change": {"by": "-30%"}}
# revenue per day: Mar 1: 15, Mar 2: 7.5 (-50%), Mar 3: none, Mar 4: 20
MARCH_3 = datetime(2024, 3, 3, 1)


@pytest.fixture
def shop(
    engine: str, tmp_path: Path, receiver: Receiver, request: pytest.FixtureRequest
) -> Iterator[tuple[Warehouse, Project]]:
    alerts = getattr(request, "param", {"revenue_drop": DROP})
    project = shop_project(
        tmp_path / "shop", metric_alerts=alerts, alerts=[{"kind": "webhook", "url": receiver.url}]
    )
    with open_warehouse(project) as warehouse:
        fill_shop(warehouse, project)
        yield warehouse, project


def check(
    shop: tuple[Warehouse, Project], now: datetime = MARCH_3, force: bool = False
) -> list[AlertCheck]:
    warehouse, project = shop
    sender = AlertSender(project, warehouse)
    checks = check_metric_alerts(warehouse, project, sender, force, now)
    sender.deliver()
    return checks


def add_purchase(warehouse: Warehouse, day: str, amount: float, load_id: int) -> None:
    warehouse.execute(
        "INSERT INTO staging.events (load_id, event_uuid, event_type, user_id, event_time, "
        "amount, country) VALUES (?, ?, 'purchase', 'u1', CAST(? AS TIMESTAMP), ?, 'DE')",
        [load_id, str(uuid.uuid4()), f"{day} 12:00", amount],
    )
    mark_load(warehouse, load_id)


def test_a_breach_is_sent_once_and_its_recovery_once(
    shop: tuple[Warehouse, Project], receiver: Receiver
) -> None:
    warehouse, _ = shop
    (first,) = check(shop)
    assert first.error is None
    assert (first.state, first.value, first.previous, first.sent) == (
        "breached",
        7.5,
        15.0,
        "breach",
    )
    assert first.period == datetime(2024, 3, 2)
    (body,) = receiver.delivered
    assert body["kind"] == "metric_alert"
    assert body["subject"] == (
        "Revenue: -50.0% to 7.5 in 2024-03-02 from 15 in 2024-03-01 "
        "(alert revenue_drop: change -30% against the previous day)"
    )
    assert body["details"]["value"] == 7.5 and body["details"]["period"] == "2024-03-02"
    # the same data: not checked again; checked anyway, still breached: nothing sent
    (again,) = check(shop)
    assert (again.state, again.sent, again.value) == ("unchanged", None, 7.5)
    (forced,) = check(shop, force=True)
    assert (forced.state, forced.sent) == ("breached", None)
    assert len(receiver.delivered) == 1
    # a late purchase of March 2 arrives: checked, it clears, the recovery is sent once
    add_purchase(warehouse, "2024-03-02", 4.0, load_id=2)
    (cleared,) = check(shop)
    assert (cleared.state, cleared.value, cleared.sent) == ("ok", 11.5, "resolved")
    assert [b["kind"] for b in receiver.delivered] == ["metric_alert", "metric_alert_resolved"]
    assert receiver.delivered[1]["subject"].startswith("resolved: Revenue: -23.3% to 11.5")
    (quiet,) = check(shop, force=True)
    assert (quiet.state, quiet.sent) == ("ok", None) and len(receiver.delivered) == 2


def test_a_new_period_is_checked_even_without_new_data(shop: tuple[Warehouse, Project]) -> None:
    assert check(shop)[0].state == "breached"
    # March 4 (20) against March 3 (no purchase: 0 for a sum, so no change can be measured)
    (later,) = check(shop, now=datetime(2024, 3, 5, 0, 30))
    assert (later.state, later.value, later.previous, later.sent) == ("ok", 20.0, 0.0, "resolved")


THRESHOLDS: dict[str, Any] = {
    "big_country": {"metric": "revenue", "grain": "day", "by": ["country"], "above": 10},
    "quiet_de": {"metric": "events", "grain": "day", "where": ["country = DE"], "below": 2},
}


@pytest.mark.parametrize("shop", [THRESHOLDS], indirect=True)
def test_above_and_below_per_series(shop: tuple[Warehouse, Project], receiver: Receiver) -> None:
    checks = check(shop, now=datetime(2024, 3, 2, 6))  # March 1 against March 2's threshold
    states = {(c.alert, c.series): (c.state, c.value, c.sent) for c in checks}
    assert states == {
        ("big_country", "country=DE"): ("breached", 15.0, "breach"),
        ("big_country", "country=FR"): ("ok", 0.0, None),
        ("quiet_de", ""): ("ok", 3.0, None),
    }
    assert len(receiver.delivered) == 1
    assert receiver.delivered[0]["details"]["series"] == "country=DE"
    # March 2: DE's revenue is 7.5 (clears), one DE event (quiet)
    checks = check(shop, now=datetime(2024, 3, 3, 6))
    states = {(c.alert, c.series): (c.state, c.value, c.sent) for c in checks}
    assert states[("big_country", "country=DE")] == ("ok", 7.5, "resolved")
    assert states[("quiet_de", "")] == ("breached", 1.0, "breach")
    assert [b["kind"] for b in receiver.delivered][1:] == ["metric_alert_resolved", "metric_alert"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("grain", "start", "before"),
    [
        ("hour", datetime(2024, 3, 5, 10), datetime(2024, 3, 5, 9)),
        ("day", datetime(2024, 3, 5), datetime(2024, 3, 4)),
        ("week", datetime(2024, 3, 4), datetime(2024, 2, 26)),  # Mondays
        ("month", datetime(2024, 3, 1), datetime(2024, 2, 1)),
        ("quarter", datetime(2024, 1, 1), datetime(2023, 10, 1)),
        ("year", datetime(2024, 1, 1), datetime(2023, 1, 1)),
    ],
)
def test_periods(grain: str, start: datetime, before: datetime) -> None:
    assert period_start(datetime(2024, 3, 5, 10, 42), grain) == start
    assert shift(start, grain, -1) == before
    assert shift(before, grain, 1) == start
    assert date(2024, 3, 5) >= start.date()


def test_run_checks_an_alert_only_when_the_data_it_reads_changed(
    engine: str, emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    metrics = {
        "models": {"events": {"model": "events", "time": {"column": "event_time"},
                              "measures": {"events": {"agg": "count"}}}},
        "metrics": {"events": {"measure": "events.events"}},
        # a month: the period compared stays February while the runs load March's hours
        "alerts": {"busy": {"metric": "events", "grain": "month", "above": 0}},
    }  # fmt: skip
    sources = {"amplitude": amplitude_source(emulator.base_url)}
    project = build_project(tmp_path / "p", sources=sources, metrics=metrics)
    first = run_pipeline(project, available_at(2)).metric_alerts
    assert [(c.alert, c.state) for c in first] == [("busy", "breached")]  # early device clocks
    again = run_pipeline(project, available_at(2))
    assert again.windows == [] and [c.state for c in again.metric_alerts] == ["unchanged"]
    more = run_pipeline(project, available_at(3))
    assert len(more.windows) == 1 and [c.state for c in more.metric_alerts] == ["breached"]
    ((mark,),) = table_rows(project, "SELECT data_mark FROM meta.metric_alerts")
    assert mark.startswith("staging.events=3/3/") and mark.endswith("@2024-02-01T00:00:00")


@pytest.mark.unit
def test_run_s_summary_names_the_alerts_it_checked() -> None:
    from rich.console import Console

    from anchorflow.console import print_summary
    from anchorflow.run.results import RunSummary

    checks = [
        AlertCheck("revenue_drop", "revenue", "", "breached", 7.5, 15.0, MARCH_3, "c", "breach"),
        AlertCheck("big", "revenue", "country=DE", "ok", 1.0, None, MARCH_3, "c"),
        AlertCheck("quiet", "events", "", "unchanged", 1.0, None, MARCH_3, "c"),
    ]
    console = Console(record=True, width=200)
    print_summary(console, RunSummary(metric_alerts=checks))
    lines = console.export_text().splitlines()
    assert "metric alert revenue_drop: breached, sent breach" in lines
    assert "metric alert big (country=DE): ok" in lines
    assert not any("quiet" in line for line in lines)


def test_serve_runner_checks_the_alerts_on_its_own(
    shop: tuple[Warehouse, Project], receiver: Receiver
) -> None:
    """`serve` checks the metric alerts every minute, with no run: the breach is sent once."""
    from anchorflow.serve.runs import Runner

    warehouse, project = shop
    runner = Runner(project, warehouse, clock=lambda: MARCH_3.replace(tzinfo=UTC))
    assert runner.checks_alerts
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not receiver.delivered and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the event, not timing it
    finally:
        runner.stop()
    (body,) = receiver.delivered
    assert body["kind"] == "metric_alert"
    assert [(r.reason, r.status, r.rows) for r in runner.history] == [("alerts", "ok", 1)]
