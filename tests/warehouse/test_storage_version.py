"""The storage format of the warehouse file: new files readable by DuckDB's long-term release
(`warehouse.storage_version`), existing files kept as they are, rewrites in the configured one."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchorflow.config.project import LTS_STORAGE_VERSION
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.run import check_project
from anchorflow.warehouse import Warehouse, connect
from tests.builders import build_project

pytestmark = pytest.mark.integration


def storage_of(warehouse: Warehouse) -> str:
    tags = warehouse.scalar(
        "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = 'warehouse'"
    )
    return str(tags)


def test_a_new_warehouse_file_is_readable_by_the_long_term_release(tmp_path: Path) -> None:
    with connect(build_project(tmp_path)) as warehouse:
        assert storage_of(warehouse) == f"{LTS_STORAGE_VERSION}+"


def test_an_existing_file_keeps_the_storage_version_it_was_created_with(tmp_path: Path) -> None:
    with connect(build_project(tmp_path, warehouse={"storage_version": "latest"})) as warehouse:
        newest = storage_of(warehouse)
        warehouse.execute("CREATE TABLE t AS SELECT 1 AS a")
    assert newest != f"{LTS_STORAGE_VERSION}+"
    # Opened with the default (older) setting: neither refused nor rewritten.
    with connect(build_project(tmp_path)) as warehouse:
        assert storage_of(warehouse) == newest
        assert warehouse.scalar("SELECT a FROM t") == 1


def test_an_older_file_is_not_upgraded_by_a_newer_setting(tmp_path: Path) -> None:
    with connect(build_project(tmp_path)) as warehouse:
        warehouse.execute("CREATE TABLE t AS SELECT 1 AS a")
    with connect(build_project(tmp_path, warehouse={"storage_version": "latest"})) as warehouse:
        warehouse.execute("INSERT INTO t VALUES (2)")
        warehouse.execute("CHECKPOINT")
        assert storage_of(warehouse) == f"{LTS_STORAGE_VERSION}+"


def test_compact_rewrites_the_file_in_the_configured_storage_version(tmp_path: Path) -> None:
    with connect(build_project(tmp_path, warehouse={"storage_version": "latest"})) as warehouse:
        warehouse.execute("CREATE TABLE t AS SELECT range AS a FROM range(1000)")
    with connect(build_project(tmp_path)) as warehouse:
        warehouse.rewrite()
        assert storage_of(warehouse) == f"{LTS_STORAGE_VERSION}+"
        assert warehouse.scalar("SELECT count(*) FROM t") == 1000


@pytest.mark.parametrize("version", ["1.4.0", "v1.4", "newest", ""])
def test_a_malformed_storage_version_is_refused_naming_the_key(
    tmp_path: Path, version: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        build_project(tmp_path, warehouse={"storage_version": version})
    (line,) = raised.value.problems
    assert "warehouse.storage_version" in line
    assert "v1.4.0" in line


def test_a_storage_version_duckdb_does_not_know_is_one_line(tmp_path: Path) -> None:
    project = build_project(tmp_path, warehouse={"storage_version": "v1.99.0"})
    with pytest.raises(WarehouseError) as by_validate:
        check_project(project)  # `validate`: without touching the warehouse
    with pytest.raises(WarehouseError) as by_open:
        connect(project)
    for error in (by_validate.value, by_open.value):
        assert str(error).startswith("warehouse.storage_version: DuckDB ")
        assert "'v1.99.0'" in str(error) and "\n" not in str(error)
    assert not project.warehouse_path.exists()
