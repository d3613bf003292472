"""`anchorflow compile`: the SQL a team runs on Snowflake or BigQuery for a project, written
from the same builders that run on DuckDB and PostgreSQL and transpiled by the engine's
dialect (`warehouse/snowflake`, `warehouse/bigquery`). Nothing here connects to a warehouse:
the project file (and `models/*.sql`) is all it reads.

Three SQL files and a README.txt: `01_ddl.sql` (schemas and tables), `02_views.sql` (the
perspectives and the marts that are views), `03_load.sql` (staged files → raw → staging →
anchor model → serving tables → marts that are tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anchorflow.anchor.plan import build_plan
from anchorflow.compile.ddl import ddl_statements
from anchorflow.compile.load import anchor_statements, raw_statements, staging_statements
from anchorflow.compile.readme import readme
from anchorflow.compile.views import mart_statements, perspective_columns, perspective_statements
from anchorflow.config.project import Project
from anchorflow.warehouse.compiled import CompileError, SqlOnlyDialect

ENGINES = ("snowflake", "bigquery")

__all__ = [
    "ENGINES",
    "CompileError",
    "Compiled",
    "compile_files",
    "compile_project",
    "render",
    "write_compiled",
]


@dataclass(frozen=True)
class CompiledFile:
    name: str
    statements: list[str]  # in the engine's SQL

    @property
    def text(self) -> str:
        return render(self.statements)


@dataclass(frozen=True)
class Compiled:
    engine: str
    files: list[CompiledFile]
    readme: str
    directory: Path | None = None  # where `write_compiled` wrote them

    @property
    def statements(self) -> int:
        return sum(len(f.statements) for f in self.files)


def dialect_for(engine: str, project: Project) -> SqlOnlyDialect:
    if engine == "snowflake":
        from anchorflow.warehouse.snowflake.dialect import SnowflakeDialect

        return SnowflakeDialect(perspective_columns(build_plan(project)))
    if engine == "bigquery":
        from anchorflow.warehouse.bigquery.dialect import BigQueryDialect

        return BigQueryDialect()
    raise CompileError(f"--engine: {engine!r} is not one of {', '.join(ENGINES)}")


# Types BigQuery cannot group, partition or compare (JSON), or partition by (FLOAT64): an
# anchor value or a unique key of such a type has no BigQuery load.
_UNORDERED = {"bigquery": {"JSON": "JSON", "DOUBLE": "FLOAT64", "FLOAT": "FLOAT64",
                           "REAL": "FLOAT64"}}  # fmt: skip


def refused(project: Project, engine: str) -> None:
    """One line for the first part of the project with no load SQL for the engine."""
    unordered = _UNORDERED.get(engine, {})
    plan = build_plan(project)
    for name, target in plan.targets.items():
        kind = target.value_type if target.kind == "attribute" and not target.knot else None
        if kind == "JSON" and kind in unordered:
            raise CompileError(
                f"anchor.{name}: a JSON value cannot be compared on {engine} (its history "
                "needs it); give the attribute a scalar type"
            )
    for name, model in project.staging.items():
        for key in model.key_columns:
            spec = model.columns.get(key)
            if spec and spec.type in unordered:
                raise CompileError(
                    f"staging.{name}: the unique key {key} is {spec.type}, which {engine} "
                    f"cannot partition by ({unordered[spec.type]}); key it by another type"
                )


def _native(sql: SqlOnlyDialect, canonical: list[str]) -> list[str]:
    out: list[str] = []
    for statement in canonical:
        out += sql.statements(statement)
    return out


def compile_project(project: Project, engine: str) -> Compiled:
    """The project's DDL, views and load SQL for `engine`; a part that has no SQL for it is
    refused (`CompileError`, one line), never written approximately."""
    sql = dialect_for(engine, project)
    refused(project, engine)
    return Compiled(
        engine, compile_files(project, sql), readme(project, engine, build_plan(project))
    )


def compile_files(project: Project, sql: SqlOnlyDialect) -> list[CompiledFile]:
    """The three SQL files in `sql`'s spelling."""
    plan = build_plan(project)
    view_marts, table_marts = mart_statements(project, sql)
    load = raw_statements(project, sql) + staging_statements(project, sql)
    load += anchor_statements(plan, sql)
    return [
        CompiledFile("01_ddl.sql", _native(sql, ddl_statements(project, plan, sql))),
        CompiledFile("02_views.sql", _native(sql, perspective_statements(plan, sql) + view_marts)),
        CompiledFile("03_load.sql", _native(sql, load + table_marts)),
    ]


def render(statements: list[str]) -> str:
    return "".join(f"{s};\n\n" for s in statements).rstrip("\n") + "\n" if statements else ""


def write_compiled(compiled: Compiled, directory: Path) -> Compiled:
    """The files in `directory` (created), each replaced whole."""
    directory.mkdir(parents=True, exist_ok=True)
    for file in compiled.files:
        _replace(directory / file.name, file.text)
    _replace(directory / "README.txt", compiled.readme)
    return Compiled(compiled.engine, compiled.files, compiled.readme, directory)


def _replace(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    part.replace(path)
