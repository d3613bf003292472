"""Values that do not fit their column, under each `on_bad_value` policy, and `nullable`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from anchorflow.stage import BadValues, pending_loads
from anchorflow.warehouse import connect
from tests.stage.helpers import commit, rows, stage, u, write_project

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("engine")]


def model(policy: str) -> dict[str, Any]:
    return {
        "source": "amplitude",
        "unique_key": "event_uuid",
        "on_bad_value": policy,
        "columns": {
            "event_uuid": {"path": "uuid", "type": "UUID"},
            "amount": {"path": "event_properties.amount", "type": "DOUBLE"},
            "plan": {"path": "user_properties.plan", "type": "VARCHAR", "nullable": False},
            "seats": {"type": "INTEGER"},
            "note": "VARCHAR",
        },
    }


EVENTS = [
    {"uuid": u(1), "event_properties": {"amount": 1.5}, "user_properties": {"plan": "pro"},
     "seats": 3, "note": "fine"},
    {"uuid": u(2), "event_properties": {"amount": "lots"}, "user_properties": {"plan": "pro"},
     "seats": 2},
    {"uuid": u(3), "event_properties": {"amount": 3}, "seats": "many"},
    {"uuid": u(4), "event_properties": {"amount": 4}, "user_properties": {"plan": None},
     "seats": 4.5},
    {"uuid": u(5), "event_properties": {}, "user_properties": {"plan": "free"}},
]  # fmt: skip

# (column, line, value, expected) of every value above that does not fit
ERRORS = [
    ("amount", 2, "lots", "DOUBLE"),
    ("plan", 3, None, "NOT NULL"),
    ("seats", 3, "many", "INT"),
    ("plan", 4, None, "NOT NULL"),
    ("seats", 4, "4.5", "INT"),
]


def staged(project: Any, name: str = "m") -> list[tuple[Any, ...]]:
    found = rows(project, f"SELECT event_uuid, amount, plan, seats, note FROM staging.{name} "
                          "ORDER BY event_uuid")  # fmt: skip
    return [(r[0].int, *r[1:]) for r in found]


def errors(project: Any) -> list[tuple[Any, ...]]:
    return rows(
        project,
        "SELECT column_name, line_no, value, expected FROM meta.type_errors "
        "WHERE model = 'm' ORDER BY line_no, column_name",
    )


def test_null_stages_the_value_as_null_and_records_it(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"m": model("null")})
    result = commit(project, 0, EVENTS)
    assert staged(project) == [
        (1, 1.5, "pro", 3, "fine"),
        (2, None, "pro", 2, None),
        (3, 3.0, None, None, None),
        (4, 4.0, None, None, None),
        (5, None, "free", None, None),  # absent values are NULL, not errors
    ]
    assert errors(project) == ERRORS
    assert rows(project, "SELECT DISTINCT load_id, origin FROM meta.type_errors") == [
        (1, "w0#0.json")
    ]
    per_column = rows(
        project,
        "SELECT column_name, count(*) FROM meta.type_errors WHERE model = 'm' "
        "GROUP BY column_name ORDER BY column_name",
    )
    assert per_column == [("amount", 1), ("plan", 2), ("seats", 2)]
    assert (result.staged, result.type_errors, result.quarantined) == (5, 5, 0)
    assert rows(project, "SELECT staged, quarantined, type_errors FROM meta.transfers") == [
        (5, 0, 5)
    ]
    assert rows(project, "SELECT count(*) FROM meta.quarantine") == [(0,)]


def test_quarantine_keeps_the_row_out_with_a_reason_naming_the_column(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"m": model("quarantine")})
    result = commit(project, 0, EVENTS)
    assert staged(project) == [(1, 1.5, "pro", 3, "fine"), (5, None, "free", None, None)]
    quarantined = rows(
        project,
        "SELECT model, stage, load_id, line_no, reason, CAST(record AS JSON)->>'uuid' "
        "FROM meta.quarantine ORDER BY line_no",
    )
    assert quarantined == [
        ("m", "stage", 1, 2, "amount is not a DOUBLE (lots)", u(2)),
        ("m", "stage", 1, 3, "plan is missing; seats is not a INT (many)", u(3)),
        ("m", "stage", 1, 4, "plan is missing; seats is not a INT (4.5)", u(4)),
    ]
    assert errors(project) == ERRORS  # the values are recorded as well
    assert (result.staged, result.quarantined) == (2, 3)
    assert rows(project, "SELECT staged, quarantined, type_errors FROM meta.transfers") == [
        (2, 3, 5)
    ]


def test_fail_stages_nothing_keeps_raw_and_names_the_first_bad_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from anchorflow.cli import guarded

    later = {**model("null"), "thresholds": {"min_rows": 1000}}
    project = write_project(tmp_path, {"m": model("fail"), "ok": model("null"), "later": later})
    result = commit(project, 0, EVENTS)
    # The window is committed: raw holds every record, the tolerant model is typed, the
    # failing one is left untyped (pending in its transfer log).
    assert result.rows == 5
    assert rows(project, "SELECT count(*) FROM raw.amplitude_events") == [(5,)]
    assert len(staged(project, "ok")) == 5
    assert rows(project, "SELECT count(*) FROM staging.m") == [(0,)]
    assert rows(project, "SELECT model, load_id FROM meta.transfers") == [("ok", 1)]

    with pytest.raises(BadValues) as raised:
        stage(project, force=True)
    message = str(raised.value)
    # the failing model does not keep the others from being typed
    assert len(staged(project, "later")) == 5
    assert "\n" not in message
    assert message.startswith("staging.m: 5 value(s) do not fit their column; first: amount is "
                              "not a DOUBLE ('lots') in load 1, w0#0.json line 2.")  # fmt: skip
    assert rows(project, "SELECT count(*) FROM staging.m") == [(0,)]
    assert rows(project, "SELECT count(*) FROM meta.type_errors WHERE model = 'm'") == [(0,)]
    assert rows(project, "SELECT count(*) FROM meta.transfers WHERE model = 'm'") == [(0,)]
    assert rows(project, "SELECT command, status, detail FROM meta.runs ORDER BY run_id") == [
        ("stage", "failed", message)
    ]
    wh = connect(project)
    try:
        assert [p.load_id for p in pending_loads(wh, project, "m")] == [1]
    finally:
        wh.close()

    # What the command line shows: exactly one line.
    with pytest.raises(typer.Exit):
        guarded(lambda: stage(project, "m", force=True))
    shown = capsys.readouterr().err.strip().splitlines()
    assert len(shown) == 1
    assert shown[0].startswith("error: staging.m: 5 value(s)")
    assert all(word in shown[0] for word in ("amount", "load 1", "line 2"))

    # Fixed by the mapping: the same load is typed with `null` now.
    fixed = write_project(tmp_path, {"m": model("null"), "ok": model("null"), "later": later})
    (run, *_) = stage(fixed, "m")
    assert (run.loads, run.rows, run.type_errors) == (1, 5, 5)
    assert staged(fixed, "m") == staged(fixed, "ok")
    assert errors(fixed) == ERRORS
    assert rows(fixed, "SELECT model, load_id FROM meta.transfers ORDER BY model") == [
        ("later", 1), ("m", 1), ("ok", 1)
    ]  # fmt: skip


def test_a_missing_value_in_a_non_nullable_column_is_a_bad_value(tmp_path: Path) -> None:
    strict = model("fail")
    strict["columns"] = {**strict["columns"], "seats": {"type": "INTEGER", "nullable": False}}
    project = write_project(tmp_path, {"m": strict})
    good = {"uuid": u(1), "user_properties": {"plan": "pro"}, "seats": 1}
    commit(project, 0, [good, {"uuid": u(2), "user_properties": {"plan": "pro"}}])
    with pytest.raises(BadValues, match=r"first: seats is missing in load 1, w0#0.json line 2"):
        stage(project, force=True)
    # Several bad values on the first bad line: the first column of the mapping is named.
    commit(project, 0, [good, {"uuid": u(2), "seats": "many", "event_properties": {"amount": "x"}}])
    with pytest.raises(BadValues, match=r"first: amount is not a DOUBLE \('x'\) in load 2,"):
        stage(project, force=True)
    commit(project, 0, [good])  # the hour reloaded without the bad record
    stage(project, force=True)
    assert [r[0] for r in staged(project)] == [1]
