"""`anchorflow query` and `anchorflow model` in subprocesses, on a model the pipeline built from
the emulator's traffic; and the query builder's SQL, which joins only what is asked for."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from anchorflow.anchor.plan import AnchorPlan
from anchorflow.anchor.query import query_sql
from anchorflow.config import Project, load_project
from anchorflow.run import Pipeline
from tests import engines
from tests.anchor.pipeline_project import (
    ENV,
    anchored_model,
    built_once,
    copy_project,
    plan_of,
    rows,
    run_concurrently,
)

pytestmark = pytest.mark.e2e

AS_OF = "2024-03-01T02:00"
INSTANT = datetime(2024, 3, 1, 2)

COMMANDS = {
    "table": ["query", "User", "--attrs", "country,plan", "--as-of", AS_OF],
    "csv": ["query", "User", "--attrs", "country,plan", "--as-of", AS_OF,
            "--format", "csv", "--output", "{dir}/users.csv"],
    "parquet": ["query", "User", "--attrs", "country, plan", "--ties", "Device_User",
                "--format", "parquet", "--output", "{dir}/users.parquet"],
    "csv-ties": ["query", "User", "--attrs", "plan", "--ties", "Device_User",
                 "--format", "csv", "--output", "{dir}/ties.csv"],
    "json-ties": ["query", "User", "--attrs", "plan", "--ties", "Device_User",
                  "--format", "json", "--output", "{dir}/ties.json"],
    "csv-onto-a-directory": ["query", "User", "--format", "csv", "--output", "{dir}/models"],
    "unknown-attribute": ["query", "User", "--attrs", "country,shoe_size"],
    "unknown-entity": ["query", "Customer", "--attrs", "country"],
    "bad-as-of": ["query", "User", "--as-of", "yesterday noon"],
    "model": ["model"],
}  # fmt: skip


@pytest.fixture
def model(engine: str, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The demo's model, copied once per engine (the query commands prepare it: a writer)."""
    clean = anchored_model(tmp_path_factory)

    def build(root: Path) -> None:
        copy_project(clean, root / "p")
        engines.keep_database(root / "p")

    return load_project(built_once(tmp_path_factory, "query", build) / "p", env=ENV)


_RAN: dict[str, dict[str, CompletedProcess[str]]] = {}


@pytest.fixture
def ran(
    engine: str, model: Project, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, CompletedProcess[str]]:
    """Every command at once, each on its own copy of the warehouse (one writer per file),
    once per engine."""
    if engine not in _RAN:
        base = tmp_path_factory.mktemp(f"runs_{engine}")
        commands = []
        for name, args in COMMANDS.items():
            root = base / name
            copy_project(model.root, root)
            engines.keep_database(root)
            commands.append([a.format(dir=root) for a in args] + ["--project", str(root)])
        _RAN[engine] = dict(zip(COMMANDS, run_concurrently(commands), strict=True))
    return _RAN[engine]


def expected(model: Project, *args: Any, **kwargs: Any) -> pa.Table:
    with Pipeline(model) as pipeline:
        return pipeline.query(*args, **kwargs)


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("│")[1:-1]]


def grid(stdout: str) -> list[list[str]]:
    return [cells(line) for line in stdout.splitlines() if line.startswith("│")]


def test_query_prints_the_attributes_asked_for_as_of_an_instant(
    model: Project, ran: dict[str, CompletedProcess[str]]
) -> None:
    result = ran["table"]
    assert result.returncode == 0, result.stderr
    want = expected(model, "User", ["country", "plan"], as_of=INSTANT)
    assert want.column_names == ["id", "user_id", "country", "plan"]
    header = [line for line in result.stdout.splitlines() if line.startswith("┃")]
    assert [c for c in cells(header[0].replace("┃", "│"))] == want.column_names
    printed = grid(result.stdout)
    assert printed == [
        ["" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in r.values()]
        for r in want.slice(0, 50).to_pylist()
    ]
    assert f"… {want.num_rows - 50:,} more row(s)" in result.stdout
    # Only users known by then are listed, some of them with a country already.
    (users,) = rows(model, 'SELECT count(*) FROM anchor."User"')[0]
    assert any(r[2] for r in printed) and want.num_rows < users


def test_query_as_of_gives_the_value_in_force_then(model: Project) -> None:
    found = expected(model, "User", ["country"], as_of=INSTANT).to_pylist()
    staged = dict(
        rows(model, "SELECT user_id, arg_max(country, event_time) FROM "
             "staging.events WHERE user_id IS NOT NULL AND country IS NOT NULL AND event_time "
             "<= ? GROUP BY user_id", [INSTANT])
    )  # fmt: skip
    assert {r["user_id"]: r["country"] for r in found if r["country"]} == staged
    # Listed: the users known by then (a dated value of theirs at or before it), no one else.
    known = rows(model, "SELECT DISTINCT user_id FROM staging.events WHERE user_id IS NOT NULL "
                 "AND event_time <= ?", [INSTANT])  # fmt: skip
    assert {r["user_id"] for r in found} <= {k for (k,) in known}
    (users,) = rows(model, 'SELECT count(*) FROM anchor."User"')[0]
    assert len(staged) <= len(found) < users  # the others were first seen later


def test_query_exports_csv_and_parquet_with_the_rows_of_pipeline_query(
    model: Project, ran: dict[str, CompletedProcess[str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    as_csv, as_parquet = ran["csv"], ran["parquet"]
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_parquet.returncode == 0, as_parquet.stderr
    csv_path = Path(COMMANDS["csv"][-1].format(dir=Path(as_csv.args[-1])))
    parquet_path = Path(COMMANDS["parquet"][-1].format(dir=Path(as_parquet.args[-1])))

    want = expected(model, "User", ["country", "plan"], as_of=INSTANT)
    read = pa_csv.read_csv(
        csv_path,
        convert_options=pa_csv.ConvertOptions(column_types=want.schema, strings_can_be_null=True),
    )
    assert read.to_pylist() == want.to_pylist()
    assert f"wrote {want.num_rows:,} rows to {csv_path}" in as_csv.stdout

    with_ties = expected(model, "User", ["country", "plan"], ["Device_User"])
    assert with_ties.column_names == ["id", "user_id", "country", "plan", "Device_User"]
    written = pq.read_table(parquet_path)
    assert written.column_names == with_ties.column_names
    assert written.to_pylist() == with_ties.to_pylist()
    devices = [r["Device_User"] for r in with_ties.to_pylist()]
    assert all(isinstance(d, list) and d for d in devices)  # every user came with a device


def test_a_tie_s_list_of_ids_exports_to_csv_and_json_as_the_engine_renders_it(
    model: Project, ran: dict[str, CompletedProcess[str]]
) -> None:
    want = expected(model, "User", ["plan"], ["Device_User"]).to_pylist()
    as_csv, as_json = ran["csv-ties"], ran["json-ties"]
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_json.returncode == 0, as_json.stderr
    root = Path(as_csv.args[-1])
    with (root / "ties.csv").open(newline="") as file:
        read = list(csv.DictReader(file))
    assert [r["Device_User"] for r in read] == [
        "[" + ", ".join(str(i) for i in r["Device_User"]) + "]" for r in want
    ]
    assert [int(r["id"]) for r in read] == [r["id"] for r in want]
    lines = (Path(as_json.args[-1]) / "ties.json").read_text().splitlines()
    assert [json.loads(line) for line in lines] == want
    assert f"wrote {len(want):,} rows to" in as_json.stdout


def test_an_export_that_cannot_be_written_is_one_line_and_leaves_no_file(
    ran: dict[str, CompletedProcess[str]],
) -> None:
    result = ran["csv-onto-a-directory"]
    root = Path(result.args[-1])
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write {root / 'models'}: Is a directory"
    ]
    assert (root / "models").is_dir()
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]  # no partial file left


def test_query_limit_and_default_attributes(model: Project) -> None:
    everything = expected(model, "Device", None)
    assert everything.column_names == ["id", "device_id", "model", "os", "platform"]
    first = expected(model, "Device", None, limit=5)
    assert first.to_pylist() == everything.slice(0, 5).to_pylist()
    assert everything.num_rows > 5


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("unknown-attribute", "error: User has no attribute 'shoe_size' (attributes: country, "
                              "city, app_version, plan, first_platform)"),
        ("unknown-entity", "error: unknown entity 'Customer' (entities: User, Device, Session, "
                           "Campaign)"),
        ("bad-as-of", "error: query: --as-of expects an ISO timestamp such as 2024-03-02T12:00, "
                      "got 'yesterday noon'"),
    ],
)  # fmt: skip
def test_a_bad_query_is_one_line_and_exit_1(
    ran: dict[str, CompletedProcess[str]], name: str, message: str
) -> None:
    result = ran[name]
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [message]
    assert result.stdout == ""


def test_model_prints_every_table_of_the_model_with_its_rows(
    model: Project, ran: dict[str, CompletedProcess[str]]
) -> None:
    result = ran["model"]
    assert result.returncode == 0, result.stderr
    plan = plan_of(model)
    printed = {r[0]: r for r in grid(result.stdout)}
    names = [*plan.entities, *plan.knots, *plan.targets]
    assert len(names) == 19
    assert sorted(printed) == sorted(names)
    for name in names:
        (count,) = rows(model, f'SELECT count(*) FROM anchor."{name}"')[0]
        assert printed[name][4] == f"{count:,}" != "0", name
        assert printed[name][8] == "0", name  # nothing left to anchor
    assert printed["User_country"][1:4] == ["attribute", "scd2 BIGINT knot Country", "events"]
    assert printed["Device_User"][1] == "tie"


# -- the query builder ----------------------------------------------------------------------------


def attribute_tables(plan: AnchorPlan) -> set[str]:
    return {t.table for t in plan.targets.values() if t.kind == "attribute"}


@pytest.mark.parametrize("as_of", [None, INSTANT])
def test_the_query_sql_joins_only_the_attributes_asked_for(model: Project, as_of: Any) -> None:
    """The builder reads the serving table (anchor.User_current); as of an instant, also the
    history of an scd2 attribute, for the users whose value changed after it."""
    plan = plan_of(model)
    sql, params = query_sql(plan, "User", ["country", "plan"], as_of=as_of)
    tables = attribute_tables(plan) | set(plan.targets)
    assert '"User_current"' in sql and "UNION" not in sql
    assert {t for t in tables if f'"{t}"' in sql} == ({"User_country"} if as_of else set())
    assert params == [as_of] * sql.count("?")

    sql, _ = query_sql(plan, "User", ["city"], ["Device_User"])
    named = {t for t in plan.targets if f'"{t}"' in sql}
    assert named == {"Device_User"}  # the city from the serving table, the tie from its own
