"""The server lets go of the warehouse when idle: another process opens the DuckDB file between
the server's runs and reads (dbt, a notebook, `anchorflow status`), and the server's next read
takes it back, or answers 503 naming the holder when it waited `lock_timeout` in vain."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from anchorflow.errors import WarehouseLocked
from anchorflow.run import Pipeline
from anchorflow.serve.app import create_app
from anchorflow.serve.keeper import Keeper
from anchorflow.serve.server import open_warehouse
from anchorflow.serve.web.context import WebContext
from anchorflow.warehouse import Warehouse
from tests import engines
from tests.builders import build_project
from tests.serve.files_project import ITEMS, files_project

pytestmark = pytest.mark.integration

# Another process: opens the file read-only, counts the committed loads, and with `hold`
# keeps it open until its standard input closes.
OTHER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM meta.loads WHERE status = 'committed'").fetchone()[0],
      flush=True)
if sys.argv[2] == "hold":
    sys.stdin.read()
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def loads(warehouse: Warehouse) -> int:
    return int(warehouse.scalar("SELECT count(*) FROM meta.loads WHERE status = 'committed'"))


def other_reads(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", OTHER, str(path), "read"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_idle_server_lets_go_and_takes_it_back(engine: str, tmp_path: Path) -> None:
    project = files_project(tmp_path, files=2)
    owner = open_warehouse(project)
    clock = Clock()
    keeper = Keeper(owner.warehouse, linger=2.0, clock=clock)
    ctx = WebContext(project, owner.warehouse, readers=2, keeper=keeper)
    try:
        with Pipeline(project, warehouse=owner.warehouse) as pipeline:
            pipeline.run()
        assert asyncio.run(ctx.read(loads)) == 2
        clock.now = 1.0
        assert not keeper.let_go_if_idle()  # used 1 s ago: kept
        with keeper.held():
            clock.now = 10.0
            assert not keeper.let_go_if_idle()  # a read in flight: kept
        clock.now = 13.0
        assert keeper.let_go_if_idle()
        assert keeper.releases == 1
        if engine == "duckdb":
            assert owner.warehouse.released
            assert other_reads(project.warehouse_path) == "2"  # the file is free
        assert asyncio.run(ctx.read(loads)) == 2  # taken back by the next read
        assert not owner.warehouse.released
        with Pipeline(project, warehouse=owner.warehouse) as pipeline:  # and written again
            assert pipeline.run().rows == 0
    finally:
        ctx.close()
        owner.close()


def test_a_read_while_another_process_holds_the_file_answers_503(
    engine: str, tmp_path: Path
) -> None:
    if engine != "duckdb":
        pytest.skip("a database server has no file to hold")
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "part-0.ndjson").write_text('{"id": "a", "n": 1}\n')
    warehouse = {**engines.warehouse_settings(tmp_path), "lock_timeout": "1s"}
    source = {"kind": "files", "path": "landing/*.ndjson", "format": "ndjson"}
    project = build_project(
        tmp_path, sources={"drops": source}, staging={"items": ITEMS}, warehouse=warehouse
    )
    owner = open_warehouse(project)
    with Pipeline(project, warehouse=owner.warehouse) as pipeline:
        pipeline.run()
    clock = Clock()
    keeper = Keeper(owner.warehouse, linger=0.0, clock=clock)
    ctx = WebContext(project, owner.warehouse, readers=1, keeper=keeper)
    app = create_app(project, web=ctx)
    other = subprocess.Popen(
        [sys.executable, "-c", OTHER, str(project.warehouse_path), "hold"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert keeper.let_go_if_idle()
        assert other.stdout is not None and other.stdout.readline().strip() == "1"
        with pytest.raises(WarehouseLocked):
            asyncio.run(ctx.read(loads))

        async def ask() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.get("/api/health")

        answer = asyncio.run(ask())
        assert answer.status_code == 503
        assert "in use by PID" in answer.json()["error"]
        other.communicate("", timeout=60)  # the other process lets go
        assert asyncio.run(ctx.read(loads)) == 1
        assert asyncio.run(ask()).status_code == 200
    finally:
        if other.poll() is None:
            other.kill()
        ctx.close()
        owner.close()
