"""`anchorflow dbt-sources` and the dbt example (examples/dbt_product_analytics): dbt-duckdb
builds models and runs tests on the demo warehouse from the generated sources.yml, and a DuckDB
1.4 client (the long-term release, in the same environment) reads the file.

The dbt environment is `.venv-dbt` (requirements/dbt.lock), which `make test` builds and names
in ANCHORFLOW_DBT_VENV; outside make, the tests that need it are skipped when it is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from anchorflow.config import Project
from anchorflow.errors import ConfigError
from anchorflow.publish.dbt import dbt_sources
from anchorflow.warehouse import connect
from tests.builders import ENV
from tests.conftest import table_rows
from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "dbt_product_analytics"


@pytest.fixture(scope="module")
def dbt_venv() -> Path:
    configured = os.environ.get("ANCHORFLOW_DBT_VENV")
    venv = Path(configured) if configured else ROOT / ".venv-dbt"
    if not (venv / "bin" / "dbt").exists():
        if configured:  # `make test` built it: its absence is a failure, not a skip
            pytest.fail(f"ANCHORFLOW_DBT_VENV={configured} holds no dbt")
        pytest.skip("no .venv-dbt: `make test` builds it from requirements/dbt.lock")
    return venv


@pytest.mark.integration
def test_the_example_sources_yml_is_what_dbt_sources_writes_for_the_demo(demo: Project) -> None:
    with connect(demo) as warehouse:
        written = dbt_sources(warehouse, demo)
    assert written == (EXAMPLE / "models" / "sources.yml").read_text(), (
        "the demo project changed: regenerate examples/dbt_product_analytics/models/sources.yml "
        "with `anchorflow dbt-sources -p examples/product_analytics -o ...` after `make demo`"
    )


@pytest.mark.integration
def test_sources_describe_the_warehouse_with_the_project_descriptions(demo: Project) -> None:
    with connect(demo) as warehouse:
        text = dbt_sources(warehouse, demo, ["raw", "staging"], database="analytics")
    document = yaml.safe_load(text)
    assert document["version"] == 2
    raw, staging = document["sources"]
    assert (raw["name"], raw["schema"], raw["database"]) == ("raw", "raw", "analytics")
    assert [t["name"] for t in raw["tables"]] == [
        "accounts_users",  # empty: the demo's DynamoDB and MaestroQA servers are not started
        "amplitude_events",
        "app_events",  # the marketing traffic's three files sources: empty here
        "backend_events",
        "backend_payments",
        "clicks_clicks",
        "costs_daily",
        "qa_groups",
        "qa_total_scores",
        "signups_registrations",
    ]
    events = next(t for t in staging["tables"] if t["name"] == "events")
    assert events["description"] == demo.staging["events"].description
    columns = {c["name"]: c for c in events["columns"]}
    assert list(columns)[:3] == ["load_id", "event_uuid", "insert_id"]  # the warehouse's order
    assert columns["event_type"]["description"] == (
        demo.staging["events"].columns["event_type"].description
    )
    assert columns["event_time"]["data_type"] == "TIMESTAMP"
    assert columns["event_uuid"]["data_tests"] == ["unique", "not_null"]  # the unique_key
    assert "description" not in columns["insert_id"]
    with connect(demo) as warehouse, pytest.raises(ConfigError, match="unknown schema 'meta'"):
        dbt_sources(warehouse, demo, ["meta"])


@pytest.mark.slow
def test_dbt_builds_the_example_project_on_the_generated_sources(
    demo: Project, dbt_venv: Path, tmp_path: Path
) -> None:
    project = tmp_path / "dbt"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("target", "logs"))
    sources = project / "models" / "sources.yml"
    sources.unlink()
    written = cli("dbt-sources", "--project", str(demo.root), "--output", str(sources), env=ENV)
    assert written.returncode == 0, written.stderr
    env = {
        **os.environ,
        "ANCHORFLOW_WAREHOUSE": str(demo.warehouse_path),
        "DBT_DUCKDB_PATH": str(tmp_path / "dbt.duckdb"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "NO_COLOR": "1",
    }
    built = subprocess.run(
        [str(dbt_venv / "bin" / "dbt"), "build", "--project-dir", str(project),
         "--profiles-dir", str(project)],
        cwd=project, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert set(statuses.values()) <= {"success", "pass"}
    assert sum(uid.startswith("model.") for uid in statuses) == 3
    assert sum(uid.startswith("test.") for uid in statuses) >= 20  # the sources' and the models'
    # dbt built its models in its own file and left the warehouse as it was.
    assert table_rows(tmp_path / "dbt.duckdb", "SELECT sum(events) FROM daily_active_users") == (
        table_rows(demo.warehouse_path, "SELECT count(*) FROM staging.events")
    )


READER = """
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
print(json.dumps({
    "version": duckdb.__version__,
    "events": con.execute("SELECT count(*) FROM staging.events").fetchone()[0],
    "daily": con.execute("SELECT sum(events) FROM marts.daily_active_users").fetchone()[0],
    "users": con.execute('SELECT count(*) FROM anchor."User_latest"').fetchone()[0],
    "comment": con.execute(
        "SELECT comment FROM duckdb_columns() WHERE schema_name = 'staging' "
        "AND table_name = 'events' AND column_name = 'event_type'").fetchone()[0],
}))
"""


@pytest.mark.slow
def test_a_duckdb_1_4_client_reads_the_warehouse_file(demo: Project, dbt_venv: Path) -> None:
    read = subprocess.run(
        [str(dbt_venv / "bin" / "python"), "-c", READER, str(demo.warehouse_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    seen = json.loads(read.stdout)
    assert seen["version"].startswith("1.4.")
    (events,) = table_rows(demo.warehouse_path, "SELECT count(*) FROM staging.events")
    assert seen["events"] == seen["daily"] == events[0] > 0
    assert seen["users"] > 0
    assert seen["comment"] == demo.staging["events"].columns["event_type"].description
