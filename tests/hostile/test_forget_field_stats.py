"""`forget` leaves no value of the erased records in the field statistics: not the person's
key, not their events' unique keys, in exploded models (a row per array element, where one
event with many elements is the most frequent value) as in the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.run import Pipeline
from tests.stage.helpers import LATER, SALT, commit, rows, stage, u, write_project

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

KEY = {"event_uuid": {"path": "uuid", "type": "UUID"}, "user_id": "VARCHAR"}
STAGING = {
    "events": {"source": "amplitude", "unique_key": "event_uuid", "sample_percent": 100,
               "columns": {**KEY, "event_type": "VARCHAR"}},
    "items": {"source": "amplitude", "unique_key": ["event_uuid", "item_index"],
              "sample_percent": 100,
              "explode": {"path": "event_properties.items", "position": "item_index"},
              "columns": {**KEY, "sku": {"path": "[].sku"}}},
}  # fmt: skip
ANCHOR = {"entities": {"User": {"key": "user_id", "sources": ["events"]}}}
EVERYTHING = "SELECT string_agg(CAST(COLUMNS(*) AS VARCHAR), '|') FROM meta.field_stats"


def purchase(n: int, user: str, items: int) -> dict[str, Any]:
    skus = [{"sku": f"sku-{n}-{i}"} for i in range(items)]
    return {"uuid": u(n), "user_id": user, "event_type": "purchase",
            "event_properties": {"items": skus}}  # fmt: skip


def test_forget_leaves_no_erased_uuid_in_the_statistics_of_an_exploded_model(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, STAGING, anchor=ANCHOR, pii_salt=SALT)
    # The forgotten user's purchases hold the most items: their uuids are the top values.
    commit(project, 0, [purchase(1, "mallory", 9), purchase(2, "mallory", 8),
                        purchase(3, "alice", 2), purchase(4, "bob", 1)])  # fmt: skip
    commit(project, 1, [purchase(5, "mallory", 7), purchase(6, "carol", 3)])
    stage(project)
    erased = [u(1), u(2), u(5), "mallory"]
    before = str(rows(project, EVERYTHING))
    assert all(value in before for value in erased)  # the check below can see them

    with Pipeline(project, now=LATER) as pipeline:
        pipeline.forget("User", ["mallory"])

    after = str(rows(project, EVERYTHING))
    assert [value for value in erased if value in after] == []
    assert u(3) in after and u(6) in after  # other users' examples remain
    examples = rows(project, "SELECT field, examples FROM meta.field_stats "
                             "WHERE model = 'items' AND field IN ('uuid', 'user_id') "
                             "ORDER BY batch_id, field")  # fmt: skip
    assert examples == [("user_id", ["alice", "bob"]), ("uuid", [u(3)]),
                        ("user_id", ["carol"]), ("uuid", [u(6)])]  # fmt: skip
    assert rows(project, "SELECT count(*) FROM staging.items WHERE user_id = 'mallory'") == [(0,)]
