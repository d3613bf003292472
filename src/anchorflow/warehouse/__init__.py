"""Warehouse adapters behind one interface; `connect` picks the engine named in the project."""

from __future__ import annotations

from anchorflow.config.project import Project
from anchorflow.warehouse.base import Capabilities, Warehouse, ident, literal, table

__all__ = ["Capabilities", "Warehouse", "connect", "connect_scratch", "ident", "literal", "table"]


def connect(project: Project) -> Warehouse:
    from anchorflow.warehouse.duckdb import DuckDBWarehouse

    settings = project.warehouse
    return DuckDBWarehouse(
        project.warehouse_path, settings.threads, settings.memory_limit, settings.storage_version
    )


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
