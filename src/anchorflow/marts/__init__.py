"""Analyst models: every `models/<name>.sql` SELECT becomes the table `marts.<name>`.

Dependencies are found by parsing the SQL with sqlglot (a reference to `marts.<other>`), so
models build in dependency order without any configuration; a cycle is a configuration error.
`validate` binds every mart on an empty warehouse that has every table the project makes
(`binding_problems`), so a table or column it reads that is not there is found before a run; a
mart that fails in a run is named by its file.
"""

from __future__ import annotations

import graphlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlglot

from anchorflow.config.descriptions import mart_docs
from anchorflow.config.marts import mart_files, marts_read
from anchorflow.config.project import Project
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.warehouse import Warehouse, table
from anchorflow.warehouse.comments import apply_comments

# What the engine says when a query reads a table, column or function that is not there
# (DuckDB's exception names); other failures (a file it may not read here) are not the mart's.
BINDING_ERRORS = ("CatalogException", "BinderException")
# Where a mart's new rows wait while views depend on its table (`replace_mart`).
NEXT = "af__next_mart"


@dataclass(frozen=True)
class MartModel:
    name: str
    path: Path
    sql: str
    depends_on: frozenset[str]


@dataclass(frozen=True)
class BuiltMart:
    name: str
    rows: int
    seconds: float


def discover(project: Project) -> dict[str, MartModel]:
    if not project.marts_path.is_dir():
        return {}
    texts = {name: (p, p.read_text()) for name, p in mart_files(project.marts_path).items()}
    models = {}
    for name, (path, sql) in texts.items():
        refs = marts_read(sqlglot.parse_one(sql, dialect="duckdb"), list(texts))
        models[name] = MartModel(name, path, sql.strip().rstrip(";"), frozenset(refs))
    return models


def build_order(models: dict[str, MartModel]) -> list[str]:
    graph = {name: set(model.depends_on) for name, model in models.items()}
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        cycle = " → ".join(error.args[1])
        raise ConfigError([f"marts: models depend on each other in a cycle: {cycle}"]) from None


def build_marts(warehouse: Warehouse, project: Project) -> list[BuiltMart]:
    """(Re)build every mart in dependency order, all in one transaction."""
    models = discover(project)
    built = []
    with warehouse.transaction():
        warehouse.create_schema("marts")
        for name in build_order(models):
            started = time.perf_counter()
            target = table("marts", name)
            try:
                replace_mart(warehouse, name, models[name].sql)
            except WarehouseError as error:
                raise WarehouseError(f"{_where(project, models[name])}: {error}") from error
            rows = int(warehouse.scalar(f"SELECT count(*) FROM {target}"))
            built.append(BuiltMart(name, rows, time.perf_counter() - started))
        # Rebuilt tables start without comments: the file's header comment describes each.
        apply_comments(warehouse, "marts", mart_docs(project))
    return built


def replace_mart(warehouse: Warehouse, name: str, sql: str) -> None:
    """`marts.<name>` rebuilt from `sql`. Where views depend on the table and the engine would
    refuse to drop it under them (PostgreSQL: a BI tool's or an analyst's view on a mart), its
    rows are replaced in place instead, so those views survive (and readers keep seeing the
    last commit meanwhile); when the mart's columns change under such views, the error names
    them."""
    target = table("marts", name)
    query = warehouse.sql.dependent_views()
    views = warehouse.query(query, ["marts", name]) if query else []
    if not views:
        warehouse.execute(warehouse.sql.create_or_replace_table(target, sql))
        return
    scratch = table("marts", NEXT)
    warehouse.execute(warehouse.sql.create_or_replace_table(scratch, sql))
    if _columns(warehouse, name) != _columns(warehouse, NEXT):
        shown = ", ".join(f"{schema}.{view}" for schema, view in views)
        raise WarehouseError(
            f"its columns changed, and views depend on marts.{name} ({shown}): drop them "
            "(they are not anchorflow's) or keep the mart's columns and types"
        )
    warehouse.execute(f"DELETE FROM {target}")
    warehouse.execute(f"INSERT INTO {target} SELECT * FROM {scratch}")
    warehouse.execute(f"DROP TABLE {scratch}")


def _columns(warehouse: Warehouse, name: str) -> list[tuple[object, ...]]:
    return warehouse.query(
        "SELECT column_name, data_type, numeric_precision, numeric_scale, "
        "character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = 'marts' AND table_name = ? ORDER BY ordinal_position",
        [name],
    )


def binding_problems(warehouse: Warehouse, project: Project) -> list[str]:
    """One line per mart whose SQL the engine cannot bind, naming its file: run on an empty
    scratch warehouse that has every table the project makes. A mart that reads one that
    failed is not reported again."""
    models = discover(project)
    warehouse.create_schema("marts")
    problems: list[str] = []
    skipped: set[str] = set()
    for name in build_order(models):
        model = models[name]
        if model.depends_on & skipped:
            skipped.add(name)
            continue
        try:
            warehouse.execute(
                f"CREATE TABLE {table('marts', name)} AS SELECT * FROM ({model.sql}) LIMIT 0"
            )
        except WarehouseError as error:
            skipped.add(name)
            kind, _, message = str(error).split("\n")[0].partition(": ")
            if kind in BINDING_ERRORS:
                problems.append(f"{project.file.name}: marts: {_where(project, model)}: {message}")
    return problems


def _where(project: Project, model: MartModel) -> str:
    return f"{project.marts.path}/{model.path.name}"


class MartsStep:
    """Marts have no loads of their own: they are rebuilt whole from what is below them, so
    what is pending is every mart (in build order), and removing a load below them is a
    rebuild, which removes nothing of theirs."""

    name = "marts"

    def __init__(self, project: Project) -> None:
        self.project = project

    def pending(self, warehouse: Warehouse) -> list[str]:
        return build_order(discover(self.project))

    def run(self, warehouse: Warehouse) -> list[BuiltMart]:
        return build_marts(warehouse, self.project)

    def remove(self, warehouse: Warehouse, load_ids: Sequence[int]) -> dict[str, int]:
        self.run(warehouse)
        return {}
