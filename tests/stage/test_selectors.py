"""Several models on one stream: selectors split the records, explode makes child rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from anchorflow.errors import ConfigError
from tests.stage.helpers import commit, rows, u, write_project

pytestmark = pytest.mark.usefixtures("engine")

KEY = {"event_uuid": {"path": "uuid", "type": "UUID"}}


def selective(selector: str, **columns: Any) -> dict[str, Any]:
    return {"source": "amplitude", "selector": selector, "unique_key": "event_uuid",
            "columns": {**KEY, **columns}}  # fmt: skip


EVENTS = [
    {"uuid": u(1), "event_type": "purchase", "event_properties": {"amount": 12}},
    {"uuid": u(2), "event_type": "purchase", "event_properties": {"amount": "9.5"}},
    {"uuid": u(3), "event_type": "page_view", "event_properties": {"amount": 50}},
    {"uuid": u(4), "event_type": "screen_view"},
    {"uuid": u(5), "event_type": "login", "event_properties": {"amount": "11.25"}},
    {"uuid": u(6), "event_type": "purchase", "event_properties": {"amount": "n/a"}},
    {"uuid": u(7), "event_type": "PURCHASE", "event_properties": {}},
    {"uuid": u(8), "event_properties": {"amount": 10}},
]


@pytest.mark.integration
def test_each_selective_model_gets_exactly_its_records(tmp_path: Path) -> None:
    project = write_project(tmp_path, {
        "purchases": selective("event_type = 'purchase'", event_type="VARCHAR"),
        "views": selective("event_type IN ('page_view', 'screen_view')", event_type="VARCHAR"),
        "big": selective("CAST(event_properties.amount AS DOUBLE) > 10",
                         amount={"path": "event_properties.amount", "type": "DOUBLE"}),
        # Without a cast, a field compared with a number is read as a number too.
        "big_plain": selective("event_properties.amount > 10"),
        "everything": {"source": "amplitude", "unique_key": "event_uuid", "columns": KEY},
    })  # fmt: skip
    result = commit(project, 0, EVENTS)

    def keys(model: str) -> list[int]:
        found = rows(project, f"SELECT event_uuid FROM staging.{model} ORDER BY event_uuid")
        return [r[0].int for r in found]

    assert keys("purchases") == [1, 2, 6]  # 'PURCHASE' is another value
    assert keys("views") == [3, 4]
    # 9.5 and 10 are not > 10, 'n/a' is no number, a missing amount is no match
    assert keys("big") == [1, 3, 5]
    assert keys("big_plain") == [1, 3, 5]
    assert keys("everything") == list(range(1, 9))
    assert rows(project, "SELECT amount FROM staging.big ORDER BY event_uuid") == [
        (12.0,), (50.0,), (11.25,)
    ]  # fmt: skip
    assert result.staged == 3 + 2 + 3 + 3 + 8
    per_model = rows(project, "SELECT model, load_id, staged FROM meta.transfers ORDER BY model")
    assert per_model == [("big", 1, 3), ("big_plain", 1, 3), ("everything", 1, 8),
                         ("purchases", 1, 3), ("views", 1, 2)]  # fmt: skip


@pytest.mark.unit
@pytest.mark.parametrize(
    ("selector", "what"),
    [
        ("user_id IN (SELECT user_id FROM staging.events)", "subquery"),
        ("(SELECT count(*) FROM read_csv('/etc/passwd')) > 0", "subquery"),
        ("read_csv('/etc/passwd') IS NOT NULL", "read_csv"),
        ("getvariable('anchorflow_pii_salt') = 'x'", "getvariable"),
        ("event_type = 'a'; DROP TABLE staging.events", "block"),
        ("EXISTS (SELECT 1)", "exists"),
    ],
)
def test_a_selector_that_could_read_anything_is_refused_at_load(
    tmp_path: Path, selector: str, what: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        write_project(tmp_path, {"m": selective(selector)})
    (problem,) = raised.value.problems
    assert "\n" not in problem
    assert problem.startswith("anchorflow.yml: staging.m.selector: selector: ")
    assert "not allowed" in problem
    assert what.lower() in problem.lower()
    assert not (tmp_path / "warehouse.duckdb").exists()


@pytest.mark.unit
def test_a_selector_that_is_not_sql_is_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        write_project(tmp_path, {"m": selective("event_type = = 'x'")})
    (problem,) = raised.value.problems
    assert problem.startswith("anchorflow.yml: staging.m.selector: selector is not a valid SQL")
    assert "\n" not in problem


ITEMS_MODEL = {
    "source": "amplitude",
    "selector": "event_type = 'purchase'",
    "explode": {"path": "event_properties.items", "position": "item_index"},
    "unique_key": ["event_uuid", "item_index"],
    "columns": {
        **KEY,
        "item": {"path": "[]", "type": "JSON"},
        "sku": {"path": "[].sku", "type": "VARCHAR"},
        "qty": {"path": "[].qty", "type": "INTEGER"},
    },
}


def purchase(n: int, *items: Any) -> dict[str, Any]:
    return {"uuid": u(n), "event_type": "purchase", "event_properties": {"items": list(items)}}


@pytest.mark.integration
def test_explode_makes_one_row_per_element_numbered_from_zero(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"items": ITEMS_MODEL})
    commit(project, 0, [
        purchase(1, {"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}, {"sku": "c"}),
        purchase(2, "loose"),
        purchase(3),  # an empty array: no rows
        {"uuid": u(4), "event_type": "purchase", "event_properties": {"items": {"sku": "x"}}},
        {"uuid": u(5), "event_type": "login", "event_properties": {"items": [{"sku": "z"}]}},
    ])  # fmt: skip
    staged = rows(
        project,
        "SELECT event_uuid, item_index, item, sku, qty FROM staging.items ORDER BY 1, 2",
    )
    assert [(r[0].int, r[1], json.loads(r[2]), r[3], r[4]) for r in staged] == [
        (1, 0, {"sku": "a", "qty": 1}, "a", 1),
        (1, 1, {"sku": "b", "qty": 2}, "b", 2),
        (1, 2, {"sku": "c"}, "c", None),
        (2, 0, "loose", None, None),
    ]
    columns = rows(
        project,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'staging' AND table_name = 'items' ORDER BY ordinal_position",
    )
    # PostgreSQL reports its types in lower case, and stores VARCHAR as text.
    columns = [(name, sql_type.upper().replace("TEXT", "VARCHAR")) for name, sql_type in columns]
    assert columns == [("load_id", "BIGINT"), ("item_index", "INTEGER"), ("event_uuid", "UUID"),
                       ("item", "JSON"), ("sku", "VARCHAR"), ("qty", "INTEGER")]  # fmt: skip


@pytest.mark.integration
def test_composite_key_dedupes_child_rows_across_loads_and_replacements(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"items": ITEMS_MODEL})
    first = purchase(1, {"sku": "a"}, {"sku": "b"})
    commit(project, 0, [first])
    # The same event again in a later hour (a re-export), with one more event.
    commit(project, 1, [first, purchase(2, {"sku": "z"})])
    query = "SELECT load_id, event_uuid, item_index, sku FROM staging.items ORDER BY 1, 2, 3, 4"
    assert [(r[0], r[1].int, r[2], r[3]) for r in rows(project, query)] == [
        (1, 1, 0, "a"), (1, 1, 1, "b"), (2, 2, 0, "z"),
    ]  # fmt: skip
    # Hour 0 is reloaded without the event: its rows come back from their copy in load 2.
    commit(project, 0, [])
    assert [(r[0], r[1].int, r[2], r[3]) for r in rows(project, query)] == [
        (2, 1, 0, "a"), (2, 1, 1, "b"), (2, 2, 0, "z"),
    ]  # fmt: skip
    # Reloading hour 0 with the event again changes nothing: the copy in load 2 stays.
    commit(project, 0, [first])
    assert [(r[0], r[1].int, r[2], r[3]) for r in rows(project, query)] == [
        (2, 1, 0, "a"), (2, 1, 1, "b"), (2, 2, 0, "z"),
    ]  # fmt: skip
    dupes = rows(
        project,
        "SELECT count(*) FROM (SELECT event_uuid, item_index FROM staging.items "
        "GROUP BY event_uuid, item_index HAVING count(*) > 1) AS d",
    )
    assert dupes == [(0,)]


ESCAPED_GIFT = '{"uuid": "UUID", "event_type": "view", "event_properties": {"kind": "gif\\u0074"}}'


def test_the_text_prefilter_never_drops_a_record_the_selector_takes(tmp_path: Path) -> None:
    """Records are skipped before parsing when the selector's string cannot be in their text;
    a record spelling the value with a JSON escape, or nested, must still be selected."""
    project = write_project(
        tmp_path,
        {
            "buys": selective("event_type = 'purchase' OR event_type = 'refund'"),
            "inner": selective("event_properties.kind IN ('gift', 'promo')"),
        },
    )
    escaped = '{"uuid": "UUID", "event_type": "purchas\\u0065"}'.replace("UUID", u(1))
    commit(
        project,
        0,
        [
            escaped,
            {"uuid": u(2), "event_type": "refund"},
            {"uuid": u(3), "event_type": "view", "note": "purchase"},  # the text, not the field
            {"uuid": u(4), "event_type": "view", "event_properties": {"kind": "gift"}},
            ESCAPED_GIFT.replace("UUID", u(5)),
            {"uuid": u(6), "event_type": "view", "event_properties": {"kind": 5}},
        ],
    )
    buys = rows(project, "SELECT event_uuid::VARCHAR FROM staging.buys ORDER BY 1")
    assert buys == [(u(1),), (u(2),)]
    inner = rows(project, 'SELECT event_uuid::VARCHAR FROM staging."inner" ORDER BY 1')
    assert inner == [(u(4),), (u(5),)]
