"""A drift storm: records that each bring hundreds of new keys open one schema event per model,
kind and load that lists them, and one alert per kind with the counts, not one per field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from anchorflow.journal.schema_events import SchemaEventInfo
from anchorflow.run import Pipeline
from tests.receiver import Receiver, running_receiver
from tests.stage.helpers import LATER, commit, rows, stage, u, write_project
from tests.test_cli import cli

pytestmark = [pytest.mark.hostile, pytest.mark.integration]
receiver = pytest.fixture(running_receiver)

EVENTS = {
    "source": "amplitude",
    "unique_key": "event_uuid",
    "sample_percent": 100,
    "columns": {"event_uuid": {"path": "uuid", "type": "UUID"}, "plan": "VARCHAR"},
}
KEYS = [f"k{n:03d}" for n in range(300)]


def storm(first: int, count: int = 200) -> list[dict[str, Any]]:
    return [{"uuid": u(first + i), "plan": "pro", **dict.fromkeys(KEYS, i)} for i in range(count)]


def test_three_hundred_new_keys_are_one_event_and_one_alert(
    tmp_path: Path, receiver: Receiver
) -> None:
    project = write_project(tmp_path, {"events": EVENTS},
                            alerts=[{"kind": "webhook", "url": receiver.url}])  # fmt: skip
    commit(project, 0, [{"uuid": u(i), "plan": "free"} for i in range(1, 21)])  # the baseline
    result = commit(project, 1, storm(100))
    stage(project)

    found = rows(project, "SELECT kind, model, field_count, len(fields), first_load_id "
                          "FROM meta.schema_events")  # fmt: skip
    assert found == [("new_field", "events", 300, 300, result.load_id)]
    (event,) = open_events(project)
    assert event.fields == KEYS and event.field == "k000"
    assert event.detail["k123"]["mapping"] == "k123: {path: k123, type: BIGINT}"
    assert (event.detail["k123"]["present"], event.detail["k123"]["sampled"]) == (200, 200)

    assert [b["kind"] for b in receiver.delivered] == ["new_field"]
    details = receiver.delivered[0]["details"]
    assert (details["count"], details["events"], details["more"]) == (300, 1, 290)
    assert details["fields"] == KEYS[:10]
    assert "300 new fields" in receiver.delivered[0]["subject"]
    assert "and 290 more" in receiver.delivered[0]["subject"]
    assert rows(project, "SELECT count(*) FROM meta.alerts") == [(1,)]

    # The same keys in the next load are no news: no event, no alert.
    commit(project, 2, storm(1000))
    stage(project)
    assert rows(project, "SELECT count(*) FROM meta.schema_events") == [(1,)]
    assert len(receiver.delivered) == 1


def open_events(project: Any) -> list[SchemaEventInfo]:
    with Pipeline(project, now=LATER) as pipeline:
        return pipeline.schema_events()


def test_records_that_each_bring_their_own_new_keys_are_one_event_and_one_alert(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The issue's storm: 300 keys of its own in each of 200 records, sampled at the default
    rate, opened an event and sent an alert per sampled key (7,802)."""
    sampled = {**EVENTS, "sample_percent": 10}
    project = write_project(tmp_path, {"events": sampled},
                            alerts=[{"kind": "webhook", "url": receiver.url}])  # fmt: skip
    commit(project, 0, [{"uuid": u(i), "plan": "free"} for i in range(1, 201)])
    own_keys = [{"uuid": u(1000 + i), "plan": "pro", **{f"r{i}_k{k}": k for k in range(300)}}
                for i in range(200)]  # fmt: skip
    commit(project, 1, own_keys)
    stage(project)

    ((records,),) = rows(project, "SELECT max(sampled) FROM meta.field_stats WHERE batch_id = 2")
    assert records > 1
    assert rows(project, "SELECT kind, field_count FROM meta.schema_events") == [
        ("new_field", records * 300)]  # fmt: skip
    assert [(b["kind"], b["details"]["count"]) for b in receiver.delivered] == [
        ("new_field", records * 300)]  # fmt: skip


def test_an_older_journal_with_an_event_per_field_still_reads_and_dedups(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"events": EVENTS})
    commit(project, 0, [{"uuid": u(i), "plan": "free"} for i in range(1, 21)])  # the baseline
    # Two events as an older release wrote them: one row per field, its detail alone.
    con = duckdb.connect(str(project.warehouse_path))
    for event_id, field in ((2, "k000"), (3, "k001")):
        con.execute(
            "INSERT INTO meta.schema_events (event_id, kind, stream, model, field, detail, "
            "first_load_id, seen_at, status, alerted_at) VALUES (?, 'new_field', 'events', "
            "'events', ?, ?, 1, now()::TIMESTAMP, 'open', now()::TIMESTAMP)",
            [event_id, field, json.dumps({"mapping": f"{field}: {{path: {field}}}"})],
        )
    con.close()
    commit(project, 1, storm(100))

    events = open_events(project)
    assert [(e.event_id, e.field, e.field_count) for e in events] == [
        (2, "k000", 1), (3, "k001", 1), (4, "k002", 298)]  # fmt: skip
    assert events[0].detail == {"k000": {"mapping": "k000: {path: k000}"}}
    assert events[2].fields == KEYS[2:]

    listed = cli("drift", "--project", str(project.root))
    assert listed.returncode == 0, listed.stderr
    assert "k000: {path: k000}" in listed.stdout  # a one-field event shows its detail
    assert "k002, k003" in listed.stdout and "and 278 more" in listed.stdout
    as_json = json.loads(cli("drift", "--json", "--project", str(project.root)).stdout)
    assert [e["field_count"] for e in as_json] == [1, 1, 298]
    assert as_json[2]["fields"] == KEYS[2:] and set(as_json[2]["detail"]) == set(KEYS[2:])

    acked = cli("drift", "--ack", "4", "--ack", "2", "--project", str(project.root))
    assert acked.returncode == 0 and "acknowledged 2 event(s)" in acked.stdout
    assert [e.event_id for e in open_events(project)] == [3]
