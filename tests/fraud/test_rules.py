"""Rule files: the format's errors, the catalogue and its overrides, binding, and each built-in
rule run on its hand-built case (plain, evasive, hard negative) on DuckDB and PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from anchorflow.errors import ConfigError
from anchorflow.fraud import rules
from anchorflow.fraud.rules import FLAG_COLUMNS, Rule, bind, catalogue, data_tables, load_rule
from anchorflow.warehouse import Warehouse
from anchorflow.warehouse.postgres.dialect import PARAM, transpile
from tests.fraud import cases
from tests.fraud.cases import CASES, DATA, WINDOW_END, WINDOW_START, Case, registered

SLUGS = (
    "multi_registration_ip", "ip_velocity", "device_velocity", "duplicate_clicks",
    "click_injection", "click_flooding", "datacenter_ip", "bot_user_agent",
    "impossible_travel", "device_farm", "no_activity", "api_only", "conversion_anomaly",
)  # fmt: skip

HEADER = {
    "slug": "late_night",
    "description": "registrations at night",
    "version": "1",
    "severity": "low",
    "flags": "[user]",
    "lookback": "1d",
    "inputs": "{registrations: [user_id, time]}",
    "params": "{last_hour: 5}",
}
SQL = (
    "SELECT r.user_id, r.time AS flagged_at FROM registrations AS r\n"
    "WHERE r.time >= :window_start AND r.time < :window_end\n"
    "  AND extract(hour FROM r.time) < :last_hour"
)


def write_rule(folder: Path, sql: str = SQL, name: str = "late_night", **header: str | None):
    """A rule file in `folder`: HEADER with `header`'s changes (None drops a key), then `sql`."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"-- {k}: {v}" for k, v in (HEADER | header).items() if v is not None]
    path = folder / f"{name}.sql"
    path.write_text("\n".join(lines) + "\n" + sql + "\n")
    return path


# -- the format's errors -----------------------------------------------------------------------

BAD = {
    "unknown key": ({"owner": "fraud-team"}, SQL, "owner: unknown key"),
    "missing key": ({"lookback": None}, SQL, "lookback: missing"),
    "slug not the file": ({"slug": "early_morning"}, SQL, "slug: 'early_morning' differs"),
    "two statements": ({}, SQL + ";\nSELECT 1 AS user_id, 2 AS flagged_at", "exactly one SELECT"),
    "not a select": ({}, "DELETE FROM registrations", "exactly one SELECT"),
    "no sql": ({}, "", "exactly one SELECT"),
    "unknown input": ({"inputs": "{signups: [user_id]}"}, SQL, "'signups' is not an input"),
    "unknown column": ({"inputs": "{registrations: [user_id, email]}"}, SQL, "no column 'email'"),
    "unknown placeholder": ({}, SQL + " AND r.user_id <> :office_ip", ":office_ip is neither"),
    "positional placeholder": ({}, SQL + " AND r.user_id <> ?", "a `?` placeholder"),
    "project table": (
        {},
        SQL.replace("registrations AS r", "staging.signups AS r"),
        "staging.signups",
    ),
    "undeclared input": (
        {},
        SQL + " AND r.user_id IN (SELECT user_id FROM events)",
        "table 'events', which is none",
    ),
    "table function": (
        {},
        SQL.replace("registrations AS r", "read_csv('x.csv') AS r"),
        "READ_CSV('x.csv')",
    ),
    "bad severity": ({"severity": "critical"}, SQL, "severity: expected one of low"),
    "bad flags": ({"flags": "[user, session]"}, SQL, "flags: expected a list"),
    "bad lookback": ({"lookback": "a week"}, SQL, "lookback: expected a duration"),
    "bad yaml": ({"params": "{last_hour: [5}"}, SQL, "params: not a YAML value"),
    "bad param name": ({"params": "{window_end: 5}"}, SQL, "cannot name a parameter"),
    "missing output": ({"flags": "[user, ip]"}, SQL, "lacks the output column 'ip'"),
    "not sql": ({}, "SELECT FROM WHERE (", "not valid DuckDB SQL"),
    "undeclared column": (
        {"inputs": "{registrations: [user_id, time]}"},
        SQL + " AND r.ip LIKE '10.%'",
        "inputs: the SQL reads a column its inputs do not declare, or cannot tell whose column "
        "it is (Unknown column: ip)",
    ),
}


@pytest.mark.unit
@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_rule_file_is_one_line_naming_the_file_and_the_key(tmp_path: Path, case: str):
    header, sql, expected = BAD[case]
    path = write_rule(tmp_path, sql, **header)
    with pytest.raises(ConfigError) as raised:
        load_rule(path)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


@pytest.mark.unit
def test_a_rule_file_reads_into_a_rule(tmp_path: Path) -> None:
    path = write_rule(tmp_path, lookback="36h  # a day and a half", flags="[user]")
    rule = load_rule(path)
    assert rule == Rule(
        slug="late_night", description="registrations at night", version=1, severity="low",
        flags=("user",), lookback=timedelta(hours=36),
        inputs={"registrations": ("user_id", "time")}, params={"last_hour": 5}, sql=SQL,
        path=path, tables=(),
    )  # fmt: skip
    assert hash(rule) == hash(load_rule(path))  # a rule can key a cache or a set
    colon = load_rule(write_rule(tmp_path, description="night sign-ups: often scripted"))
    assert colon.description == "night sign-ups: often scripted"


@pytest.mark.unit
def test_the_catalogue_has_the_contracts_thirteen_rules() -> None:
    rules = catalogue(None)
    assert sorted(rules) == sorted(SLUGS)
    assert rules["datacenter_ip"].tables == ("dc_ranges",)
    assert rules["bot_user_agent"].tables == ("bot_agents",)
    assert rules["duplicate_clicks"].flags == ("event", "ip", "device")
    assert all(rule.path.parent.name == "catalogue" for rule in rules.values())


@pytest.mark.unit
def test_a_project_folder_adds_and_overrides_rules_by_slug(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    write_rule(folder)
    sql = cases_sql("click_injection").replace("< :max_seconds", "<= :max_seconds")
    write_rule(folder, sql, name="click_injection", slug="click_injection",
               inputs="{clicks: [click_id, time], registrations: [user_id, time, click_id]}",
               params="{max_seconds: 20}", version="2")  # fmt: skip
    rules = catalogue(folder)
    assert len(rules) == len(SLUGS) + 1
    assert rules["late_night"].path == folder / "late_night.sql"
    assert rules["click_injection"].version == 2
    assert rules["click_injection"].params == {"max_seconds": 20}
    assert rules["api_only"].path.parent.name == "catalogue"


@pytest.mark.unit
def test_a_project_folder_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rules folder does not exist"):
        catalogue(tmp_path / "nowhere")


@cache
def builtin() -> dict[str, Rule]:
    """The built-in catalogue, loaded once for the module."""
    return catalogue(None)


def cases_sql(slug: str) -> str:
    return builtin()[slug].sql


# -- binding -----------------------------------------------------------------------------------


@pytest.mark.unit
def test_bind_gives_positional_placeholders_and_values_in_text_order() -> None:
    rule = builtin()["duplicate_clicks"]
    tree, values = bind(rule, {"max_seconds": 4}, WINDOW_START, WINDOW_END)
    sql = tree.sql(dialect="duckdb")
    assert sql.count("?") == len(values) == 6 and "$" not in sql and ":max" not in sql
    start, before = WINDOW_START, WINDOW_START - timedelta(hours=1)
    assert values == [before, WINDOW_END, start, 4, start, 4]


@pytest.mark.unit
def test_bind_takes_an_aware_window_as_utc_and_ints_for_floats() -> None:
    rule = builtin()["click_flooding"]
    start = datetime(2024, 3, 2, 3, tzinfo=timezone(timedelta(hours=3)))
    _, values = bind(rule, {"min_night_share": 1}, start, start + timedelta(days=1))
    assert {v for v in values if isinstance(v, datetime)} == {WINDOW_START, WINDOW_END}
    assert [type(v) for v in values if v == 1] == [float]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_second": 5}, "rule click_injection: unknown parameter 'max_second'"),
        ({"max_seconds": "5"}, "rule click_injection: parameter max_seconds expects int"),
        ({"max_seconds": True}, "parameter max_seconds expects int"),
        ({"max_seconds": 2.5}, "parameter max_seconds expects int"),
    ],
)
def test_bind_refuses_an_unknown_or_mistyped_parameter(params: dict[str, Any], message: str):
    with pytest.raises(ConfigError, match=re.escape(message)):
        bind(builtin()["click_injection"], params, WINDOW_START, WINDOW_END)


@pytest.mark.integration
def test_a_hostile_parameter_stays_a_value() -> None:
    case = cases.datacenter_ip()
    con = duckdb_with(case)
    hostile = "'; DROP TABLE registrations; --"
    tree, values = bind(builtin()["datacenter_ip"], {"category": hostile},
                        WINDOW_START, WINDOW_END)  # fmt: skip
    assert hostile not in tree.sql(dialect="duckdb") and hostile in values
    assert con.execute(tree.sql(dialect="duckdb"), values).fetchall() == []
    assert con.execute("SELECT count(*) FROM registrations").fetchone() == (10,)


# -- the data tables ---------------------------------------------------------------------------


@pytest.mark.unit
def test_data_tables_hold_ip_ranges_as_numbers_and_lower_case_patterns() -> None:
    tables = data_tables(DATA)
    ranges = tables["dc_ranges"]
    assert ranges.schema.field("start_ip").type == pa.int64()
    assert ranges.slice(0, 1).to_pylist() == [
        {"start_ip": 52 << 24, "end_ip": (52 << 24) + (79 << 16) + 0xFFFF, "provider": "aws",
         "category": "hosting"}
    ]  # fmt: skip
    assert tables["bot_agents"].column("pattern").to_pylist()[:2] == [
        "%python-requests%", "curl/%",
    ]  # fmt: skip


@pytest.mark.unit
def test_the_shipped_data_files_read_into_the_data_tables() -> None:
    if not (rules.DATA / "dc_ranges.csv").exists():
        pytest.skip("the catalogue's data files come with the synthetic-traffic branch")
    tables = data_tables()
    categories = set(tables["dc_ranges"].column("category").to_pylist())
    assert categories == {"hosting", "vpn"}
    assert pa.compute.all(pa.compute.less_equal(tables["dc_ranges"]["start_ip"],
                                                tables["dc_ranges"]["end_ip"])).as_py()  # fmt: skip
    patterns = tables["bot_agents"].column("pattern").to_pylist()
    assert patterns and all(p == p.lower() and not p.startswith("#") for p in patterns)


@pytest.mark.unit
def test_a_bad_ranges_file_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "bot_agents.txt").write_text("curl/%\n")
    (tmp_path / "dc_ranges.csv").write_text(
        "start_ip,end_ip,provider,category\n1.2.3,1.2.3.4,x,vpn\n"
    )
    with pytest.raises(ConfigError, match=r"dc_ranges.csv: cannot read .*IPv4"):
        data_tables(tmp_path)


# -- each rule on its case ---------------------------------------------------------------------


def duckdb_with(case: Case) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the case's inputs and data tables as tables."""
    con = duckdb.connect()
    for name, data in case.tables().items():
        con.register("incoming", data)
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM incoming')
        con.unregister("incoming")
    return con


def flagged(rule: Rule, data: pa.Table) -> set[tuple[Any, ...]]:
    """The keys the rule's rows flag, as tuples of its flag columns."""
    columns = [c for flag in rule.flags for c in FLAG_COLUMNS[flag]]
    rows = data.select(columns).to_pylist()
    keys = {tuple(row[c] for c in columns) for row in rows}
    assert len(keys) == len(rows), "a key is flagged twice in one run"
    return keys


def run_duckdb(slug: str, case: Case, **params: Any) -> pa.Table:
    tree, values = bind(builtin()[slug], params, WINDOW_START, WINDOW_END)
    return duckdb_with(case).sql(tree.sql(dialect="duckdb"), params=values).to_arrow_table()


@pytest.mark.integration
@pytest.mark.parametrize("slug", SLUGS)
def test_each_rule_flags_the_plain_and_evasive_pattern_and_not_the_look_alike(slug: str):
    case, rule = CASES[slug](), builtin()[slug]
    result = run_duckdb(slug, case)
    assert flagged(rule, result) == case.expected
    assert result.schema.field("flagged_at").type == pa.timestamp("us")
    again = run_duckdb(slug, case)
    assert sorted(map(repr, again.to_pylist())) == sorted(map(repr, result.to_pylist()))


@pytest.mark.integration
def test_no_activity_leaves_sign_ups_whose_follow_up_has_not_passed() -> None:
    case = cases.no_activity(newest=cases.at(12, day=3))  # follow-up passed for 08:00-12:00
    result = run_duckdb("no_activity", case, min_registrations=5)
    judged = {(f"{sub}_{i}",) for sub in ("idle1", "idle2") for i in range(9)}
    assert len(judged & case.expected) == 9 + 6
    assert flagged(builtin()["no_activity"], result) == judged & case.expected
    assert run_duckdb("no_activity", cases.no_activity(newest=cases.at(7, day=3))).num_rows == 0


@pytest.mark.integration
def test_impossible_travel_counts_server_events_when_asked() -> None:
    result = run_duckdb("impossible_travel", cases.impossible_travel(), front_end_only=False)
    assert ("server",) in flagged(builtin()["impossible_travel"], result)


@pytest.mark.integration
def test_flagged_users_carry_their_evidence() -> None:
    result = run_duckdb("click_injection", cases.click_injection())
    users, seconds = result["user_id"].to_pylist(), result["seconds_after_click"].to_pylist()
    gaps = dict(zip(users, seconds, strict=True))
    assert gaps == {"plain": 3, "evasive": 8, "midnight": 4}
    result = run_duckdb("multi_registration_ip", cases.multi_registration_ip())
    evasive = result.filter(pa.compute.equal(result["ip"], "10.1.1.2")).to_pylist()[0]
    assert (evasive["registrations"], evasive["user_agents"]) == (4, 2)


# -- PostgreSQL --------------------------------------------------------------------------------


def numbered(sql: str) -> list[str]:
    return re.findall(r"anchorflow_param_(\d+)_", sql)


@pytest.mark.unit
@pytest.mark.parametrize("slug", SLUGS)
def test_each_rule_transpiles_to_postgres_with_its_parameters_in_order(slug: str) -> None:
    rule = builtin()[slug]
    tree, values = bind(rule, {}, WINDOW_START, WINDOW_END)
    postgres = transpile(tree.sql(dialect="duckdb"))
    assert postgres.count(PARAM) == len(values)
    assert sqlglot.parse_one(postgres.replace(PARAM, "%s"), read="postgres")
    # the placeholders come in the same order in PostgreSQL's text as in DuckDB's
    for i, placeholder in enumerate(tree.find_all(exp.Placeholder)):
        placeholder.set("this", f"anchorflow_param_{i}_")
    duck = numbered(tree.sql(dialect="duckdb"))
    assert numbered(tree.sql(dialect="postgres")) == duck


@pytest.mark.integration
@pytest.mark.parametrize("slug", SLUGS)
def test_each_rule_flags_the_same_on_every_engine(slug: str, warehouse: Warehouse) -> None:
    case, rule = CASES[slug](), builtin()[slug]
    tree, values = bind(rule, {}, WINDOW_START, WINDOW_END)
    with registered(warehouse, case):
        result = warehouse.query_arrow(tree.sql(dialect="duckdb"), values)
    assert flagged(rule, result) == case.expected
