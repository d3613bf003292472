"""PII handling per column: keep (stored, never in statistics), hash (salted sha256), drop."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from anchorflow.errors import ConfigError
from tests.stage.helpers import SALT, commit, every_row, rows, u, write_project

pytestmark = pytest.mark.usefixtures("engine")


def users_model(**extra: Any) -> dict[str, Any]:
    return {
        "source": "amplitude",
        "unique_key": "event_uuid",
        "sample_percent": 100,
        "columns": {
            "event_uuid": {"path": "uuid", "type": "UUID"},
            "user_id": {"type": "VARCHAR", "pii": "keep"},
            "email": {"path": "user_properties.email", "type": "VARCHAR", "pii": "hash"},
            "ip_address": {"type": "VARCHAR", "pii": "drop"},
            "city": "VARCHAR",
        },
        **extra,
    }


EVENTS = [
    {"uuid": u(1), "user_id": "alice", "ip_address": "10.0.0.1", "city": "Berlin",
     "user_properties": {"email": "alice@example.com"}},
    {"uuid": u(2), "user_id": "bob", "ip_address": "10.0.0.2", "city": "Berlin",
     "user_properties": {"email": "bob@example.com"}},
    {"uuid": u(3), "user_id": 42, "ip_address": "10.0.0.3", "user_properties": {}},
]  # fmt: skip


def sha(value: str) -> str:
    return hashlib.sha256((SALT + value).encode()).hexdigest()


@pytest.mark.integration
def test_keep_hash_and_drop(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"users": users_model()}, pii_salt=SALT)
    commit(project, 0, EVENTS)

    columns = rows(
        project,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'staging' "
        "AND table_name = 'users' ORDER BY ordinal_position",
    )
    assert [c[0] for c in columns] == ["load_id", "event_uuid", "user_id", "email", "city"]
    staged = rows(project, "SELECT user_id, email, city FROM staging.users ORDER BY event_uuid")
    assert staged == [
        ("alice", sha("alice@example.com"), "Berlin"),
        ("bob", sha("bob@example.com"), "Berlin"),
        ("42", None, None),  # no value to hash: NULL, not the hash of the salt alone
    ]
    assert len(staged[0][1]) == 64 and staged[0][1] != hashlib.sha256(b"alice@example.com")

    found = rows(project, "SELECT field, column_name, non_null, examples FROM meta.field_stats")
    stats = {r[0]: r[1:] for r in found}
    # kept and hashed columns are counted, but no value of theirs is ever shown
    assert stats["user_id"] == ("user_id", 3, None)
    assert stats["user_properties.email"] == ("email", 2, None)
    assert stats["city"] == ("city", 2, ["Berlin"])
    # the dropped field is known to the mapping: counted as present, not a new field
    assert stats["ip_address"] == (None, 3, None)
    assert rows(project, "SELECT kind, field FROM meta.schema_events") == []
    everything = every_row(project, "meta.field_stats")
    assert "Berlin" in str(everything)  # the check below can see values
    assert "alice" not in str(everything) and "10.0.0.1" not in str(everything)


@pytest.mark.integration
def test_the_same_value_hashes_the_same_across_loads(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"users": users_model()}, pii_salt=SALT)
    commit(project, 0, EVENTS[:1])
    commit(project, 1, [{**EVENTS[0], "uuid": u(9)}])
    hashes = rows(project, "SELECT DISTINCT email FROM staging.users")
    assert hashes == [(sha("alice@example.com"),)]


@pytest.mark.integration
def test_a_pii_value_that_does_not_fit_is_not_copied_into_the_error_log(tmp_path: Path) -> None:
    model = users_model(on_bad_value="quarantine")
    model["columns"]["user_id"] = {"type": "BIGINT", "pii": "keep"}
    project = write_project(tmp_path, {"users": model}, pii_salt=SALT)
    commit(project, 0, EVENTS)
    assert rows(project, "SELECT column_name, line_no, value FROM meta.type_errors ORDER BY 2") == [
        ("user_id", 1, None),
        ("user_id", 2, None),
    ]
    reasons = rows(project, "SELECT reason FROM meta.quarantine ORDER BY line_no")
    assert reasons == [("user_id is not a BIGINT",), ("user_id is not a BIGINT",)]


@pytest.mark.unit
def test_hashing_without_a_salt_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        write_project(tmp_path, {"users": users_model()})
    assert raised.value.problems == [
        "anchorflow.yml: staging.users.columns.email: pii: hash needs pii_salt: "
        "${ANCHORFLOW_PII_SALT} at the top of the project file"
    ]


@pytest.mark.unit
def test_a_hashed_column_must_be_text(tmp_path: Path) -> None:
    model = users_model()
    model["columns"]["email"]["type"] = "BIGINT"
    with pytest.raises(ConfigError) as raised:
        write_project(tmp_path, {"users": model}, pii_salt=SALT)
    (problem,) = raised.value.problems
    assert problem.startswith("anchorflow.yml: staging.users.columns.email: pii: hash")
    assert "VARCHAR" in problem


@pytest.mark.unit
def test_a_dropped_column_cannot_be_the_unique_key(tmp_path: Path) -> None:
    model = users_model(unique_key="ip_address")
    with pytest.raises(ConfigError) as raised:
        write_project(tmp_path, {"users": model}, pii_salt=SALT)
    assert raised.value.problems == [
        "anchorflow.yml: staging.users: unique_key 'ip_address' is dropped (pii: drop)"
    ]
