"""Loading `anchorflow.yml`: every problem is exactly one line naming the file and the key path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from anchorflow.config import load_project
from anchorflow.errors import ConfigError
from anchorflow.project_types import parse_duration
from anchorflow.sources.amplitude.config import AmplitudeConfig
from anchorflow.sources.files.config import FilesConfig
from anchorflow.sources.redis.config import RedisConfig
from tests.conftest import API_KEY, SECRET_KEY, START, project_dict

pytestmark = pytest.mark.unit

DEMO = Path(__file__).resolve().parents[1] / "examples" / "product_analytics"
BASE_URL = "http://127.0.0.1:9"
MISSING_VAR = "ANCHORFLOW_TEST_UNSET_SECRET"


@dataclass(frozen=True)
class BadProject:
    """A project file with one mistake and the one line that must describe it."""

    id: str
    expected: str
    change: Callable[[dict[str, Any]], None] | None = None
    text: str | None = None  # the file verbatim, instead of a changed project_dict
    marts: dict[str, str] = field(default_factory=dict)

    def write(self, root: Path, base_url: str = BASE_URL) -> Path:
        """Write the project into `root` (created); return `root`."""
        (root / "models").mkdir(parents=True)
        if self.text is not None:
            text = self.text
        else:
            data = copy.deepcopy(project_dict(base_url))
            if self.change:
                self.change(data)
            text = yaml.safe_dump(data, sort_keys=False)
        (root / "anchorflow.yml").write_text(text)
        for name, sql in self.marts.items():
            (root / "models" / name).write_text(sql)
        return root


def _source(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["sources"]["amplitude"].update(values)


def _drop_source_key(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["sources"]["amplitude"].pop(key)


def _events(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["staging"]["events"].update(values)


def _column(name: str, spec: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["staging"]["events"]["columns"].update({name: spec})


BAD_PROJECTS = [
    BadProject(
        "memory-limit-not-a-size",
        "anchorflow.yml: warehouse.memory_limit: expected a memory size such as 3GB or 512MB, "
        "got 'lots'",
        lambda data: data.setdefault("warehouse", {}).update(memory_limit="lots"),
    ),
    BadProject(
        "start-not-an-hour",
        "anchorflow.yml: sources.amplitude.start: expected YYYYMMDDTHH, got '2024-13-01T00'",
        _source(start="2024-13-01T00"),
    ),
    BadProject(
        "start-impossible-month",
        "anchorflow.yml: sources.amplitude.start: expected YYYYMMDDTHH, got '20241301T00'",
        _source(start="20241301T00"),
    ),
    BadProject(
        "unknown-top-level-key",
        "anchorflow.yml: unknown key 'warehous' (did you mean 'warehouse'?)",
        lambda data: data.update(warehous={"path": "w.duckdb"}),
    ),
    BadProject(
        "unknown-source-key",
        "anchorflow.yml: sources.amplitude: unknown key 'base_ur' (did you mean 'base_url'?)",
        _source(base_ur="http://127.0.0.1:9"),
    ),
    BadProject(
        "unknown-retry-key",
        "anchorflow.yml: sources.amplitude.retry: unknown key 'attempt' (did you mean 'attempts'?)",
        _source(retry={"attempt": 3}),
    ),
    BadProject(
        "unknown-column-key",
        "anchorflow.yml: staging.events.columns.amount: unknown key 'typ' (did you mean 'type'?)",
        _column("amount", {"path": "event_properties.amount", "typ": "DOUBLE"}),
    ),
    BadProject(
        "unknown-source-kind",
        "anchorflow.yml: sources.amplitude.kind: unknown kind 'amplitud' (did you mean "
        "'amplitude'?); known: amplitude, async_export, dynamodb, files, redis, webhook",
        _source(kind="amplitud"),
    ),
    BadProject(
        "missing-required-key",
        "anchorflow.yml: sources.amplitude.start: required key is missing",
        _drop_source_key("start"),
    ),
    BadProject(
        "missing-env-var",
        f"anchorflow.yml: sources.amplitude.secret_key: environment variable {MISSING_VAR} "
        "is not set",
        _source(secret_key="${" + MISSING_VAR + "}"),
    ),
    BadProject(
        "bad-sql-type",
        "anchorflow.yml: staging.events.columns.score.type: expected a SQL type such as VARCHAR "
        "or TIMESTAMP, got 'DUBBLE'",
        _column("score", {"path": "event_properties.score", "type": "DUBBLE"}),
    ),
    BadProject(
        "bad-json-path",
        "anchorflow.yml: staging.events.columns.score.path: expected a dotted JSON path of plain "
        "keys, got 'event_properties..score'",
        _column("score", {"path": "event_properties..score", "type": "DOUBLE"}),
    ),
    BadProject(
        "unique-key-not-a-column",
        "anchorflow.yml: staging.events: unique_key 'insert_id' is not one of the columns",
        _events(unique_key="insert_id"),
    ),
    BadProject(
        "staging-source-not-defined",
        "anchorflow.yml: staging.events.source: unknown source 'amplitud' (sources: amplitude)",
        _events(source="amplitud"),
    ),
    BadProject(
        "invalid-yaml",
        "anchorflow.yml: line 4: not valid YAML (expected <block end>, but found "
        "'<block mapping start>')",
        text="name: broken\nwarehouse:\n    path: warehouse.duckdb\n  threads: 2\n",
    ),
    BadProject(
        "mart-sql-does-not-parse",
        "anchorflow.yml: marts: models/daily.sql: not valid SQL (Expecting ). Line 2, Col: 28.)",
        marts={"daily.sql": "SELECT platform\nFROM staging.events WHERE (1"},
    ),
    BadProject(
        "mart-with-two-statements",
        "anchorflow.yml: marts: models/daily.sql: expected exactly one SELECT statement",
        marts={"daily.sql": "SELECT 1;\nSELECT 2;"},
    ),
    BadProject(
        "postgres-without-dsn",
        "anchorflow.yml: warehouse: engine postgres needs dsn: the database's connection string",
        text="name: pg\nwarehouse:\n  engine: postgres\n",
    ),
    BadProject(
        "postgres-with-duckdb-settings",
        "anchorflow.yml: warehouse: memory_limit, threads: DuckDB's settings; engine postgres "
        "takes dsn only",
        text="name: pg\nwarehouse:\n  engine: postgres\n  dsn: postgresql://h/db\n"
        "  threads: 2\n  memory_limit: 1GB\n",
    ),
    BadProject(
        "spark-conf-on-duckdb",
        "anchorflow.yml: warehouse: conf: settings of engine spark",
        text="name: d\nwarehouse:\n  conf:\n    spark.driver.memory: 4g\n",
    ),
    BadProject(
        "spark-conf-not-a-spark-setting",
        "anchorflow.yml: warehouse.conf: 'driver.memory' is not a Spark setting (they start "
        "with spark.)",
        text="name: s\nwarehouse:\n  engine: spark\n  conf:\n    driver.memory: 4g\n",
    ),
    BadProject(
        "postgres-without-unsigned-types",
        "anchorflow.yml: staging.events.columns.big.type: UBIGINT has no PostgreSQL type; use "
        "DECIMAL(20,0)",
        text="name: pg\nwarehouse:\n  engine: postgres\n  dsn: postgresql://h/db\n"
        "sources:\n  f:\n    kind: files\n    path: in/*.json\nstaging:\n  events:\n"
        "    source: f\n    columns:\n      big: UBIGINT\n",
    ),
    BadProject(
        "dsn-on-duckdb",
        "anchorflow.yml: warehouse: dsn is for engine postgres; DuckDB's file is `path`",
        text="name: pg\nwarehouse:\n  dsn: postgresql://h/db\n",
    ),
    BadProject(
        "duplicate-key",
        "anchorflow.yml: line 4: not valid YAML (the key 'path' is given twice)",
        text="name: twice\nwarehouse:\n  path: a.duckdb\n  path: b.duckdb\n",
    ),
]


@pytest.mark.parametrize("case", BAD_PROJECTS, ids=lambda c: c.id)
def test_a_bad_project_is_one_line_naming_the_key(case: BadProject, tmp_path: Path) -> None:
    root = case.write(tmp_path / "project")
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert raised.value.problems == [case.expected]
    assert str(raised.value) == case.expected
    assert SECRET_KEY not in case.expected and API_KEY not in case.expected


def test_a_source_without_kind_is_a_missing_required_key(tmp_path: Path) -> None:
    root = BadProject("no-kind", "", _drop_source_key("kind")).write(tmp_path / "project")
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert raised.value.problems == [
        "anchorflow.yml: sources.amplitude.kind: required key is missing"
    ]


def test_a_bad_column_name_names_the_column_key_path(tmp_path: Path) -> None:
    root = BadProject("bad-name", "", _column("order-id", "VARCHAR")).write(tmp_path / "project")
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert raised.value.problems == [
        "anchorflow.yml: staging.events.columns.order-id: expected a name of letters, digits and "
        "_ (not first), got 'order-id'"
    ]


def test_a_missing_variable_is_named_and_no_secret_value_is_printed(tmp_path: Path) -> None:
    case = BadProject("both", "", _source(api_key="${AMPLITUDE_API_KEY}"))
    root = case.write(tmp_path / "project")
    env = {"AMPLITUDE_API_KEY": "live-api-key-1234567"}  # the secret key's variable is unset
    with pytest.raises(ConfigError) as raised:
        load_project(root, env=env)
    assert raised.value.problems == [
        "anchorflow.yml: sources.amplitude.secret_key: environment variable AMPLITUDE_SECRET_KEY "
        "is not set"
    ]
    assert "live-api-key-1234567" not in str(raised.value)


def test_every_problem_of_a_file_is_reported_not_just_the_first(tmp_path: Path) -> None:
    def two_mistakes(data: dict[str, Any]) -> None:
        data["sources"]["amplitude"]["start"] = "yesterday"
        data["staging"]["events"]["unique_key"] = "nope"

    root = BadProject("two", "", two_mistakes).write(tmp_path / "project")
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert sorted(raised.value.problems) == [
        "anchorflow.yml: sources.amplitude.start: expected YYYYMMDDTHH, got 'yesterday'",
        "anchorflow.yml: staging.events: unique_key 'nope' is not one of the columns",
    ]


def test_the_demo_project_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMPLITUDE_BASE_URL", raising=False)
    project = load_project(DEMO)
    source = project.sources["amplitude"]
    assert project.name == "product_analytics"
    assert source.base_url == "https://amplitude.com"  # the ${VAR:-default}'s default
    assert source.api_key.get_secret_value() == API_KEY
    assert source.secret_key.get_secret_value() == SECRET_KEY
    assert source.start == START
    assert source.availability_delay == timedelta(hours=2)
    events = project.staging["events"]
    assert events.unique_key == "event_uuid"
    assert events.columns["event_uuid"].path == "uuid"
    assert events.columns["event_uuid"].type == "UUID"
    assert events.columns["amount"].keys == ["event_properties", "amount"]
    assert events.columns["event_type"].path == "event_type"  # shorthand: the name is the path
    assert project.warehouse_path == DEMO / "warehouse.duckdb"
    assert sorted(p.stem for p in project.marts_path.glob("*.sql")) == [
        "cost_per_user",
        "daily_active_users",
        "funnel_events",
        "grading",
        "revenue_by_country",
        "user_days",
        "user_first_days",
    ]
    costs = project.sources["costs"]
    assert isinstance(costs, FilesConfig) and costs.streams == ["daily"]
    assert project.stream_of(project.staging["campaign_costs"]) == "daily"


def test_the_demo_backend_is_a_redis_source_with_a_local_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    project = load_project(DEMO)
    backend = project.sources["backend"]
    assert isinstance(backend, RedisConfig)
    assert backend.url.get_secret_value() == "redis://127.0.0.1:6379/0"  # validate, status
    assert {n: (q.kind, q.key) for n, q in backend.queues.items()} == {
        "events": ("list", "bus:events"),
        "payments": ("stream", "bus:payments"),
    }
    assert backend.model_field == "type"
    models = {n: (project.stream_of(m), m.selector) for n, m in project.staging.items()
              if m.source == "backend"}  # fmt: skip
    assert models == {
        "payments": ("payments", "type = 'payment'"),
        "subscription_changes": ("events", "type = 'subscription_change'"),
        "support_tickets": ("events", "type = 'support_ticket'"),
    }
    monkeypatch.setenv("REDIS_URL", "redis://:pw@10.0.0.5:6380/2")
    assert load_project(DEMO).sources["backend"].url.get_secret_value().endswith(":6380/2")


def test_the_demo_project_needs_its_two_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMPLITUDE_API_KEY")
    monkeypatch.delenv("AMPLITUDE_SECRET_KEY")
    with pytest.raises(ConfigError) as raised:
        load_project(DEMO)
    assert raised.value.problems == [
        "anchorflow.yml: sources.amplitude.api_key: environment variable AMPLITUDE_API_KEY is "
        "not set",
        "anchorflow.yml: sources.amplitude.secret_key: environment variable AMPLITUDE_SECRET_KEY "
        "is not set",
    ]


def test_a_variable_with_a_default_uses_the_environment_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = BadProject("default", "", _source(base_url="${AF_TEST_URL:-http://fallback:8080/}"))
    root = case.write(tmp_path / "project")
    monkeypatch.delenv("AF_TEST_URL", raising=False)
    assert load_project(root).sources["amplitude"].base_url == "http://fallback:8080"
    monkeypatch.setenv("AF_TEST_URL", "http://from-env:9000")
    assert load_project(root).sources["amplitude"].base_url == "http://from-env:9000"
    monkeypatch.setenv("AF_TEST_URL", "")  # set but empty is still set
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert raised.value.problems == [
        "anchorflow.yml: sources.amplitude.base_url: expected an http(s) URL, got ''"
    ]


def test_variables_interpolate_inside_a_longer_value(tmp_path: Path) -> None:
    case = BadProject("inside", "", _source(base_url="http://${AF_HOST}:${AF_PORT:-8787}"))
    root = case.write(tmp_path / "project")
    env = {"AF_HOST": "emulator", "AMPLITUDE_API_KEY": "k", "AMPLITUDE_SECRET_KEY": "s"}
    assert load_project(root, env=env).sources["amplitude"].base_url == "http://emulator:8787"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("2h", timedelta(hours=2)),
        ("250ms", timedelta(milliseconds=250)),
        ("15m", timedelta(minutes=15)),
        ("1d", timedelta(days=1)),
        ("90", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "2 hours", "-5s", "h", ""])
def test_a_bad_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 30s, 15m or 2h"):
        parse_duration(text)


def test_durations_in_the_file_become_timedeltas(tmp_path: Path) -> None:
    retry = {"attempts": 3, "base_delay": "250ms", "max_delay": "30s"}
    case = BadProject("durations", "", _source(retry=retry, timeout="2h"))
    source = load_project(case.write(tmp_path / "project")).sources["amplitude"]
    assert source.retry.base_delay == timedelta(milliseconds=250)
    assert source.retry.max_delay == timedelta(seconds=30)
    assert source.timeout == timedelta(hours=2)


def test_secrets_never_show_in_repr_str_or_json(tmp_path: Path) -> None:
    project = load_project(BadProject("ok", "").write(tmp_path / "project"))
    source = project.sources["amplitude"]
    assert isinstance(source, AmplitudeConfig)
    shown = [repr(project), str(project), repr(source), str(source), project.model_dump_json()]
    for text in shown:
        assert SECRET_KEY not in text
        assert API_KEY not in text
    assert source.secret_key.get_secret_value() == SECRET_KEY


def test_a_column_named_like_a_staging_system_column_is_refused(tmp_path: Path) -> None:
    root = BadProject("reserved", "", _column("origin", "VARCHAR")).write(tmp_path / "project")
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert raised.value.problems == [
        "anchorflow.yml: staging.events: column 'origin' is reserved (staging uses load_id, "
        "origin and line_no)"
    ]


def test_two_sources_landing_in_the_same_raw_table_are_refused(tmp_path: Path) -> None:
    def add_clash(data: dict[str, Any]) -> None:
        source = dict(data["sources"]["amplitude"])
        data["sources"]["amplitude"]["stream"] = "x_events"
        data["sources"]["amplitude_x"] = {**source, "stream": "events"}

    root = BadProject("clash", "", add_clash).write(tmp_path / "project")
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert raised.value.problems == [
        "anchorflow.yml: sources.amplitude_x: lands in raw.amplitude_x_events, like "
        "sources.amplitude; rename one source or its stream"
    ]


def test_json_keys_that_differ_only_in_case_are_refused(tmp_path: Path) -> None:
    def add(data: dict[str, Any]) -> None:
        data["staging"]["events"]["columns"]["uid_a"] = {"path": "userId"}
        data["staging"]["events"]["columns"]["uid_b"] = {"path": "userid"}

    root = BadProject("case", "", add).write(tmp_path / "project")
    with pytest.raises(ConfigError) as raised:
        load_project(root)
    assert raised.value.problems == [
        "anchorflow.yml: staging.events: JSON keys 'userId' and 'userid' differ only in case; "
        "map one of them"
    ]
