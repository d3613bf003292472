"""Records an attacker or a careless upstream sends: each is landed or quarantined with a reason
that says what is wrong, never a crash that blocks the source, never a silent value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.run import Pipeline
from tests.stage.helpers import LATER, SALT, commit, rows, u, write_project

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

EVENTS = {
    "source": "amplitude",
    "unique_key": "event_uuid",
    "columns": {"event_uuid": {"path": "uuid", "type": "UUID"}, "n": "INTEGER"},
}


def test_a_line_nested_a_thousand_deep_is_quarantined_and_the_window_loads(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, {"events": EVENTS})
    deep = "[" * 1000 + "]" * 1000
    broken = "[" * 5000
    result = commit(project, 0, [{"uuid": u(1), "n": 1}, deep, broken, {"uuid": u(2), "n": 2}])
    assert (result.rows, result.quarantined) == (2, 2)
    assert rows(project, "SELECT line_no, reason FROM meta.quarantine ORDER BY 1") == [
        (2, "a JSON array, not an object"),
        (3, "not valid JSON (nested too deep to say where)"),
    ]
    assert rows(project, "SELECT count(*) FROM staging.events") == [(2,)]


def test_a_lone_surrogate_is_refused_with_a_reason_that_says_so(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"events": EVENTS})
    commit(project, 0, ['{"uuid": "' + u(1) + '", "name": "\\ud800"}', {"uuid": u(2)}])
    assert rows(project, "SELECT line_no, reason FROM meta.quarantine") == [
        (1, "not valid JSON: a lone surrogate escape (such as \\ud800) is not text")
    ]


@pytest.mark.parametrize("policy", ["null", "quarantine"])
def test_nan_infinity_and_overflow_are_bad_values_not_numbers(tmp_path: Path, policy: str) -> None:
    money = {
        "source": "amplitude", "unique_key": "event_uuid", "on_bad_value": policy,
        "columns": {"event_uuid": {"path": "uuid", "type": "UUID"},
                    "amount": {"type": "DOUBLE", "nullable": False}, "ratio": "REAL"},
    }  # fmt: skip
    project = write_project(tmp_path, {"money": money})
    commit(project, 0, [
        {"uuid": u(1), "amount": 1.5, "ratio": 0.5},
        '{"uuid": "' + u(2) + '", "amount": NaN, "ratio": 1}',
        '{"uuid": "' + u(3) + '", "amount": 1e400, "ratio": 1}',
        '{"uuid": "' + u(4) + '", "amount": -Infinity, "ratio": 1}',
        {"uuid": u(5), "amount": 2.0, "ratio": 1e300},  # fits a DOUBLE, not a REAL
    ])  # fmt: skip
    errors = rows(project, "SELECT column_name, line_no, value FROM meta.type_errors ORDER BY 2")
    assert errors == [
        ("amount", 2, "NaN"), ("amount", 3, "1e400"), ("amount", 4, "-Infinity"),
        ("ratio", 5, "1e+300"),
    ]  # fmt: skip
    staged = rows(project, "SELECT amount, ratio FROM staging.money ORDER BY event_uuid")
    if policy == "null":  # staged as NULL, the error recorded
        assert staged == [(1.5, 0.5), (None, 1.0), (None, 1.0), (None, 1.0), (2.0, None)]
    else:  # set aside with the reason
        assert staged == [(1.5, 0.5)]
        assert rows(project, "SELECT count(*) FROM meta.quarantine") == [(4,)]
    assert all(v is None or v == v for row in staged for v in row)  # no NaN reached staging


def test_forget_erases_a_person_whose_records_hold_a_key_that_does_not_cast(
    tmp_path: Path,
) -> None:
    anchor = {"entities": {"User": {"key": "user_id", "sources": ["events"],
              "changed_at": "t", "attributes": {"n": {"model": "events"}}}}}  # fmt: skip
    events = {**EVENTS, "columns": {**EVENTS["columns"], "user_id": "VARCHAR", "t": "TIMESTAMP"}}
    project = write_project(tmp_path, {"events": events}, anchor=anchor, pii_salt=SALT)
    commit(project, 0, [
        {"uuid": u(1), "user_id": "ann", "n": 1, "t": "2024-03-01 00:00:00"},
        {"uuid": "not-a-uuid", "user_id": "ann", "n": 2, "t": "2024-03-01 00:01:00"},
        {"uuid": u(3), "user_id": "bob", "n": 3, "t": "2024-03-01 00:02:00"},
    ])  # fmt: skip
    with Pipeline(project, now=LATER, clock=lambda: LATER) as pipeline:
        pipeline.anchor()
        counts: Any = pipeline.forget("User", ["ann"])
    assert counts["raw.amplitude_events"] == 2
    found = rows(project, "SELECT count(*) FROM raw.amplitude_events WHERE record LIKE '%ann%'")
    assert found == [(0,)]
    assert rows(project, "SELECT count(*) FROM meta.quarantine") == [(0,)]  # hers went too
    assert rows(project, "SELECT status FROM meta.runs ORDER BY run_id DESC LIMIT 1") == [("ok",)]
