"""Warehouse adapters behind one interface; `connect` picks the engine named in the project."""

from __future__ import annotations

from anchorflow.project import Project
from anchorflow.warehouse.base import Capabilities, Warehouse, ident, literal, table

__all__ = ["Capabilities", "Warehouse", "connect", "ident", "literal", "table"]


def connect(project: Project) -> Warehouse:
    from anchorflow.warehouse.duckdb import DuckDBWarehouse

    settings = project.warehouse
    return DuckDBWarehouse(project.warehouse_path, settings.threads, settings.memory_limit)
