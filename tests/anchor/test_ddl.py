"""Changes to the anchor declaration: additive ones create a table, touch nothing else and load
its history from staging; anything else stops with ModelError naming the migration, recreating
nothing. Mistakes in the `anchor:` section are one line each that names the key path."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from anchorflow.anchor.ddl import ensure_tables
from anchorflow.config import Project, load_project
from anchorflow.errors import ConfigError, ModelError
from anchorflow.run import Pipeline
from anchorflow.warehouse import connect
from tests.anchor.harness import ANCHOR, ENV, Harness, project_file
from tests.anchor.pipeline_project import rows, snapshot

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# Three loads: a late observation in the third, a plan change, a user on two devices.
LOADS: list[list[dict[str, Any]]] = [
    [
        {"user_id": "u1", "device_id": "d1", "country": "DE", "plan": "free", "score": 10,
         "platform": "iOS", "t": at(0)},
        {"user_id": "u2", "device_id": "d2", "country": "FR", "plan": "free", "score": 20,
         "platform": "Web", "t": at(5)},
    ],
    [
        {"user_id": "u1", "device_id": "d1", "country": "AT", "plan": "pro", "score": 11,
         "platform": "iOS", "t": at(30)},
        {"user_id": "u3", "device_id": "d3", "country": "DE", "plan": "free", "score": 30,
         "platform": "Android", "t": at(31)},
    ],
    [
        {"user_id": "u1", "device_id": "d4", "country": "CH", "plan": "pro", "score": 9,
         "platform": "Web", "t": at(15)},
        {"user_id": "u2", "device_id": "d2", "country": "FR", "plan": "pro", "score": 21,
         "platform": "Web", "t": at(60)},
    ],
]  # fmt: skip


def without_attribute(name: str) -> dict[str, Any]:
    anchor = copy.deepcopy(ANCHOR)
    del anchor["entities"]["User"]["attributes"][name]
    return anchor


def harness(root: Path, anchor: dict[str, Any] | None = None, loads: int = 2) -> Project:
    """A warehouse with the first `loads` loads anchored under `anchor`; closed again."""
    root.mkdir(parents=True, exist_ok=True)
    h = Harness(root, anchor)
    try:
        for batch in LOADS[:loads]:
            h.deliver(batch)
        assert not h.anchor().problems
    finally:
        h.close()
    return h.project


def exists(path: Project, name: str) -> bool:
    found = rows(path, "SELECT count(*) FROM information_schema.tables "
                       "WHERE table_schema = 'anchor' AND table_name = ?", [name])  # fmt: skip
    return bool(found[0][0])


def anchor_step(root: Path, anchor: dict[str, Any]) -> Any:
    """The anchor step as `anchorflow anchor` runs it, under a changed declaration."""
    project = project_file(root, anchor)
    with Pipeline(project) as pipeline:
        return pipeline.anchor()


def test_a_new_attribute_gets_its_table_and_its_history_from_every_typed_load(
    tmp_path: Path, engine: str
) -> None:
    clean = harness(tmp_path / "clean")
    path = harness(tmp_path / "p", without_attribute("plan"))
    assert not exists(path, "User_plan")
    before = snapshot(path)

    # The declaration gains `plan`: preparing the model creates its table and nothing else.
    project = project_file(tmp_path / "p", ANCHOR)
    with Pipeline(project) as pipeline:
        pipeline.describe_model()  # prepares the model (DDL and views), loads nothing
        assert ensure_tables(pipeline.warehouse, pipeline.plan) == []  # already there
    created = snapshot(path)
    assert created.pop("anchor.User_plan") == []
    user_plan = [r for r in created.pop("meta.anchor_tables") if r[0] == "User_plan"]
    assert len(user_plan) == 1
    # The serving table is derived: it is rebuilt with a column for `plan` (empty until loaded).
    derived = ("anchor.User_current", "meta.anchor_tables")
    assert created.pop("anchor.User_current") != before["anchor.User_current"]
    assert created == {k: v for k, v in before.items() if k not in derived}
    unchanged = ("User_plan", "User_current")
    assert [r for r in before["meta.anchor_tables"] if r[0] not in unchanged] == [
        r for r in snapshot(path)["meta.anchor_tables"] if r[0] not in unchanged
    ]

    # The next anchor step loads the history of `plan` from both typed loads, and only that.
    with Pipeline(project) as pipeline:
        run = pipeline.anchor()
    loaded = {t.table: (t.loads, t.inserted) for t in run.targets if t.loads}
    assert loaded == {"User_plan": (2, 4)}  # u1: free, then pro; u2 and u3: free
    after = snapshot(path)
    wanted = snapshot(clean)
    assert after["anchor.User_plan"] == wanted["anchor.User_plan"] != []
    assert rows(path, "SELECT load_id FROM meta.anchor_transfers WHERE target = 'User_plan' "
                      "ORDER BY 1") == [(1,), (2,)]  # fmt: skip
    for name, table_rows in before.items():
        if name not in ("meta.anchor_transfers", *derived):
            assert after[name] == table_rows, f"{name} changed"
    # From here on it is the model that had `plan` from the start.
    assert after == wanted


def test_an_attribute_added_later_equals_one_declared_from_the_start_after_more_loads(
    tmp_path: Path, engine: str
) -> None:
    (tmp_path / "clean").mkdir()
    clean = Harness(tmp_path / "clean")
    clean.deliver(LOADS[0])
    clean.deliver(LOADS[1])
    clean.anchor()  # anchored in the same steps as below: new ids are numbered per step
    clean.deliver(LOADS[2])
    clean.anchor()
    clean.close()

    path = harness(tmp_path / "p", without_attribute("country"), loads=2)
    h = Harness(tmp_path / "p", ANCHOR)  # the declaration gains `country`
    h.next_load = 3
    try:
        h.deliver(LOADS[2])  # a late observation for u1, before its stored AT
        assert not h.anchor().problems
    finally:
        h.close()
    assert snapshot(path) == snapshot(clean.project)
    country = rows(path, 'SELECT e.user_id, a.value, a.changed_at FROM anchor."User_country" AS a '
                         'JOIN anchor."User" AS e USING (id) ORDER BY 1, 2, 3')  # fmt: skip
    assert country == [
        ("u1", "AT", at(30)), ("u1", "CH", at(15)), ("u1", "DE", at(0)),
        ("u2", "FR", at(5)), ("u3", "DE", at(31)),
    ]  # fmt: skip


def _statement(message: str) -> str:
    """The SQL the message tells the user to run."""
    match = re.search(r"run: ((?:ALTER|DROP) TABLE .+?)(?:, then .*)?$", message)
    assert match, message
    return match.group(1)


def _type_change(anchor: dict[str, Any]) -> None:
    anchor["entities"]["User"]["attributes"]["score"]["type"] = "DOUBLE"


def _renamed_key(anchor: dict[str, Any]) -> None:
    user = anchor["entities"]["User"]
    user["key"] = "uid"  # the column of anchor.User; staging still calls it user_id
    user["sources"] = {"obs": ["user_id"]}
    for attribute in user["attributes"].values():
        attribute["key"] = "user_id"


def _scd0_to_scd2(anchor: dict[str, Any]) -> None:
    anchor["entities"]["User"]["attributes"]["score"]["history"] = "scd2"


INCOMPATIBLE = [
    pytest.param(_type_change, 'ALTER TABLE "anchor"."User_score" ALTER COLUMN "value" TYPE DOUBLE',
                 "User_score", 3, id="value-type"),
    pytest.param(_renamed_key, 'ALTER TABLE "anchor"."User" RENAME COLUMN "user_id" TO "uid"',
                 "User", 3, id="renamed-key"),
    # rebuilt from staging as change points: u1's 10 then 11, u2 and u3 once
    pytest.param(_scd0_to_scd2, 'DROP TABLE "anchor"."User_score"', "User_score", 4,
                 id="scd0-to-scd2"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "statement", "changed", "migrated_rows"), INCOMPATIBLE)
def test_an_incompatible_change_stops_with_the_migration_and_recreates_nothing(
    tmp_path: Path, engine: str, change: Any, statement: str, changed: str, migrated_rows: int
) -> None:
    path = harness(tmp_path / "p")
    statement = connect(path, lazy=True).sql.transpile(statement)  # in the engine's words
    before = snapshot(path)
    anchor = copy.deepcopy(ANCHOR)
    change(anchor)
    # A new attribute declared before the broken one: its CREATE must be rolled back too.
    anchor["entities"]["User"]["attributes"] = {
        "first_plan": {"model": "obs", "value": "plan", "history": "scd0",
                       **({"key": "user_id"} if change is _renamed_key else {})},
        **anchor["entities"]["User"]["attributes"],
    }  # fmt: skip

    with pytest.raises(ModelError) as raised:
        anchor_step(tmp_path / "p", anchor)
    message = str(raised.value)
    assert "\n" not in message
    assert f"anchor.{changed}" in message
    assert _statement(message) == statement
    assert snapshot(path) == before  # nothing dropped, recreated, created or loaded
    assert not exists(path, "User_first_plan")
    assert rows(path, "SELECT command, status FROM meta.runs") == [("anchor", "failed")]

    # The statement it names is the migration: run it, and the same step goes through.
    if engine == "postgres" and change is not _renamed_key:
        # PostgreSQL will not retype or drop a table that a view reads: the perspectives go
        # first (the step makes them again).
        with connect(path) as wh:
            for view in ("User_latest", "User_history"):
                wh.execute(f'DROP VIEW IF EXISTS anchor."{view}" CASCADE')
    with connect(path) as wh:
        wh.execute(statement)
    run = anchor_step(tmp_path / "p", anchor)
    assert not run.problems
    assert rows(path, 'SELECT count(*) FROM anchor."User_first_plan"') == [(3,)]
    assert rows(path, f'SELECT count(*) FROM anchor."{changed}"') == [(migrated_rows,)]


def test_scd1_and_scd2_store_the_same_rows_so_switching_needs_no_migration(
    tmp_path: Path, engine: str
) -> None:
    path = harness(tmp_path / "p")
    before = snapshot(path)
    anchor = copy.deepcopy(ANCHOR)
    anchor["entities"]["User"]["attributes"]["plan"]["history"] = "scd2"
    run = anchor_step(tmp_path / "p", anchor)
    assert run.inserted == 0
    after = snapshot(path)
    # The serving table is derived: scd2 adds the previous value's columns, built anew.
    derived = {"meta.anchor_tables", "anchor.User_current"}
    assert {k: v for k, v in after.items() if k not in derived} == {
        k: v for k, v in before.items() if k not in derived
    }
    assert len(after["anchor.User_current"]) == len(before["anchor.User_current"])
    assert len(after["anchor.User_current"][0]) == len(before["anchor.User_current"][0]) + 2


# -- the anchor section of the project file -------------------------------------------------------


def _attribute(name: str, **values: Any) -> Any:
    return lambda a: a["entities"]["User"]["attributes"][name].update(values)


def _no_changed_at(anchor: dict[str, Any]) -> None:
    del anchor["entities"]["User"]["changed_at"]


def _tie_role(anchor: dict[str, Any]) -> None:
    anchor["ties"]["Device_User"]["roles"] = {"Device": "device_id", "Customer": "user_id"}
    anchor["ties"]["Device_User"]["identifier"] = ["Device"]


BAD_ANCHORS = [
    pytest.param(
        _attribute("country", model="events"),
        "anchorflow.yml: anchor.entities.User.attributes.country: unknown staging model 'events' "
        "(obs)",
        id="unknown-staging-model",
    ),
    pytest.param(
        _attribute("country", value="land"),
        "anchorflow.yml: anchor.entities.User.attributes.country.value: staging.obs has no column "
        "'land' (columns: user_id, device_id, country, plan, score, platform, t)",
        id="unknown-column",
    ),
    pytest.param(
        _attribute("platform", knot="Os"),
        "anchorflow.yml: anchor.entities.User.attributes.platform.knot: unknown knot 'Os'",
        id="unknown-knot",
    ),
    pytest.param(
        _no_changed_at,
        "anchorflow.yml: anchor.entities.User.attributes.country: changed_at is missing: name "
        "the column that says when the value became true (here or on the entity)",
        id="missing-changed-at",
    ),
    pytest.param(
        _tie_role,
        "anchorflow.yml: anchor.ties.Device_User.roles.Customer: unknown entity 'Customer'",
        id="tie-with-unknown-entity",
    ),
    pytest.param(
        _attribute("country", history="scd3"),
        "anchorflow.yml: anchor.entities.User.attributes.country.history: ",
        id="unknown-history-kind",
    ),
]


@pytest.mark.parametrize(("change", "expected"), BAD_ANCHORS)
def test_a_mistake_in_the_anchor_section_is_one_line_naming_its_key(
    tmp_path: Path, change: Any, expected: str
) -> None:
    project_file(tmp_path, ANCHOR)  # a valid project to start from
    data = yaml.safe_load((tmp_path / "anchorflow.yml").read_text())
    change(data["anchor"])
    (tmp_path / "anchorflow.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as raised:
        load_project(tmp_path, env=ENV)
    problems = raised.value.problems
    assert len(problems) == 1, problems
    assert "\n" not in problems[0]
    if expected.endswith(": "):
        assert problems[0].startswith(expected), problems[0]
    else:
        assert problems[0] == expected
    assert not (tmp_path / "warehouse.duckdb").exists()
