"""`anchorflow export`: tables of the warehouse published as Parquet files.

A tool that cannot open the warehouse while anchorflow loads (DuckDB has one writer and no
readers beside it) reads these files instead: `<exports>/<schema>/<table>.parquet`, one per
table, each replaced whole (`publish.files`), so a reader never sees half a file. DuckDB
writes them itself (`COPY (SELECT ...) TO ... (FORMAT parquet)`): no row passes through Python;
a server engine (PostgreSQL) sends the rows, which are written here (`Warehouse.write_file`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from anchorflow.config.exports import EXPORTABLE, matching, pattern_problem
from anchorflow.config.project import Project
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.publish.files import publish_file
from anchorflow.warehouse import Warehouse, table


@dataclass(frozen=True)
class ExportedTable:
    """One table published: where, how many rows, its size and how long it took."""

    table: str  # schema.name
    path: Path
    rows: int
    bytes: int
    seconds: float


def export_tables(
    warehouse: Warehouse,
    project: Project,
    patterns: Sequence[str] = (),
    directory: Path | None = None,
) -> list[ExportedTable]:
    """Publish the tables that `patterns` name (default: the project's `exports.tables`) into
    `directory` (default: the project's `exports.path`)."""
    chosen = list(patterns) or project.exports.tables
    if not chosen:
        raise ConfigError([
            "nothing to export: name tables (`anchorflow export marts.*`) or list them under "
            f"exports.tables in {project.file.name}"
        ])  # fmt: skip
    target = directory if directory is not None else project.exports_path
    return [export_table(warehouse, s, n, target) for s, n in resolve_tables(warehouse, chosen)]


def resolve_tables(warehouse: Warehouse, patterns: Sequence[str]) -> list[tuple[str, str]]:
    """(schema, name) of every table or view that the names and globs match, in their order."""
    held: dict[str, list[str]] = {schema: [] for schema in EXPORTABLE}
    for schema, name in warehouse.query(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() ORDER BY table_schema, table_name"
    ):
        if schema in held:
            held[schema].append(name)
    problems: list[str] = []
    found: dict[tuple[str, str], None] = {}  # ordered, without repeats
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem:
            problems.append(f"export: {problem}")
            continue
        schema, glob = pattern.split(".", 1)
        names = matching(glob, held[schema])
        if not names:
            problems.append(
                f"export: {pattern!r} matches no table in the warehouse ({schema} has: "
                f"{', '.join(held[schema][:10]) or 'nothing yet; run `anchorflow run` first'})"
            )
        found.update({(schema, name): None for name in names})
    if problems:
        raise ConfigError(problems)
    return list(found)


def export_table(warehouse: Warehouse, schema: str, name: str, directory: Path) -> ExportedTable:
    started = time.perf_counter()
    path = directory / schema / f"{name}.parquet"

    def write(temporary: Path) -> int:
        # One statement: the file is one consistent snapshot of the table.
        return warehouse.write_file(
            f"SELECT * FROM {table(schema, name)}", temporary, "parquet", compression="zstd"
        )

    try:
        rows = publish_file(path, write)
    except OSError as error:  # the directory cannot be made or written, or the path is one
        raise WarehouseError(f"cannot write {path}: {error.strerror}") from None
    return ExportedTable(
        f"{schema}.{name}", path, rows, path.stat().st_size, time.perf_counter() - started
    )
