"""The same project on the same data gives the same warehouse on DuckDB and on PostgreSQL.

The demo project (examples/product_analytics: its staging models, anchor model and marts, as
they are) loads six hours of the tests' small synthetic Amplitude traffic from the emulator and
a day of cost files, once on each engine. Every staging table, every anchor perspective and
every mart is then compared by an order-independent checksum of its normalised rows
(tests/checksums.py). Surrogate ids are the one thing engines may number differently: the
perspectives are compared on natural keys instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from anchorflow.anchor.plan import build_plan
from anchorflow.config import Project, load_project
from anchorflow.dev.synth.costs import write_cost_files
from anchorflow.marts import discover
from anchorflow.warehouse import connect
from tests import engines
from tests.anchor.pipeline_project import emulator_running
from tests.builders import ENV
from tests.checksums import TableSum, checksum, difference, table_sums
from tests.conftest import DEMO_FEEDS, START, available_at, run_demo_feeds

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[1] / "examples" / "product_analytics"
HOURS = 6


def demo_on(engine: str, root: Path, base_url: str) -> Project:
    """A copy of the demo project in `root` on `engine`, reading the emulator at `base_url`."""
    made = ("*.duckdb*", ".env", ".data", ".anchorflow", ".postgres", "exports")  # by make demo
    ignored = shutil.ignore_patterns(*made)
    shutil.copytree(DEMO, root, ignore=ignored)
    write_cost_files(root / ".data" / "costs", START, days=1)
    env = {**os.environ, **ENV, "AMPLITUDE_BASE_URL": base_url}
    if engine == "postgres":  # the demo's project file takes its warehouse from these
        env.update(ANCHORFLOW_ENGINE="postgres", ANCHORFLOW_DEMO_DSN=engines.database_for(root))
    return load_project(root, env=env)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Project]]:
    """The demo loaded on each engine: {"duckdb": project, "postgres": project}."""
    if "postgres" not in engines.enabled():
        pytest.skip("PostgreSQL is not among ANCHORFLOW_TEST_ENGINES")
    projects: dict[str, Project] = {}
    try:
        with emulator_running() as emulator:
            for engine in engines.ENGINES:
                root = tmp_path_factory.mktemp(engine) / "demo"
                project = demo_on(engine, root, emulator.base_url)
                run_demo_feeds(project, available_at(HOURS))
                projects[engine] = project
        yield projects
    finally:
        engines.drop_databases()


def _agree(sums: dict[str, TableSum], name: str) -> None:
    digests = {engine: s.digest for engine, s in sums.items()}
    assert len(set(digests.values())) == 1, f"{name}: {difference(sums)}"


def test_staging_tables_agree(loaded: dict[str, Project]) -> None:
    project = loaded["duckdb"]
    rows = 0
    for name in project.staging:
        sums = table_sums(loaded, "staging", name)
        _agree(sums, f"staging.{name}")
        rows += sums["duckdb"].rows
    assert rows > 400  # the data is there to compare (446 events in six hours)


def test_anchor_perspectives_agree(loaded: dict[str, Project]) -> None:
    """Each entity's latest perspective (its natural key instead of the surrogate id), and its
    history perspective with each row's natural key."""
    plan = build_plan(loaded["duckdb"])
    assert plan.entities
    for entity in plan.entities:
        latest = table_sums(loaded, "anchor", f"{entity}_latest", drop=["id"])
        _agree(latest, f'anchor."{entity}_latest"')
        models = loaded["duckdb"].staging
        if all(models[m].source in DEMO_FEEDS for m in plan.entities[entity].sources):
            assert latest["duckdb"].rows > 0  # Account: the users table, not started here
        history = _history_sums(loaded, entity, plan.entities[entity].key)
        _agree(history, f'anchor."{entity}_history"')


def _history_sums(projects: dict[str, Project], entity: str, key: list[str]) -> dict[str, TableSum]:
    keys = ", ".join(f'e."{k}"' for k in key)
    sql = (
        f"SELECT {keys}, h.attribute, h.history, h.value, h.changed_at, h.load_id "
        f'FROM anchor."{entity}_history" AS h JOIN anchor."{entity}" AS e ON e.id = h.id'
    )
    columns = [*key, "attribute", "history", "value", "changed_at", "load_id"]
    sums = {}
    for engine, project in projects.items():
        with connect(project, read_only=True) as reader:
            sums[engine] = checksum(reader, sql, columns, {})
    return sums


def test_marts_agree(loaded: dict[str, Project]) -> None:
    marts = discover(loaded["duckdb"])
    assert {"daily_active_users", "revenue_by_country", "cost_per_user"} <= set(marts)
    for name in marts:
        sums = table_sums(loaded, "marts", name)
        _agree(sums, f"marts.{name}")
        if name != "grading":  # the grading exports' emulator is not started here
            assert sums["duckdb"].rows > 0
