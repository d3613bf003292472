"""What a mapping or the data can do that must neither stop a stream nor lose a record."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.errors import ConfigError
from anchorflow.run import Pipeline, check_project
from tests.builders import amplitude_source, build_project
from tests.conftest import available_at, table_rows
from tests.stage.conftest import Receiver
from tests.stage.helpers import (
    LATER,
    commit,
    drop_tables,
    execute,
    rows,
    stage,
    u,
    write_project,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("engine")]

KEY = {"event_uuid": {"path": "uuid", "type": "UUID"}}


def model(**settings: Any) -> dict[str, Any]:
    columns = settings.pop("columns", {})
    return {"source": "amplitude", "unique_key": "event_uuid", "columns": {**KEY, **columns},
            **settings}  # fmt: skip


def test_a_selector_meets_values_of_any_type_without_stopping_the_window(tmp_path: Path) -> None:
    project = write_project(
        tmp_path,
        {
            "paid": model(selector="is_paid = true"),
            "flagged": model(selector="NOT is_test"),
            "mixed": model(selector="code IN (1, 'a')"),
        },
    )
    commit(project, 0, [
        {"uuid": u(1), "is_paid": True, "is_test": False, "code": 1},
        {"uuid": u(2), "is_paid": "maybe", "is_test": "perhaps", "code": "a"},
        {"uuid": u(3), "is_paid": {"x": 1}, "is_test": [1], "code": {"b": 2}},
    ])  # fmt: skip
    assert rows(project, "SELECT count(*) FROM raw.amplitude_events") == [(3,)]
    paid = rows(project, "SELECT event_uuid::VARCHAR FROM staging.paid")
    assert paid == [(u(1),)]
    assert rows(project, "SELECT event_uuid::VARCHAR FROM staging.flagged") == [(u(1),)]
    mixed = rows(project, "SELECT event_uuid::VARCHAR FROM staging.mixed ORDER BY 1")
    assert mixed == [(u(1),), (u(2),)]


def test_a_selector_the_engine_would_fail_on_is_refused_before_anything_loads(
    tmp_path: Path,
) -> None:
    # Reading the file opens no engine; `validate` and `run` try the selector on odd values.
    project = write_project(tmp_path, {"m": model(selector="coalesce(plan, 1) = 1")})
    with pytest.raises(ConfigError) as checked:
        check_project(project)
    (line,) = checked.value.problems
    assert line.startswith("anchorflow.yml: staging.m.selector: selector fails when a field holds")
    assert "TRY_CAST" in line
    assert not project.warehouse_path.exists()  # validate never opened the warehouse
    with Pipeline(project, now=available_at(1)) as pipeline, pytest.raises(ConfigError) as ran:
        pipeline.run()
    # `validate` tries the selector on a scratch DuckDB, `run` on the warehouse: the same line,
    # but for the engine's own message.
    (refused,) = ran.value.problems
    assert refused.split(" (")[0] == line.split(" (")[0] and refused.endswith("with TRY_CAST")
    assert rows(project, "SELECT count(*) FROM meta.loads") == [(0,)]
    assert rows(project, "SELECT status FROM meta.runs") == [("failed",)]


def test_explode_quarantines_a_value_that_is_not_an_array(tmp_path: Path) -> None:
    items = model(
        explode={"path": "items", "position": "i"},
        unique_key=["event_uuid", "i"],
        columns={"item": {"path": "[]", "type": "INTEGER"}},
    )
    project = write_project(tmp_path, {"items": items})
    commit(project, 0, [
        {"uuid": u(1), "items": [7, 8]},
        {"uuid": u(2), "items": "oops"},
        {"uuid": u(3), "items": {"x": 1}},
        {"uuid": u(4)},  # no array: no elements
        {"uuid": u(5), "items": []},
    ])  # fmt: skip
    staged = rows(project, "SELECT event_uuid::VARCHAR, i, item FROM staging.items ORDER BY 2")
    assert staged == [(u(1), 0, 7), (u(1), 1, 8)]
    kept = rows(project, "SELECT line_no, model, reason FROM meta.quarantine ORDER BY 1")
    assert kept == [(2, "items", "element 0: items is not an array"),
                    (3, "items", "element 0: items is not an array")]  # fmt: skip


def test_explode_needs_the_position_in_the_unique_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        write_project(tmp_path, {"m": model(explode={"path": "items"})})
    assert "unique_key must include 'position'" in error.value.problems[0]


def test_a_whole_object_column_cannot_carry_a_hashed_or_dropped_field(tmp_path: Path) -> None:
    columns = {"props": {"path": "user_properties", "type": "JSON"},
               "email": {"path": "user_properties.email", "pii": "drop"}}  # fmt: skip
    with pytest.raises(ConfigError) as error:
        write_project(tmp_path, {"m": model(columns=columns)})
    assert "stores the whole object user_properties" in error.value.problems[0]


def test_decimal_and_date_columns_refuse_what_they_would_round_or_cut(tmp_path: Path) -> None:
    columns = {"price": {"type": "DECIMAL(10,2)"}, "day": {"type": "DATE"}}
    project = write_project(tmp_path, {"m": model(columns=columns)})
    commit(project, 0, [
        {"uuid": u(1), "price": "1.25", "day": "2024-03-01"},
        {"uuid": u(2), "price": "1.239", "day": "2024-03-01 12:30:00"},
    ])  # fmt: skip
    staged = rows(project, "SELECT price::VARCHAR, day::VARCHAR FROM staging.m ORDER BY event_uuid")
    assert staged == [("1.25", "2024-03-01"), (None, None)]
    errors = rows(project, "SELECT column_name, value FROM meta.type_errors ORDER BY 1")
    assert errors == [("day", "2024-03-01 12:30:00"), ("price", "1.239")]


def test_an_alert_no_target_took_is_sent_again_by_the_next_run(
    tmp_path: Path, receiver: Receiver
) -> None:
    project = write_project(
        tmp_path, {"m": model(sample_percent=100, columns={"plan": "VARCHAR"})},
        alerts=[{"kind": "webhook", "url": receiver.url}],
    )  # fmt: skip
    commit(project, 0, [{"uuid": u(i), "plan": "free"} for i in range(1, 21)])  # baseline
    stage(project)
    receiver.down = True
    commit(project, 1, [{"uuid": u(i), "plan": "free", "arm": "b"} for i in range(21, 41)])
    stage(project)
    assert receiver.kinds() == []
    # The event's alert waits in the alert queue, not in the event: it is queued once.
    assert rows(project, "SELECT count(*) FROM meta.alert_outbox") == [(1,)]
    # Tried when the window's commit ended (clock: now) and by the stage run (its clock is
    # far later, past the backoff), once each; neither got through.
    failed = rows(project, "SELECT count(*) FROM meta.alerts WHERE status = 'failed'")
    assert failed == [(2,)]
    receiver.down = False
    stage(project)  # the same clock: the target is backed off, not tried
    assert receiver.kinds() == []
    stage(project, now=LATER + timedelta(hours=1))
    assert receiver.kinds() == [("new_field", "m", "arm")]
    stage(project, now=LATER + timedelta(hours=2))
    assert receiver.kinds() == [("new_field", "m", "arm")]


def test_a_model_value_some_records_are_claimed_for_is_not_a_new_model(tmp_path: Path) -> None:
    project = write_project(tmp_path, {
        "buys": model(selector="event_type = 'purchase' AND CAST(amount AS DOUBLE) > 0"),
    })  # fmt: skip
    commit(project, 0, [{"uuid": u(1), "event_type": "seed"}])  # the stream's baseline load
    events = [{"uuid": u(i), "event_type": "purchase", "amount": i % 2} for i in range(2, 400)]
    events += [{"uuid": u(i), "event_type": "refund"} for i in range(400, 800)]
    commit(project, 1, events)
    found = rows(project, "SELECT kind, model FROM meta.schema_events WHERE status = 'open'")
    assert found == [("new_model", "refund")]


@pytest.mark.e2e
def test_a_window_the_engine_cannot_type_lands_untyped_and_the_error_is_reported(
    emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    """A staging table with a constraint the data breaks (made by hand): raw still lands."""
    sources = {"amplitude": amplitude_source(emulator.base_url)}
    project = build_project(tmp_path / "p", sources=sources)
    columns = ", ".join(f"{json.dumps(name)} {spec.type}" for name, spec in
                        project.staging["events"].columns.items())  # fmt: skip
    execute(project, "CREATE SCHEMA staging",
            f"CREATE TABLE staging.events (load_id BIGINT NOT NULL, {columns}, "
            "CHECK (user_id IS NOT NULL))")  # fmt: skip
    with Pipeline(project, now=available_at(2)) as pipeline, pytest.raises(Exception) as error:
        pipeline.run()
    assert "check constraint" in str(error.value).lower() or "Constraint" in str(error.value)
    path = project
    loads = table_rows(path, "SELECT count(*), sum(rows) FROM meta.loads")[0]
    assert (
        loads[0] == 2
        and loads[1] == table_rows(path, "SELECT count(*) FROM raw.amplitude_events")[0][0]
    )
    assert table_rows(path, "SELECT count(*) FROM meta.transfers") == [(0,)]
    next_hour = "SELECT CAST(cursor AS JSON)->>'next_hour' FROM meta.cursors"
    assert table_rows(path, next_hour) == [(f"{available_at(0):%Y%m%dT%H}",)]


def test_a_changed_mapping_is_refused_until_the_table_is_retyped(tmp_path: Path) -> None:
    """Hashing a column that was kept must not leave its cleartext in the older rows."""
    kept = {"m": model(columns={"email": {"type": "VARCHAR", "pii": "keep"}})}
    project = write_project(tmp_path, kept)
    commit(project, 0, [{"uuid": u(1), "email": "ann@example.com"}])
    hashed = {"m": model(columns={"email": {"type": "VARCHAR", "pii": "hash"}})}
    project = write_project(tmp_path, hashed, pii_salt="s")
    with pytest.raises(
        Exception, match=r"the mapping of staging\.m changed .*\(DROP TABLE staging\.m\)"
    ):
        stage(project)
    assert rows(project, "SELECT email FROM staging.m") == [("ann@example.com",)]
    drop_tables(project, "m")
    stage(project)
    (email,) = rows(project, "SELECT email FROM staging.m")[0]
    assert len(email) == 64 and "ann" not in email
