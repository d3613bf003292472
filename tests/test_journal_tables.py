"""The journal's tables on each engine: lists (load ids, JSON types, examples, an event's fields)
stored and read back as lists, found by their elements, deleted and scrubbed by them; and a
forgotten key taken out of every journal text."""

from __future__ import annotations

from datetime import datetime

import pytest

from anchorflow.journal.erasures import scrub_journal
from anchorflow.journal.field_stats import (
    delete_field_stats,
    latest_stats,
    record_field_stats,
    seen_types,
)
from anchorflow.journal.quarantine import quarantine_select
from anchorflow.journal.runs import finish_run, start_run
from anchorflow.journal.schema_events import (
    acknowledge,
    open_event_counts,
    record_schema_event,
    schema_events,
)
from anchorflow.warehouse import Warehouse

pytestmark = pytest.mark.integration

AT = datetime(2024, 3, 1)


def stats_of(warehouse: Warehouse, batch_id: int, load_ids: list[int], types: list[str],
             examples: list[str]) -> None:  # fmt: skip
    """One field's statistics of a batch, written as the stage step writes them (a SELECT)."""
    record_field_stats(
        warehouse,
        "SELECT ?, 'events', 'user_id', 'user_id', CAST(? AS BIGINT[]), 100.0, 3, "
        "CAST(? AS VARCHAR[]), 3, 0, ?, ?, 3, 3, 2, CAST(? AS VARCHAR[]), ?",
        [batch_id, load_ids, types, min(examples), max(examples), examples, AT],
    )


def test_lists_in_the_journal_are_stored_found_and_scrubbed_as_lists(warehouse: Warehouse) -> None:
    stats_of(warehouse, 1, [1, 2], ["VARCHAR"], ["ann", "bob"])
    stats_of(warehouse, 2, [3], ["VARCHAR", "BIGINT"], ["bob", "cy"])
    batch, loads, (field,) = latest_stats(warehouse, "events")
    assert (batch, loads, field.json_types, field.examples) == (
        2, [3], ["VARCHAR", "BIGINT"], ["bob", "cy"],
    )  # fmt: skip
    assert {f: sorted(t) for f, t in seen_types(warehouse, "events", 2).items()} == {
        "user_id": ["VARCHAR"]
    }
    assert delete_field_stats(warehouse, [2]) == 1  # the batch that read load 2
    assert latest_stats(warehouse, "events")[0] == 2

    assert record_schema_event(warehouse, "new_field", "events", "events",
                               {"a": {"n": 1}, "b": {"n": 2}}, 3, False) == ["a", "b"]  # fmt: skip
    assert record_schema_event(warehouse, "new_field", "events", "events",
                               {"b": {"n": 2}, "c": {"n": 3}}, 4, False) == ["c"]  # fmt: skip
    assert open_event_counts(warehouse) == (2, 3)
    first, second = schema_events(warehouse)
    assert (first.fields, second.fields) == (["a", "b"], ["c"])
    assert first.detail == {"a": {"n": 1}, "b": {"n": 2}}
    assert acknowledge(warehouse, [first.event_id]) == 1
    assert open_event_counts(warehouse) == (1, 1)


def test_a_forgotten_key_leaves_every_journal_text(warehouse: Warehouse) -> None:
    stats_of(warehouse, 1, [1], ["VARCHAR"], ["ann", "bob"])
    quarantine_select(
        warehouse,
        "SELECT 1, 'amplitude', 'events', 'land', 'w0', line_no, reason, record, NULL FROM "
        "(VALUES (1, 'not valid JSON', 'ann,42'), (2, 'not valid JSON', 'bob,43'), "
        "(3, 'user ann has no id', '{\"user_id\": \"ann\"}')) AS q (line_no, reason, record)",
    )
    record_schema_event(warehouse, "new_field", "events", "events", {"x": {"example": "ann"}},
                        1, False)  # fmt: skip
    run_id = start_run(warehouse, "run")
    finish_run(warehouse, run_id, "failed", "could not type ann's event")

    changed = scrub_journal(warehouse, ["ann"], ["ann"])
    assert changed == {"meta.quarantine": 2, "meta.schema_events": 1, "meta.runs": 1,
                       "meta.field_stats": 1}  # fmt: skip
    assert warehouse.query("SELECT line_no, reason FROM meta.quarantine ORDER BY 1") == [
        (2, "not valid JSON"), (3, "user [erased] has no id"),
    ]  # fmt: skip
    assert warehouse.query("SELECT detail FROM meta.runs") == [("could not type [erased]'s event",)]
    assert schema_events(warehouse)[0].detail == {"x": {"example": "[erased]"}}
    _, _, (field,) = latest_stats(warehouse, "events")
    assert (field.examples, field.min_value, field.max_value) == (["bob"], None, "bob")
