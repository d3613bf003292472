"""The engines the suite runs on: embedded DuckDB, and PostgreSQL in a throwaway cluster
(`initdb`/`pg_ctl` on a free loopback port, started at the first test that needs it and stopped
when the session ends). Each project a test builds on PostgreSQL gets its own database, dropped
after the test, as each DuckDB project gets its own file; on Spark (local mode, one JVM per
xdist worker, started at the first test that needs it), its own lake and journal file.

Spark runs only when ANCHORFLOW_TEST_ENGINES names it or is unset, and only the tests of the
steps it runs (`SPARK_STEPS`, `SPARK_TESTS`): the others skip naming the step it lacks."""

from __future__ import annotations

import atexit
import hashlib
import os
from pathlib import Path
from typing import Any

from anchorflow.dev.postgres import LocalPostgres

ENGINES = ("duckdb", "postgres", "spark")
_cluster: LocalPostgres | None = None
_created: list[str] = []
current = "duckdb"  # the engine the projects a test builds use (set by the `engine` fixture)
# Engines the stage step runs on (issue 12 ports it in its own branch): on the others,
# `make_project` builds projects without staging models and `needs_staging` skips a test that
# asserts on staged rows. Add "postgres" once the stage step runs there.
STAGING_ON = ("duckdb", "postgres", "spark")


# The steps the Spark engine runs (issue 18). Its tests are slow (a JVM, Spark's planning for
# every statement): the suite runs the files of `SPARK_TESTS` on Spark, and with
# ANCHORFLOW_SPARK_ALL=1 every test of the steps it runs. The anchor step's own test on Spark
# (tests/anchor/test_engines_anchor.py: about 2 min alone, 4-5 min beside the other tests) is
# one of those: with it the whole run took 29-31 min of CI's 30 on two cores. Its UPDATE is
# in test_contract.py, which runs here.
SPARK_STEPS = ("land", "stage", "anchor", "marts", "fraud", "serve")
SPARK_TESTS = (
    "tests/warehouse/test_contract.py",
    "tests/warehouse/test_spark_offload.py",  # statements the journal runs for Spark
    "tests/warehouse/test_spark_session.py",  # the project's Spark settings
    "tests/pipeline/test_spark_land.py",  # land + stage against DuckDB, the crash tests
    "tests/test_marts_engines.py",  # marts: builds, views kept across rebuilds, export
    "tests/fraud/test_rules.py",  # every rule of the catalogue flags the same as on DuckDB
)
# The step a test file needs, by where it lives (for the reason a test skips on Spark).
_STEP_OF = (("tests/anchor/", "anchor"), ("tests/fraud/", "fraud"), ("tests/test_mart", "marts"),
            ("tests/serve/", "serve"), ("tests/dashboards/", "marts"), ("tests/metrics/", "marts"),
            ("tests/stage/", "stage"))  # fmt: skip


def spark_skip_reason(test_file: str) -> str | None:
    """Why a test of `test_file` (relative to the repository) does not run on Spark, or None."""
    if test_file in SPARK_TESTS:
        return None
    step = next((s for prefix, s in _STEP_OF if test_file.startswith(prefix)), "land")
    if step not in SPARK_STEPS:
        return f"the {step} step does not run on spark yet (it runs {', '.join(SPARK_STEPS)})"
    if os.environ.get("ANCHORFLOW_SPARK_ALL") == "1":
        return None
    return "on spark with ANCHORFLOW_SPARK_ALL=1 only (the suite runs tests/engines.SPARK_TESTS)"


# Engines the marts step runs on.
MARTS_ON = ("duckdb", "postgres", "spark")


def marts_ported() -> bool:
    return current in MARTS_ON


def staging_ported() -> bool:
    return current in STAGING_ON


def cluster() -> LocalPostgres:
    global _cluster
    if _cluster is None:
        _cluster = LocalPostgres().start()
        atexit.register(_cluster.stop)
    return _cluster


def _name(root: Path) -> str:
    return "af_" + hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:20]


def database_for(root: Path) -> str:
    """The DSN of the database of the project in `root`, created empty the first time."""
    name = _name(root)
    pg = cluster()
    if name not in _created:
        pg.create_database(name)
        _created.append(name)
    return pg.dsn(name)


def warehouse_settings(root: Path) -> dict[str, Any]:
    """The project file's `warehouse:` for a project in `root` on the current engine."""
    if current == "postgres":
        return {"engine": "postgres", "dsn": database_for(root)}
    if current == "spark":
        return {"engine": "spark", "master": "local[2]"}
    return {"path": "warehouse.duckdb"}


def drop_databases() -> None:
    """Drop the databases the test made (their connections closed or not)."""
    if _cluster is None or not _created:
        return
    import psycopg

    with psycopg.connect(_cluster.dsn(), autocommit=True) as con:
        for name in _created:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _created.clear()


def enabled() -> tuple[str, ...]:
    """Engines to run: all, or those named in ANCHORFLOW_TEST_ENGINES (e.g. `duckdb`)."""
    chosen = os.environ.get("ANCHORFLOW_TEST_ENGINES")
    return tuple(
        e for e in ENGINES if (not chosen or e in chosen.split(",")) and _installed(e)
    )  # fmt: skip


def _installed(engine: str) -> bool:
    if engine != "spark":
        return True
    import importlib.util
    import shutil

    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


# -- copies of a built warehouse (the anchor tests) -------------------------------------------


def keep_database(root: Path) -> None:
    """Keep the database of the project in `root` after the test (a project built once per
    session and copied by the tests); the cluster goes with the session anyway."""
    if _name(root) in _created:
        _created.remove(_name(root))


def clone_database(source: Path, root: Path) -> str:
    """The DSN of a new database for the project in `root`, a copy of the one of `source`
    (no one may be connected to it), dropped after the test."""
    import psycopg

    name, pg = _name(root), cluster()
    with psycopg.connect(pg.dsn(), autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_name(source)}"')
    if name not in _created:
        _created.append(name)
    return pg.dsn(name)
