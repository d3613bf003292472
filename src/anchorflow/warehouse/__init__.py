"""Warehouse adapters behind one interface; `connect` picks the engine named in the project."""

from __future__ import annotations

from collections.abc import Callable

from anchorflow.config.project import Project
from anchorflow.warehouse.base import Capabilities, Warehouse, ident, literal, table

__all__ = ["Capabilities", "Warehouse", "connect", "connect_scratch", "ident", "literal", "table"]


def connect(
    project: Project,
    read_only: bool = False,
    lazy: bool = False,
    on_open: Callable[[Warehouse], None] | None = None,
) -> Warehouse:
    """The project's warehouse. `read_only`: never created, never written, shared with other
    readers. `lazy`: opened at the first statement. `on_open` runs after every open (see
    `Warehouse.release`)."""
    settings = project.warehouse
    if settings.engine == "postgres":
        from anchorflow.warehouse.postgres import PostgresWarehouse

        assert settings.dsn is not None  # the config requires it
        return PostgresWarehouse(
            settings.dsn, read_only=read_only, lock_timeout=settings.lock_timeout.total_seconds(),
            lazy=lazy, on_open=on_open,
        )  # fmt: skip
    if settings.engine == "spark":
        from anchorflow.warehouse.spark import SparkWarehouse

        return SparkWarehouse(
            project.lake_path, project.journal_path, settings.master or "local[2]",
            read_only=read_only, lock_timeout=settings.lock_timeout.total_seconds(), lazy=lazy,
            on_open=on_open, conf=settings.conf,
        )  # fmt: skip
    from anchorflow.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(
        project.warehouse_path, settings.threads, settings.memory_limit, settings.storage_version,
        read_only=read_only,
        lock_timeout=settings.lock_timeout.total_seconds(), lazy=lazy, on_open=on_open,
    )  # fmt: skip


def connect_scratch(project: Project) -> Warehouse:
    """An empty, in-memory warehouse of the project's engine, for checks that must run on the
    engine without touching the warehouse itself (`validate`), nor any file or URL that a
    mart's SQL names."""
    from anchorflow.warehouse.duckdb import DuckDBWarehouse

    # With the project's storage version, so `validate` refuses one the engine does not know.
    return DuckDBWarehouse(
        ":memory:",
        threads=1,
        storage_version=project.warehouse.storage_version,
        external_access=False,
    )
