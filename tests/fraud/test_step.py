"""The fraud step on a small hand-built data set: inputs mapped with renames, rule runs with
deterministic ids, insert-only merges (a re-run adds nothing), whitelists, shadow mode, skipped
rules, the report, and `forget`."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from anchorflow.fraud.report import report_rows
from anchorflow.fraud.results import fraud_checksum
from anchorflow.run import Pipeline
from anchorflow.warehouse import Warehouse
from tests.builders import build_project

pytestmark = pytest.mark.integration

DAY = datetime(2024, 3, 1)
CLICKS = [  # click_id, at, ip, ua, device, campaign, sub
    ("c1", "2024-03-01 10:00:00", "81.2.69.1", "Mozilla/5.0", "d1", "spring", "s1"),
    ("c2", "2024-03-01 11:00:00", "81.2.69.2", "Mozilla/5.0", "d2", "spring", "s1"),
    ("c3", "2024-03-01 12:00:00", "81.2.69.3", "Mozilla/5.0", "d3", "spring", "s2"),
    ("c4", "2024-03-02 09:00:00", "81.2.69.4", "Mozilla/5.0", "d4", "summer", "s9"),
]
SIGNUPS = [  # user, at, click_id, ip, device, campaign, sub, country
    ("u1", "2024-03-01 10:00:02", "c1", "81.2.69.1", "d1", "spring", "s1", "DE"),  # 2 s: injected
    ("u2", "2024-03-01 11:05:00", "c2", "81.2.69.2", "d2", "spring", "s1", "DE"),
    ("u3", "2024-03-01 12:00:30", "c3", "81.2.69.3", "d3", "spring", "s2", "FR"),
    ("u4", "2024-03-02 09:00:01", "c4", "81.2.69.4", "d4", "summer", "s9", "FR"),  # next day
]
EVENTS = [  # event_id, user, at, channel
    ("e1", "u1", "2024-03-01 10:01:00", "web"),
    ("e2", "u1", "2024-03-01 10:02:00", "server"),
    ("e3", "u2", "2024-03-01 11:06:00", "web"),
    ("e4", "u4", "2024-03-02 09:02:00", "web"),
]


def fraud_project(root: Path, **fraud: Any) -> Any:
    clicks = {"time": "clicked_at", "user_agent": "ua", "sub_campaign": "sub_id"}
    signups = {"time": "registered_at", "sub_campaign": "sub_id"}
    events = {"time": "event_time", "is_server": {"sql": "channel = 'server'"}}
    settings = {
        "inputs": {
            "clicks": {"table": "staging.ad_clicks", "columns": clicks},
            "registrations": {"table": "staging.signups", "columns": signups},
            "events": {"table": "staging.app_events", "columns": events},
        },
        "rules": {name: {"enabled": False} for name in DISABLED},
        "user_entity": None,
        **fraud,
    }
    return build_project(root, fraud=settings)


# Every built-in rule but the one this test is about.
DISABLED = [
    "api_only", "bot_user_agent", "click_flooding", "conversion_anomaly", "datacenter_ip",
    "device_farm", "device_velocity", "duplicate_clicks", "impossible_travel", "ip_velocity",
    "multi_registration_ip", "no_activity",
]  # fmt: skip


def fill(warehouse: Warehouse) -> None:
    warehouse.execute(
        "CREATE TABLE staging.ad_clicks (click_id VARCHAR, clicked_at TIMESTAMP, ip VARCHAR, "
        "ua VARCHAR, device_id VARCHAR, campaign VARCHAR, sub_id VARCHAR, country VARCHAR, "
        "platform VARCHAR)"
    )
    for row in CLICKS:
        warehouse.execute(
            "INSERT INTO staging.ad_clicks VALUES (?, ?, ?, ?, ?, ?, ?, 'DE', 'web')", list(row)
        )
    warehouse.execute(
        "CREATE TABLE staging.signups (user_id VARCHAR, registered_at TIMESTAMP, "
        "click_id VARCHAR, ip VARCHAR, device_id VARCHAR, campaign VARCHAR, sub_id VARCHAR, "
        "country VARCHAR)"
    )
    for row in SIGNUPS:
        warehouse.execute("INSERT INTO staging.signups VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(row))
    warehouse.execute(
        "CREATE TABLE staging.app_events (event_id VARCHAR, user_id VARCHAR, "
        "event_time TIMESTAMP, channel VARCHAR)"
    )
    for row in EVENTS:
        warehouse.execute("INSERT INTO staging.app_events VALUES (?, ?, ?, ?)", list(row))


def flagged(warehouse: Warehouse, what: str = "user_id", table: str = "fraud_user") -> list[Any]:
    return [r[0] for r in warehouse.query(f"SELECT {what} FROM fraud.{table} ORDER BY 1")]


def test_a_rule_flags_merges_and_a_rerun_adds_nothing(engine: str, tmp_path: Path) -> None:
    project = fraud_project(tmp_path, whitelist={"campaigns": ["nothing"]})
    with Pipeline(project) as pipeline:
        fill(pipeline.warehouse)
        first = pipeline.fraud()
        wh = pipeline.warehouse
        assert [r.rule for r in first.runs] == ["click_injection"]
        run = first.runs[0]
        assert (run.window_start, run.window_end) == (DAY, datetime(2024, 3, 3))
        assert flagged(wh) == ["u1", "u4"]
        # The user's events within the lookback and the click of their registration.
        assert wh.query(
            "SELECT event_kind, event_id FROM fraud.fraud_event WHERE user_id = 'u1' ORDER BY 1, 2"
        ) == [("click", "c1"), ("event", "e1"), ("event", "e2")]
        evidence = wh.query(
            "SELECT user_id, seconds_after_click, rule_run_id, whitelisted "
            'FROM fraud."rule_click_injection" ORDER BY 1'
        )
        assert [(u, float(s), w) for u, s, _, w in evidence] == [
            ("u1", 2.0, False), ("u4", 1.0, False)
        ]  # fmt: skip
        assert evidence[0][2] == run.rule_run_id
        before = fraud_checksum(wh)
        again = pipeline.fraud(date(2024, 3, 1), date(2024, 3, 2))
        assert again.runs[0].rule_run_id == run.rule_run_id  # same window, same id
        assert (again.runs[0].found, again.runs[0].added) == (2, 0)
        assert fraud_checksum(wh) == before


def test_whitelist_shadow_and_the_report(engine: str, tmp_path: Path) -> None:
    project = fraud_project(
        tmp_path,
        whitelist={"ips": ["81.2.69.4/32"]},
        rules={**{n: {"enabled": False} for n in DISABLED},
               "click_injection": {"params": {"max_seconds": 5}}},
    )  # fmt: skip
    with Pipeline(project) as pipeline:
        fill(pipeline.warehouse)
        pipeline.fraud()
        wh = pipeline.warehouse
        assert flagged(wh) == ["u1"]  # u4 registered from a whitelisted IP
        assert wh.query(
            'SELECT user_id, whitelisted FROM fraud."rule_click_injection" ORDER BY 1'
        ) == [("u1", False), ("u4", True)]
        columns, rows = report_rows(wh, date(2024, 3, 1), date(2024, 3, 1))
        table = [dict(zip(columns, row, strict=True)) for row in rows]
        spring = {r["sub_campaign"]: r for r in table if r["campaign"] == "spring"}
        assert spring["s1"]["registrations"] == 2 and spring["s1"]["fraud_registrations"] == 1
        assert spring["s1"]["clicks"] == 2 and spring["s1"]["fraud_clicks"] == 1
        assert spring["s1"]["events"] == 3 and spring["s1"]["fraud_events"] == 2
        assert spring["s1"]["fraud_rate"] == pytest.approx(0.5)
        assert spring["s1"]["click_injection"] == 1
        assert spring["s2"]["fraud_registrations"] == 0

    shadowed = fraud_project(
        tmp_path / "shadow",
        rules={**{n: {"enabled": False} for n in DISABLED}, "click_injection": {"shadow": True}},
    )
    with Pipeline(shadowed) as pipeline:
        fill(pipeline.warehouse)
        pipeline.fraud()
        wh = pipeline.warehouse
        assert wh.query("SELECT DISTINCT shadow FROM fraud.fraud_user") == [(True,)]
        columns, rows = report_rows(wh, None, None)
        assert sum(dict(zip(columns, r, strict=True))["fraud_registrations"] for r in rows) == 0


def test_rules_lacking_inputs_are_skipped_with_a_line(tmp_path: Path) -> None:
    project = fraud_project(tmp_path, rules={})
    with Pipeline(project) as pipeline:
        fill(pipeline.warehouse)
        result = pipeline.fraud()
    # The events have no ip, country or user agent: the rules that read them say so.
    assert "input events has no" in result.skipped["impossible_travel"]
    assert "click_injection" in {r.rule for r in result.runs}
    assert all("\n" not in why for why in result.skipped.values())


def test_forget_removes_the_person_from_fraud(engine: str, tmp_path: Path) -> None:
    project = fraud_project(tmp_path)
    with Pipeline(project) as pipeline:
        fill(pipeline.warehouse)
        pipeline.fraud()
        from anchorflow.fraud.erase import erase_fraud_user

        counts = erase_fraud_user(pipeline.warehouse, "u1")
        assert counts["fraud.fraud_user"] == 1 and counts["fraud.fraud_event"] == 3
        assert counts["fraud.rule_click_injection"] == 1
        assert flagged(pipeline.warehouse) == ["u4"]


def test_a_key_found_twice_in_one_run_is_added_once(engine: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir(parents=True)
    (rules / "every_day.sql").write_text(
        "-- slug: every_day\n-- description: each user once per day of their events\n"
        "-- version: 1\n-- severity: low\n-- flags: [user]\n-- lookback: 0s\n"
        "-- inputs: {events: [user_id, time]}\n-- params: {}\n"
        "SELECT e.user_id, min(e.time) AS flagged_at, count(*) AS events\n"
        "FROM events AS e WHERE e.time >= :window_start AND e.time < :window_end\n"
        "GROUP BY e.user_id, CAST(e.time AS DATE)\n"
    )
    off = {n: {"enabled": False} for n in [*DISABLED, "click_injection"]}
    project = fraud_project(tmp_path, rules=off)
    with Pipeline(project) as pipeline:
        fill(pipeline.warehouse)
        pipeline.warehouse.execute(
            "INSERT INTO staging.app_events VALUES ('e5', 'u1', '2024-03-02 08:00:00', 'web')"
        )
        result = pipeline.fraud()
        assert [(r.found, r.added) for r in result.runs] == [(4, 3)]  # u1 on two days
        assert pipeline.warehouse.query(
            'SELECT user_id, flagged_at, events FROM fraud."rule_every_day" ORDER BY 1'
        ) == [
            ("u1", datetime(2024, 3, 1, 10, 1), 2),
            ("u2", datetime(2024, 3, 1, 11, 6), 1),
            ("u4", datetime(2024, 3, 2, 9, 2), 1),
        ]


def test_an_input_may_be_a_view_of_another_schema(engine: str, tmp_path: Path) -> None:
    project = fraud_project(tmp_path)
    inputs = project.fraud.inputs
    as_view = inputs["registrations"].model_copy(update={"table": "marts.signups_view"})
    fraud = project.fraud.model_copy(update={"inputs": {**inputs, "registrations": as_view}})
    project = project.model_copy(update={"fraud": fraud})
    with Pipeline(project) as pipeline:
        fill(pipeline.warehouse)
        pipeline.warehouse.execute(
            "CREATE VIEW marts.signups_view AS SELECT * FROM staging.signups WHERE user_id <> 'u4'"
        )
        pipeline.fraud()
        assert flagged(pipeline.warehouse) == ["u1"]
