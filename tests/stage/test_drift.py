"""Schema drift across batches: one event per problem, one alert each, over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.stage.conftest import Receiver
from tests.stage.helpers import commit, drop_tables, rows, stage, u, write_project

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("engine")]

EVENTS_SQL = (
    "SELECT kind, model, field, status, alerted_at IS NOT NULL FROM meta.schema_events "
    "ORDER BY event_id"
)


def events_model(**drift: Any) -> dict[str, Any]:
    return {
        "source": "amplitude",
        "unique_key": "event_uuid",
        "sample_percent": 100,
        "drift": {"min_sample": 10, **drift},
        "columns": {
            "event_uuid": {"path": "uuid", "type": "UUID"},
            "event_type": "VARCHAR",
            "amount": {"path": "event_properties.amount", "type": "DOUBLE"},
            "plan": "VARCHAR",
        },
    }


class Stream:
    """Windows of 20 records each, with fresh event ids."""

    def __init__(self, project: Any) -> None:
        self.project = project
        self.window = 0
        self.next_id = 0

    def commit(self, make: Any) -> None:
        records = []
        for i in range(20):
            self.next_id += 1
            records.append({"uuid": u(self.next_id), "event_type": "view", **make(i)})
        commit(self.project, self.window, records)
        self.window += 1
        stage(self.project)  # what `run` does after its windows: stage what is due, alert


def test_new_type_change_and_vanished_each_alert_once(tmp_path: Path, receiver: Receiver) -> None:
    project = write_project(
        tmp_path, {"events": events_model(ignore=["debug_*"])},
        alerts=[{"kind": "webhook", "url": receiver.url}],
    )  # fmt: skip
    stream = Stream(project)
    # The first batch is the baseline: its unmapped field is recorded, not alerted.
    stream.commit(lambda i: {"event_properties": {"amount": i}, "plan": "pro", "legacy": 1})
    assert rows(project, EVENTS_SQL) == [("new_field", "events", "legacy", "baseline", True)]
    assert receiver.bodies == []

    def later(i: int) -> dict[str, Any]:
        amount = str(i) if i % 2 else i  # numbers, then numbers and strings
        return {"event_properties": {"amount": amount}, "plan": "pro", "legacy": 1,
                "country": "DE", "debug_trace": "x"}  # fmt: skip

    stream.commit(later)
    assert receiver.kinds() == [
        ("type_change", "events", "event_properties.amount"),
        ("new_field", "events", "country"),
    ]

    def without_plan(i: int) -> dict[str, Any]:
        record = later(i)
        del record["plan"]
        return record

    for _ in range(3):
        stream.commit(without_plan)
    assert receiver.kinds() == [
        ("type_change", "events", "event_properties.amount"),
        ("new_field", "events", "country"),
        ("vanished_field", "events", "plan"),
    ]
    assert rows(project, EVENTS_SQL) == [
        ("new_field", "events", "legacy", "baseline", True),
        ("type_change", "events", "event_properties.amount", "open", True),
        ("new_field", "events", "country", "open", True),
        ("vanished_field", "events", "plan", "open", True),
    ]

    by_kind = {body["kind"]: body for body in receiver.bodies}
    new_field = by_kind["new_field"]["details"]
    assert new_field["mapping"] == "country: {path: country, type: VARCHAR}"
    assert (new_field["suggested_type"], new_field["json_types"]) == ("VARCHAR", ["VARCHAR"])
    assert (new_field["first_load_id"], new_field["present"], new_field["sampled"]) == (2, 20, 20)
    change = by_kind["type_change"]["details"]
    assert (change["column"], change["was"], change["now"]) == ("amount", ["number"],
                                                                 ["number", "varchar"])  # fmt: skip
    vanished = by_kind["vanished_field"]["details"]
    assert (vanished["column"], vanished["previous_rate"], vanished["first_load_id"]) == (
        "plan", 1.0, 3)  # fmt: skip
    assert by_kind["vanished_field"]["subject"] == "staging.events: field 'plan' stopped arriving"
    delivered = rows(project, "SELECT kind, target, status FROM meta.alerts ORDER BY sent_at")
    assert delivered == [
        ("type_change", "webhook#0", "delivered"),
        ("new_field", "webhook#0", "delivered"),
        ("vanished_field", "webhook#0", "delivered"),
    ]

    # Retyping the whole history (table dropped) computes the statistics again: no new alert.
    drop_tables(project, "events")
    (run,) = stage(project)
    assert run.loads == 5
    assert len(receiver.bodies) == 3
    assert len(rows(project, EVENTS_SQL)) == 4


def test_a_null_rate_jump_is_one_event(tmp_path: Path, receiver: Receiver) -> None:
    project = write_project(tmp_path, {"events": events_model()},
                            alerts=[{"kind": "webhook", "url": receiver.url}])  # fmt: skip
    stream = Stream(project)
    full = {"event_properties": {"amount": 5}, "plan": "pro"}
    stream.commit(lambda i: full)
    stream.commit(lambda i: full)
    # a quarter of the amounts null: a jump of 0.25 is not more than the threshold
    stream.commit(lambda i: {**full, "event_properties": {"amount": None if i % 4 == 0 else 5}})
    assert receiver.bodies == []
    stream.commit(lambda i: full)
    # then 60% null (missing or JSON null)
    half = {0: {}, 1: {"amount": None}, 2: {}}
    stream.commit(lambda i: {**full, "event_properties": half.get(i % 5, {"amount": 5})})
    stream.commit(lambda i: {**full, "event_properties": half.get(i % 5, {"amount": 5})})
    stream.commit(lambda i: full)
    stream.commit(lambda i: {**full, "event_properties": half.get(i % 5, {"amount": 5})})
    assert receiver.kinds() == [("null_rate", "events", "event_properties.amount")]
    details = receiver.bodies[0]["details"]
    assert (details["column"], details["was"], details["now"]) == ("amount", 0.0, 0.6)
    assert details["first_load_id"] == 5
    assert rows(project, "SELECT kind, field FROM meta.schema_events") == [
        ("null_rate", "event_properties.amount")
    ]


def test_an_unclaimed_event_type_is_one_new_model_event(tmp_path: Path, receiver: Receiver) -> None:
    def selective(selector: str) -> dict[str, Any]:
        return {"source": "amplitude", "selector": selector, "unique_key": "event_uuid",
                "columns": {"event_uuid": {"path": "uuid", "type": "UUID"}}}  # fmt: skip

    project = write_project(
        tmp_path,
        {
            "purchases": selective("event_type = 'purchase'"),
            "views": selective("event_type IN ('page_view', 'screen_view')"),
            "everything": {"source": "amplitude", "unique_key": "event_uuid", "sample_percent": 0,
                           "columns": {"event_uuid": {"path": "uuid", "type": "UUID"}}},
        },
        alerts=[{"kind": "webhook", "url": receiver.url}],
    )  # fmt: skip
    next_id = iter(range(1, 10_000))

    def window(n: int, **types: int) -> None:
        records = [{"uuid": u(next(next_id)), "event_type": kind}
                   for kind, count in types.items() for _ in range(count)]  # fmt: skip
        commit(project, n, records)
        stage(project)

    # The stream's first load is the baseline: 'login' is recorded, never alerted.
    window(0, purchase=40, page_view=40, screen_view=40, login=60)
    assert rows(project, EVENTS_SQL) == [("new_model", "login", "event_type", "baseline", True)]
    window(1, purchase=40, login=60, sign_up=60)
    window(2, purchase=40, login=60, sign_up=60)
    assert receiver.kinds() == [("new_model", "sign_up", "event_type")]
    details = receiver.bodies[0]["details"]
    assert details["mapping"] == "selector: \"event_type = 'sign_up'\""
    assert details["staged_by"] == ["everything"]
    assert details["stream"] == "amplitude.events"
    assert 0 < details["sampled_records"] < 60
    assert rows(project, EVENTS_SQL) == [
        ("new_model", "login", "event_type", "baseline", True),
        ("new_model", "sign_up", "event_type", "open", True),
    ]
    # claimed types are never reported
    recorded = json.dumps(rows(project, "SELECT model FROM meta.schema_events"))
    assert "purchase" not in recorded and "view" not in recorded


def test_after_an_empty_first_hour_the_first_hour_with_data_is_the_baseline(
    tmp_path: Path, receiver: Receiver
) -> None:
    purchases = {
        "source": "amplitude",
        "selector": "event_type = 'purchase'",
        "unique_key": "event_uuid",
        "sample_percent": 100,
        "columns": {"event_uuid": {"path": "uuid", "type": "UUID"}, "plan": "VARCHAR"},
    }
    project = write_project(tmp_path, {"purchases": purchases},
                            alerts=[{"kind": "webhook", "url": receiver.url}])  # fmt: skip
    commit(project, 0, [])
    commit(project, 1, [{"uuid": u(n), "event_type": "purchase" if n % 2 else "login",
                         "plan": "pro", "legacy": 1} for n in range(40)])  # fmt: skip
    stage(project)
    assert rows(project, EVENTS_SQL) == [
        ("new_field", "purchases", "legacy", "baseline", True),
        ("new_model", "login", "event_type", "baseline", True),
    ]
    assert receiver.bodies == []


def test_objects_the_selector_or_the_exploded_array_read_are_not_new_fields(
    tmp_path: Path, receiver: Receiver
) -> None:
    key = {"event_uuid": {"path": "uuid", "type": "UUID"}, "event_type": "VARCHAR"}
    project = write_project(
        tmp_path,
        {
            "big": {"source": "amplitude", "unique_key": "event_uuid", "sample_percent": 100,
                    "selector": "CAST(event_properties.amount AS DOUBLE) > 10", "columns": key},
            "items": {"source": "amplitude", "unique_key": ["event_uuid", "item_index"],
                      "sample_percent": 100, "selector": "event_type = 'purchase'",
                      "explode": {"path": "event_properties.items", "position": "item_index"},
                      "columns": {**key, "sku": {"path": "[].sku"}}},
        },
        alerts=[{"kind": "webhook", "url": receiver.url}],
    )  # fmt: skip
    for window in range(2):
        records = [{"uuid": u(window * 100 + i), "event_type": "purchase",
                    "event_properties": {"amount": 20 + i, "items": [{"sku": "a"}]}}
                   for i in range(20)]  # fmt: skip
        commit(project, window, records)
        stage(project)
    assert rows(project, "SELECT count(*) FROM staging.big") == [(40,)]
    assert rows(project, "SELECT count(*) FROM staging.items") == [(40,)]
    assert rows(project, "SELECT kind, model, field FROM meta.schema_events") == []
    assert receiver.bodies == []


def test_a_new_key_no_mapping_path_can_name_is_reported_without_breaking_the_batch(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, {"events": events_model()})
    stream = Stream(project)
    stream.commit(lambda i: {"plan": "free"})  # the baseline
    stream.commit(lambda i: {"plan": "free", "we\"ird'key": i})
    found = rows(
        project, "SELECT kind, field, detail FROM meta.schema_events WHERE status = 'open'"
    )
    assert [(k, f) for k, f, _ in found] == [("new_field", "we\"ird'key")]
    assert "cannot name" in json.loads(found[0][2])["we\"ird'key"]["note"]
    assert rows(project, "SELECT count(*) FROM staging.events") == [(40,)]
