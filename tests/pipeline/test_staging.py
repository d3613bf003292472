"""Typing into staging: what happens to values and keys that do not fit, on each engine."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project
from anchorflow.run import Pipeline
from anchorflow.sources.amplitude.export import hour_window
from anchorflow.sources.base import LandBatch
from anchorflow.sources.lines import split_lines
from tests.builders import build_project, events_model
from tests.conftest import START, table_rows

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("engine")]

UUID_A = "11111111-1111-4111-8111-111111111111"
UUID_B = "22222222-2222-4222-8222-222222222222"


def project_with(tmp_path: Path, **columns: Any) -> Project:
    events = events_model()
    events["columns"].update(columns)
    return build_project(tmp_path, staging={"events": events})


def commit(project, *events: dict[str, Any] | str):
    lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
    records, rejected = split_lines("f#0.json.gz", "\n".join(lines).encode())
    window = hour_window("events", START)
    batch = LandBatch("amplitude", window, "test", records, 1, 0, rejected)
    with Pipeline(project, now=datetime(2030, 1, 1)) as pipeline:
        return pipeline.commit_window(batch)


def test_a_value_that_does_not_fit_its_type_is_staged_null_and_recorded(
    tmp_path: Path, engine: str
) -> None:
    project = project_with(tmp_path)
    result = commit(
        project,
        {"uuid": UUID_A, "event_time": "garbage", "event_properties": {"amount": "lots"}},
        {"uuid": UUID_B, "event_time": "2024-03-01 00:01:00", "event_properties": {"amount": 2}},
    )
    path = project
    assert table_rows(path, "SELECT event_time, amount FROM staging.events ORDER BY 1") == [
        (datetime(2024, 3, 1, 0, 1), 2.0),
        (None, None),
    ]
    errors = table_rows(
        path, "SELECT model, column_name, value, expected, line_no FROM meta.type_errors ORDER BY 2"
    )
    assert errors == [
        ("events", "amount", "lots", "DOUBLE", 1),
        ("events", "event_time", "garbage", "TIMESTAMP", 1),
    ]
    assert result.type_errors == 2
    assert table_rows(path, "SELECT type_errors FROM meta.loads") == [(2,)]


def test_an_absent_or_null_value_is_not_a_type_error(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    commit(project, {"uuid": UUID_A, "event_time": None}, {"uuid": UUID_B})
    assert table_rows(project, "SELECT count(*) FROM meta.type_errors") == [(0,)]


def test_one_key_mapped_to_two_types_keeps_plain_text(tmp_path: Path) -> None:
    project = project_with(tmp_path, event_time_text={"path": "event_time", "type": "VARCHAR"})
    commit(project, {"uuid": UUID_A, "event_time": "2024-03-01 00:01:00"})
    rows = table_rows(project, "SELECT event_time, event_time_text FROM staging.events")
    assert rows == [(datetime(2024, 3, 1, 0, 1), "2024-03-01 00:01:00")]


def test_records_without_a_usable_key_are_quarantined_with_the_reason(
    tmp_path: Path, engine: str
) -> None:
    project = project_with(tmp_path)
    result = commit(project, {"event_type": "no key"}, {"uuid": "nope"}, {"uuid": UUID_A})
    reasons = table_rows(
        project,
        "SELECT line_no, stage, reason, record FROM meta.quarantine ORDER BY line_no",
    )
    assert [(r[0], r[1]) for r in reasons] == [(1, "stage"), (2, "stage")]
    assert reasons[0][2] == "no value for the unique key event_uuid (path uuid)"
    assert reasons[1][2] == "the unique key event_uuid (path uuid) is not a UUID: nope"
    assert json.loads(reasons[1][3]) == {"uuid": "nope"}
    assert result.quarantined == 2 and result.staged == 1


def test_json_keys_that_are_not_sql_identifiers_can_be_mapped(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        agent={"path": "user-agent", "type": "VARCHAR"},
        factor={"path": "2fa", "type": "BOOLEAN"},
    )
    commit(project, {"uuid": UUID_A, "user-agent": "curl/8", "2fa": True})
    rows = table_rows(project, "SELECT agent, factor FROM staging.events")
    assert rows == [("curl/8", True)]


def test_an_object_after_leading_whitespace_is_landed(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    result = commit(project, "\t " + json.dumps({"uuid": UUID_A}))
    assert result.rows == 1 and result.quarantined == 0


def test_a_key_read_whole_and_by_a_nested_path_gives_both(tmp_path: Path) -> None:
    project = project_with(tmp_path, props_text={"path": "event_properties", "type": "VARCHAR"})
    commit(project, {"uuid": UUID_A, "event_properties": {"amount": 2.5}})
    rows = table_rows(project, "SELECT props_text, amount FROM staging.events")
    assert [(json.loads(rows[0][0]), rows[0][1])] == [({"amount": 2.5}, 2.5)]


def test_a_fraction_for_an_integer_column_is_a_type_error_not_a_rounding(
    tmp_path: Path, engine: str
) -> None:
    project = project_with(tmp_path, session={"path": "session_id", "type": "BIGINT"})
    commit(
        project,
        {"uuid": UUID_A, "session_id": 1.5},
        {"uuid": UUID_B, "session_id": 1e3},
    )
    path = project
    staged = table_rows(path, "SELECT session FROM staging.events ORDER BY event_uuid")
    assert staged == [(None,), (1000,)]
    errors = table_rows(path, "SELECT column_name, value FROM meta.type_errors")
    assert errors == [("session", "1.5")]


# DuckDB reads the usual layout (microseconds, no zone) without the zone-aware cast: a text that
# only begins with that layout must still take the cast, its offset applied.
@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("2024-03-01T05:30:00+05:00", "2024-03-01 00:01:00.250000",
         [datetime(2024, 3, 1, 0, 1, 0, 250000), datetime(2024, 3, 1, 0, 30)]),
        ("2024-03-01 05:30:00.500000+05:00", "2024-03-01 03:00:00.000001-02:00",
         [datetime(2024, 3, 1, 0, 30, 0, 500000), datetime(2024, 3, 1, 5, 0, 0, 1)]),
    ],
    ids=["offset-or-none", "offset-after-the-usual-layout"],
)  # fmt: skip
def test_a_timestamp_with_an_offset_is_converted_to_utc(
    tmp_path: Path, first: str, second: str, expected: list[datetime]
) -> None:
    project = project_with(tmp_path)
    commit(project, {"uuid": UUID_A, "event_time": first}, {"uuid": UUID_B, "event_time": second})
    rows = table_rows(project, "SELECT event_time FROM staging.events ORDER BY 1")
    assert rows == [(e,) for e in expected]
