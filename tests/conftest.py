"""Shared fixtures: a real Amplitude emulator on loopback, small projects that load from it (all
written by tests/builders.py), and a fresh warehouse."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore
from anchorflow.dev.synth.amplitude import SynthSpec
from anchorflow.run import Pipeline
from anchorflow.stage.tables import prepare_tables
from anchorflow.warehouse import Warehouse
from tests import engines
from tests.builders import (
    API_KEY,
    ENV,
    SECRET_KEY,
    START,
    amplitude_source,
    build_project,
    open_warehouse,
    project_data,
)

__all__ = ["API_KEY", "SECRET_KEY", "START"]
SMALL = SynthSpec(seed=7, events_per_hour=120, users=300)
# The Amplitude source's cursor, the next hour to load, as a timestamp.
NEXT_HOUR = (
    "SELECT CAST(strptime(CAST(cursor AS JSON)->>'next_hour', '%Y%m%dT%H') AS TIMESTAMP) "
    "FROM meta.cursors"
)


def hour(n: int) -> datetime:
    """The n-th hour after START."""
    return START + timedelta(hours=n)


def available_at(n_hours: int, delay_hours: int = 2) -> datetime:
    """A clock at which exactly the first `n_hours` hours are closed and available."""
    return START + timedelta(hours=n_hours + delay_hours)


def _engine_params() -> list[Any]:
    return [
        pytest.param(e, marks=[pytest.mark.slow, pytest.mark.integration]) if e == "spark" else e
        for e in engines.enabled()
    ]


@pytest.fixture(scope="session")
def spark_jvm(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The process's Spark (local[2], small shuffles, no UI), started once per xdist worker;
    each warehouse takes a session of it."""
    from pyspark.sql import SparkSession

    from anchorflow.warehouse.spark.session import spark_session

    scratch = tmp_path_factory.mktemp("spark")
    builder = SparkSession.builder.master("local[2]")
    for key, value in {
        # the tests' tables are tiny: one shuffle partition, no adaptive re-planning (about
        # 15% less time per statement than 4 partitions with AQE)
        "spark.sql.shuffle.partitions": "1",
        "spark.sql.adaptive.enabled": "false",
        "spark.default.parallelism": "2",
        "spark.driver.memory": "1g",
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.local.dir": str(scratch / "tmp"),
    }.items():
        builder = builder.config(key, value)
    spark_session("local[2]", builder)
    return SparkSession.getActiveSession()


@pytest.fixture(params=_engine_params())
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on each engine: the projects it builds use this one (see tests/engines.py)."""
    if request.param == "spark":
        test_file = str(request.node.path.relative_to(Path(__file__).resolve().parents[1]))
        reason = engines.spark_skip_reason(test_file)
        if reason:
            pytest.skip(reason)
        request.getfixturevalue("spark_jvm")
    engines.current = request.param
    try:
        yield request.param
    finally:
        engines.current = "duckdb"
        engines.drop_databases()


def needs_staging() -> None:
    """Skip the test on an engine the stage step does not run on yet (`engines.STAGING_ON`)."""
    if not engines.staging_ported():
        pytest.skip(f"the stage step does not run on {engines.current} yet")


@pytest.fixture
def emulator() -> Iterator[AmplitudeEmulator]:
    """48 hours of small, deterministic traffic, generated on demand."""
    store = ExportStore(START, START + timedelta(hours=48), spec=SMALL)
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as running:
        yield running


def project_dict(base_url: str, **source: Any) -> dict[str, Any]:
    """The usual test project as data: the demo-like Amplitude source (`source` overrides its
    settings) and `staging.events`."""
    return project_data(sources={"amplitude": amplitude_source(base_url, **source)})


# The demo project's sources that the tests' own emulator serves; `qa` (MaestroQA) and
# `accounts` (DynamoDB) are loaded by the demo tests that start their servers.
DEMO_FEEDS = ("amplitude", "costs", "backend")
DEMO_ENV = {"MAESTROQA_API_TOKEN": ENV["MAESTROQA_API_TOKEN"]}


@pytest.fixture(autouse=True)
def amplitude_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMPLITUDE_API_KEY", API_KEY)
    monkeypatch.setenv("AMPLITUDE_SECRET_KEY", SECRET_KEY)
    for name, value in DEMO_ENV.items():  # the demo project's grading source
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ANCHORFLOW_CRASH_AT", raising=False)


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    """Write a project into a fresh directory and load it: make_project(base_url, **source)."""
    counter = iter(range(1000))

    def make(base_url: str, mart_sql: str | None = None, **source: Any) -> Project:
        root = tmp_path / f"project{next(counter)}"
        sources = {"amplitude": amplitude_source(base_url, **source)}
        staging = None if engines.staging_ported() else {}
        marts = {"daily": mart_sql} if mart_sql else None
        return build_project(root, sources=sources, staging=staging, marts=marts)

    return make


@pytest.fixture
def warehouse(engine: str, tmp_path: Path) -> Iterator[Warehouse]:
    """A fresh warehouse of each engine, its journal made, closed after the test."""
    project = build_project(tmp_path / "warehouse_project")
    with open_warehouse(project) as opened:
        yield opened


def run_demo_feeds(project: Project, now: datetime) -> Any:
    """A run of the demo project's `DEMO_FEEDS`: the tables of its other sources are made empty
    (its grading mart reads them), their servers never contacted."""
    with Pipeline(project, now=now) as pipeline:
        for source, stream in project.streams():
            if source not in DEMO_FEEDS:
                prepare_tables(pipeline.warehouse, project, source, stream)
        return pipeline.run(DEMO_FEEDS)


def run_pipeline(project: Project, now: datetime) -> Any:
    with Pipeline(project, now=now) as pipeline:
        return pipeline.run()


def table_rows(where: Project | Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Read from a warehouse with a separate, read-only connection (what a user would see):
    a project's warehouse on its engine, or a DuckDB file."""
    if isinstance(where, Project):
        from anchorflow.warehouse import connect

        with connect(where, read_only=True) as reader:
            return reader.query(sql)
    path = where
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def env_without_crash() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "ANCHORFLOW_CRASH_AT"}


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A real redis-server for the session (free loopback port, own directory, no persistence):
    its URL, `redis://127.0.0.1:PORT/0`."""
    from anchorflow.dev.redis_server import LocalRedis

    with LocalRedis() as server:
        yield server.url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied (FLUSHALL) for this test."""
    import redis

    client = redis.Redis.from_url(redis_server, socket_timeout=10)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server
