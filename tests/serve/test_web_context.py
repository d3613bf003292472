"""The pages' reads: cursors of the connection the server holds, each seeing the last commit,
made again when the connection was reopened (a compaction rewrites a DuckDB file)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from anchorflow.run import Pipeline
from anchorflow.serve.server import open_warehouse
from anchorflow.serve.web.context import WebContext
from anchorflow.warehouse import Warehouse
from tests.serve.files_project import files_project

pytestmark = pytest.mark.integration


def loads(warehouse: Warehouse) -> int:
    return int(warehouse.scalar("SELECT count(*) FROM meta.loads WHERE status = 'committed'"))


def test_reads_see_the_last_commit_and_survive_a_reopen(engine: str, tmp_path: Path) -> None:
    project = files_project(tmp_path, files=3)
    owner = open_warehouse(project)
    ctx = WebContext(project, owner.warehouse, readers=2)
    try:
        ctx.open()
        assert asyncio.run(ctx.read(loads)) == 0
        with Pipeline(project, warehouse=owner.warehouse) as pipeline:
            pipeline.run()
        assert asyncio.run(ctx.read(loads)) == 3  # a cursor made before the run sees it
        if engine == "duckdb":
            before = owner.warehouse.opens
            owner.warehouse.rewrite()  # closes the connection, and its cursors with it
            assert owner.warehouse.opens == before + 1
        for _ in range(3):  # every cursor of the pool, made again when stale
            assert asyncio.run(ctx.read(loads)) == 3
    finally:
        ctx.close()
        owner.close()
