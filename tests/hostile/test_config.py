"""Project files a careless or hostile author writes: each is refused when the file is read,
in one line that names the place, and `run` writes nothing (no warehouse file, no table)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from anchorflow.anchor.ddl import entity_columns, knot_columns, target_columns
from anchorflow.anchor.plan import EntityPlan, RolePlan, TargetPlan
from anchorflow.config import load_project
from anchorflow.config.anchor import HISTORY_AUDIT, LOAD_AUDIT, SURROGATE
from anchorflow.errors import ConfigError
from tests.builders import ENV, amplitude_source, events_model, project_data
from tests.test_cli import cli, files_under

pytestmark = pytest.mark.hostile

Change = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Bad:
    """A project with one mistake, and the start of the one line that must refuse it."""

    id: str
    expected: str
    change: Change | None = None
    text: str | bytes | None = None  # the file verbatim instead of a changed project
    marts: dict[str, str] = field(default_factory=dict)

    def write(self, root: Path) -> Path:
        (root / "models").mkdir(parents=True)
        data = project_data(anchor=copy.deepcopy(ANCHOR))
        if self.change:
            self.change(data)
        text = yaml.safe_dump(data, sort_keys=False) if self.text is None else self.text
        path = root / "anchorflow.yml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        for name, sql in self.marts.items():
            (root / "models" / name).write_text(sql)
        return root


ANCHOR: dict[str, Any] = {
    "knots": {"Platform": {"type": "VARCHAR"}},
    "entities": {
        "User": {
            "key": "user_id",
            "sources": ["events"],
            "changed_at": "event_time",
            "attributes": {"platform": {"model": "events", "knot": "Platform"}},
        },
        "Device": {"key": "device_id", "sources": ["events"]},
    },
    "ties": {
        "Device_User": {
            "model": "events",
            "roles": {"Device": "device_id", "User": "user_id"},
            "changed_at": "event_time",
        }
    },
}


def column_type(sql_type: str, column: str = "amount") -> Change:
    def change(data: dict[str, Any]) -> None:
        data["staging"]["events"]["columns"][column] = {"path": "x", "type": sql_type}

    return change


def edit(path: str, value: Any) -> Change:
    """Set a dotted key path (`anchor.entities.User.key`) to `value`."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return change


def both(*changes: Change) -> Change:
    def change(data: dict[str, Any]) -> None:
        for one in changes:
            one(data)

    return change


def models(**staging: dict[str, Any]) -> Change:
    return lambda data: data["staging"].update(staging)


def laughs(levels: int) -> str:
    """The "billion laughs" file: each level is nine aliases of the one before."""
    lines = ["l0: &l0 [ha, ha, ha, ha, ha, ha, ha, ha, ha]"]
    for n in range(1, levels + 1):
        lines.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


SQL_TYPE = "staging.events.columns.amount.type: expected a SQL type such as VARCHAR or TIMESTAMP"

BAD = [
    # 1. types: the whole value is the type, and a DECIMAL the engine can hold
    Bad("type-with-a-statement-after-it",
        f"{SQL_TYPE}, got 'VARCHAR); DROP TABLE x; --': only the type may be written",
        column_type("VARCHAR); DROP TABLE x; --")),
    Bad("type-with-a-clause-after-it", f"{SQL_TYPE}, got 'INT) FROM t --'",
        column_type("INT) FROM t --")),
    Bad("type-with-a-comment", f"{SQL_TYPE}, got 'INT -- note': a comment is not part",
        column_type("INT -- note")),
    Bad("type-of-a-knot-with-trailing-text",
        "anchor.knots.Platform.type: expected a SQL type such as VARCHAR or TIMESTAMP, "
        "got 'VARCHAR); DROP TABLE x; --'",
        edit("anchor.knots.Platform.type", "VARCHAR); DROP TABLE x; --")),
    Bad("type-of-an-attribute-with-trailing-text",
        "anchor.entities.User.attributes.platform.type: expected a SQL type",
        edit("anchor.entities.User.attributes.platform.type", "INT); SELECT 1; --")),
    Bad("decimal-precision-over-38",
        "staging.events.columns.amount.type: 'DECIMAL(40,2)': a DECIMAL's precision must be "
        "1 to 38, not 40", column_type("DECIMAL(40,2)")),
    Bad("decimal-scale-over-its-precision",
        "staging.events.columns.amount.type: 'DECIMAL(3,5)': a DECIMAL's scale must be 0 to "
        "its precision (3), not 5", column_type("DECIMAL(3,5)")),
    Bad("decimal-inside-a-struct",
        "staging.events.columns.amount.type: 'STRUCT(a DECIMAL(40, 2))': a DECIMAL's precision",
        column_type("STRUCT(a DECIMAL(40, 2))")),
    Bad("decimal-of-three-numbers", "staging.events.columns.amount.type: 'DECIMAL(10, 2, 3)'",
        column_type("DECIMAL(10, 2, 3)")),
    # 2. names that differ only in case are one name to the engine
    Bad("models-differing-in-case",
        "staging.Events: its table staging.Events is staging.events's",
        models(Events=events_model())),
    Bad("columns-differing-in-case",
        "staging.events: columns 'platform' and 'Platform' differ only in case",
        column_type("VARCHAR", "Platform")),
    Bad("a-reserved-column-in-upper-case", "staging.events: column 'LOAD_ID' is reserved",
        column_type("BIGINT", "LOAD_ID")),
    Bad("entity-key-columns-differing-in-case",
        "anchor.entities.User.key: 'user_id' and 'USER_ID' differ only in case",
        both(edit("anchor.entities.User.key", ["user_id", "USER_ID"]),
             edit("anchor.entities.User.sources", {"events": ["user_id", "device_id"]}),
             edit("anchor.entities.User.attributes", {}))),
    Bad("attribute-named-like-the-key-in-another-case",
        "anchor.entities.User.attributes.USER_ID: the name is taken by the entity's id or "
        "natural key", edit("anchor.entities.User.attributes.USER_ID",
                            {"model": "events", "value": "platform"})),
    Bad("entities-differing-in-case", "anchor.entities.device: its table anchor.device clashes",
        edit("anchor.entities.device", {"key": "device_id", "sources": ["events"]})),
    # 3. columns anchorflow adds to the anchor tables
    Bad("entity-key-named-id",
        "anchor.entities.Device.key: 'id' is a column anchorflow adds to anchor.Device "
        "(id, load_id, loaded_at); name the key otherwise and map the model's column to it: "
        "sources: {events: [id]}",
        both(edit("anchor.entities.Device.key", "id"),
             edit("staging.events.columns.id", "VARCHAR"))),
    Bad("entity-key-named-loaded_at", "anchor.entities.Device.key: 'loaded_at' is a column",
        both(edit("anchor.entities.Device.key", "loaded_at"),
             edit("anchor.entities.Device.sources", {"events": ["device_id"]}),
             edit("anchor.ties.Device_User.roles.Device", "device_id"))),
    Bad("entity-key-named-load_id-in-upper-case",
        "anchor.entities.Device.key: 'LOAD_ID' is a column",
        both(edit("anchor.entities.Device.key", "LOAD_ID"),
             edit("anchor.entities.Device.sources", {"events": ["device_id"]}))),
    Bad("tie-role-whose-column-is-load_id",
        "anchor.ties.Device_User.roles.load: its column load_id is one anchorflow adds to every "
        "tie (changed_at, load_id); rename the role and name its entity with entity: Device",
        edit("anchor.ties.Device_User.roles",
             {"load": {"entity": "Device", "key": "device_id"}, "User": "user_id"})),
    # 4. a model's source and stream must be configured
    Bad("model-of-an-unknown-stream",
        "staging.events.stream: source 'amplitude' has no stream 'clicks' (streams: events)",
        edit("staging.events.stream", "clicks")),
    Bad("model-of-an-unknown-source",
        "staging.events.source: unknown source 'amplitud' (sources: amplitude)",
        edit("staging.events.source", "amplitud")),
    # 5. model_field is a JSON path, as staging reads it
    *[
        Bad(f"model-field-{n}",
            f"sources.amplitude.model_field: expected a dotted JSON path of plain keys, got {v!r}",
            edit("sources.amplitude.model_field", v))
        for n, v in [("with-quotes", "type'); DROP TABLE x; --"), ("empty", ""),
                     ("with-an-empty-key", "a..b"), ("too-long", "k" * 129)]
    ],
    # 6. marts read tables the project makes, and not each other in a loop
    Bad("marts-in-a-cycle",
        "marts: models depend on each other in a cycle: ",
        marts={"a.sql": "SELECT * FROM marts.b", "b.sql": "SELECT * FROM marts.c",
               "c.sql": "SELECT * FROM MARTS.A"}),
    Bad("a-mart-reading-itself", "marts: models depend on each other in a cycle: a → a",
        marts={"a.sql": "SELECT * FROM staging.events UNION ALL SELECT * FROM marts.a"}),
    Bad("a-mart-reading-a-missing-staging-table",
        "marts: models/daily.sql: reads staging.event, which the project does not make "
        "(did you mean staging.events?)",
        marts={"daily.sql": "SELECT count(*) FROM staging.event"}),
    Bad("a-mart-reading-a-missing-anchor-view",
        "marts: models/daily.sql: reads anchor.user_latst, which the project does not make",
        marts={"daily.sql": 'SELECT * FROM anchor."User_latst"'}),
    Bad("a-mart-reading-a-missing-mart",
        "marts: models/daily.sql: reads marts.weekly, which the project does not make",
        marts={"daily.sql": "WITH w AS (SELECT 1) SELECT * FROM w, marts.weekly"}),
    Bad("a-mart-reading-a-missing-raw-table",
        "marts: models/daily.sql: reads raw.amplitude_clicks, which the project does not make",
        marts={"daily.sql": "SELECT * FROM raw.amplitude_clicks"}),
    Bad("a-mart-reading-a-table-without-a-schema",
        "marts: models/daily.sql: reads 'events' without a schema",
        marts={"daily.sql": "SELECT * FROM events"}),
    Bad("a-mart-reading-an-unknown-schema",
        "marts: models/daily.sql: reads stage.events: the warehouse has no schema 'stage'",
        marts={"daily.sql": "SELECT * FROM stage.events"}),
    Bad("a-mart-reading-another-database",
        "marts: models/daily.sql: reads other.staging.events, in another database",
        marts={"daily.sql": "SELECT * FROM other.staging.events"}),
    Bad("marts-differing-in-case", "marts: models/daily.sql: its table marts.daily is marts.Daily",
        marts={"daily.sql": "SELECT 1 AS one", "Daily.sql": "SELECT 2 AS two"}),
    # 7. a file with no mapping of sections
    Bad("an-empty-file", "the file holds no settings (it is empty, or only comments)", text=""),
    Bad("a-file-of-comments", "the file holds no settings", text="# to do\n\n  # later\n"),
    Bad("a-null-document", "the file holds no settings", text="~\n"),
    Bad("a-scalar", "expected a mapping of sections (sources:, staging:, ...) at the top level, "
        "not a single value", text="anchorflow\n"),
    Bad("a-list", "expected a mapping of sections (sources:, staging:, ...) at the top level, "
        "not a list", text="- sources\n- staging\n"),
    Bad("not-utf-8", "not UTF-8 text (byte 6)", text=b"name: \xff\xfe\n"),
    # 8. YAML aliases within a budget
    Bad("a-recursive-alias-in-a-list",
        "line 1: a YAML alias (*name) is used inside the value it names", text="a: &x [1, *x]\n"),
    Bad("a-recursive-alias-in-a-mapping", "line 2: a YAML alias (*name) is used inside",
        text="name: p\nstaging: &s\n  events: *s\n"),
    Bad("billion-laughs", "line 6: YAML aliases expand this value to more than 100000 values",
        text=laughs(9)),
    Bad("too-many-aliases", "line 103: more than 100 YAML aliases (*name)",
        text="a: &a x\nb:\n" + "  - *a\n" * 101),
    Bad("nested-too-deep", "line 1: values nested more than 64 levels deep",
        text="a: " + "[" * 5000 + "]" * 5000 + "\n"),
]  # fmt: skip


@pytest.mark.unit
@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_a_bad_project_is_refused_in_one_line_naming_the_place(case: Bad, tmp_path: Path) -> None:
    root = case.write(tmp_path / "project")
    with pytest.raises(ConfigError) as raised:
        load_project(root, env=ENV)
    (line,) = raised.value.problems
    assert "\n" not in line
    assert line.startswith(f"anchorflow.yml: {case.expected}"), line
    assert not (root / "warehouse.duckdb").exists()


def test_the_reserved_anchor_columns_are_the_ones_the_tables_get() -> None:
    """The config checks names against the columns anchor.ddl adds: one list, not two."""
    entity = EntityPlan("User", ["user_id"], ["VARCHAR"], {})
    assert set(entity_columns(entity)) - {"user_id"} == {*SURROGATE, *LOAD_AUDIT}
    assert set(knot_columns("VARCHAR")) - {"value"} == {*SURROGATE, *LOAD_AUDIT}
    role = RolePlan("Device", "Device", "device_id", ["device_id"])
    partner = RolePlan("User", "User", "user_id", ["user_id"])
    tie = TargetPlan("tie", "Device_User", "events", "scd2", "t", [role], [partner])
    assert set(target_columns(tie)) - {"device_id", "user_id"} == set(HISTORY_AUDIT)


GOOD_TYPES = [
    ("VARCHAR(10)", "VARCHAR"), ("text", "VARCHAR"), ("DECIMAL", "DECIMAL(18, 3)"),
    ("DECIMAL(5)", "DECIMAL(5)"), ("decimal(38, 38)", "DECIMAL(38, 38)"),
    ("DECIMAL(1,0)", "DECIMAL(1, 0)"), ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"),
    ("INTEGER[]", "INT[]"), ("ENUM('--', '/*')", "ENUM('--', '/*')"),
    ('STRUCT(a INT, "b c" DECIMAL(9, 2))', 'STRUCT(a INT, "b c" DECIMAL(9, 2))'),
]  # fmt: skip


@pytest.mark.unit
@pytest.mark.parametrize(("written", "canonical"), GOOD_TYPES)
def test_a_type_alone_is_accepted_and_spelled_as_the_engine_does(
    written: str, canonical: str, tmp_path: Path
) -> None:
    root = Bad("", "", column_type(written)).write(tmp_path / "project")
    project = load_project(root, env=ENV)
    assert project.staging["events"].columns["amount"].type == canonical


@pytest.mark.unit
def test_marts_may_read_every_table_the_project_makes(tmp_path: Path) -> None:
    reads = {
        "a.sql": "SELECT * FROM staging.events JOIN raw.amplitude_events USING (load_id)",
        "b.sql": 'SELECT * FROM anchor."User_latest" JOIN anchor.user_platform USING (id)',
        "c.sql": "SELECT * FROM anchor.User_as_of(TIMESTAMP '2024-03-01') JOIN marts.b USING (id)",
        "d.sql": "WITH x AS (SELECT * FROM marts.a) SELECT * FROM x, anchor.Device_User, "
        "anchor.Platform, meta.loads, information_schema.tables, warehouse.marts.c",
        "e.sql": "SELECT * FROM read_csv('costs.csv'), range(3), 'more.csv'",
    }
    root = Bad("", "", marts=reads).write(tmp_path / "project")
    assert load_project(root, env=ENV).marts_path.is_dir()


@pytest.mark.unit
def test_aliases_within_the_budget_and_a_dotted_model_field_are_accepted(tmp_path: Path) -> None:
    source = amplitude_source(model_field="event_properties.kind")
    data = {k: v for k, v in project_data(sources={"amplitude": source}).items() if k != "staging"}
    staging = (
        "staging:\n  m0: &model\n    source: amplitude\n"
        "    columns: {event_uuid: {path: uuid, type: UUID}, n: INTEGER}\n"
        + "".join(f"  m{n}: *model\n" for n in range(1, 60))
        + "  keyed: {<<: *model, unique_key: event_uuid}\n"
    )
    root = tmp_path / "project"
    root.mkdir()
    (root / "anchorflow.yml").write_text(yaml.safe_dump(data, sort_keys=False) + staging)
    project = load_project(root, env=ENV)
    assert len(project.staging) == 61
    assert project.staging["keyed"].columns == project.staging["m59"].columns
    assert project.staging["keyed"].key_columns == ["event_uuid"]
    assert project.sources["amplitude"].model_field == "event_properties.kind"


INVALID_FOR_RUN = [c for c in BAD if c.id in {
    "decimal-precision-over-38", "models-differing-in-case", "entity-key-named-id",
    "tie-role-whose-column-is-load_id", "marts-in-a-cycle", "an-empty-file", "billion-laughs",
}]  # fmt: skip


@pytest.mark.e2e
@pytest.mark.parametrize("case", INVALID_FOR_RUN, ids=[c.id for c in INVALID_FOR_RUN])
def test_run_on_an_invalid_project_writes_nothing_and_says_why_in_one_line(
    case: Bad, tmp_path: Path
) -> None:
    root = case.write(tmp_path / "project")
    before = files_under(root)
    for command in ("validate", "run"):
        result = cli(command, "--project", str(root))
        assert result.returncode == 1, result.stdout
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: anchorflow.yml: {case.expected}"), line
        assert "Traceback" not in result.stdout + result.stderr
    assert files_under(root) == before  # no warehouse file, no state directory
