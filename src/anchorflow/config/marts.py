"""The marts' SQL files (`models/<name>.sql`): one SELECT each, over tables the project makes.

Pure: the files are parsed with sqlglot, no engine is opened. What a mart reads is found in its
SQL (`staging.events`, `anchor."User_latest"`, `marts.daily`), so a mart that reads a table
nothing makes, or marts that read each other in a loop, are refused when the project is read,
not after a run has loaded data and built the marts before them.
"""

from __future__ import annotations

import difflib
import graphlib
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from anchorflow.config.mart_settings import MartSettings, merged_settings
from anchorflow.project_types import IDENTIFIER

if TYPE_CHECKING:
    from anchorflow.config.project import Project

# The schemas the engine itself answers for: any table of theirs may be read.
ENGINE_SCHEMAS = ("information_schema", "pg_catalog")


def mart_files(path: Path) -> dict[str, Path]:
    """Every `<name>.sql` in the marts folder, by name, in file-name order."""
    return {p.stem: p for p in sorted(path.glob("*.sql"))} if path.is_dir() else {}


def tables_read(tree: exp.Expr) -> list[tuple[str, str, str]]:
    """(catalog, schema, name) of every table the SQL reads, lower case (the engine's names
    ignore case). Left out: the query's own CTEs, table functions without a schema
    (`read_parquet(...)`, `range(10)`) and file scans (`FROM 'costs.csv'`)."""
    ctes = {cte.alias.lower() for cte in tree.find_all(exp.CTE)}
    found = []
    for table in tree.find_all(exp.Table):
        name = table.this.name if isinstance(table.this, exp.Identifier | exp.Anonymous) else ""
        if not name or (not table.db and (name.lower() in ctes or "." in name or "/" in name)):
            continue
        found.append((table.catalog.lower(), table.db.lower(), name.lower()))
    return found


def marts_read(tree: exp.Expr, marts: list[str]) -> set[str]:
    """The marts (by their file's name) that the SQL reads."""
    by_lower = {name.lower(): name for name in marts}
    return {
        by_lower[name] for _, schema, name in tables_read(tree)
        if schema == "marts" and name in by_lower
    }  # fmt: skip


def mart_problems(project: Project) -> list[str]:
    """One line per problem of the marts, `<folder>/<file>: <problem>` (or the cycle)."""
    files = mart_files(project.marts_path)
    problems: list[str] = []
    trees: dict[str, exp.Expr] = {}
    owners: dict[str, str] = {}
    for name, path in files.items():
        where = f"{project.marts.path}/{path.name}"
        if not IDENTIFIER.match(name):
            problems.append(f"{path.name}: a model's file name must be a plain identifier")
            continue
        other = owners.setdefault(name.lower(), name)
        if other != name:
            problems.append(
                f"{where}: its table marts.{name} is marts.{other}'s (the engine's names "
                "ignore case); rename one of the files"
            )
            continue
        try:
            statements = [s for s in sqlglot.parse(path.read_text(), dialect="duckdb") if s]
        except sqlglot.errors.ParseError as error:
            problems.append(f"{where}: not valid SQL ({str(error).splitlines()[0]})")
            continue
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            problems.append(f"{where}: expected exactly one SELECT statement")
            continue
        trees[name] = statements[0]
        problems += [f"{where}: {p}" for p in _unknown_tables(project, statements[0], files)]
    problems += _settings_problems(project, files)
    if not problems:
        problems += _cycles({name: marts_read(tree, list(trees)) for name, tree in trees.items()})
    return problems


def mart_settings(project: Project) -> dict[str, MartSettings]:
    """How each mart is built and tested: its header comment's settings with the project
    file's (`marts.models`), by the mart's name. Valid once the project is loaded."""
    return {
        name: merged_settings(path, project.marts.models.get(name))
        for name, path in mart_files(project.marts_path).items()
    }


def _settings_problems(project: Project, files: dict[str, Path]) -> list[str]:
    """The project file's settings of marts that have no file; headers that do not read."""
    problems = [
        f"models.{name}: there is no {project.marts.path}/{name}.sql"
        for name in project.marts.models if name not in files
    ]  # fmt: skip
    known = known_tables(project, files)
    for name, path in files.items():
        where = f"{project.marts.path}/{path.name}"
        try:
            settings = merged_settings(path, project.marts.models.get(name))
        except ValueError as error:
            problems.append(f"{where}: {error}")
            continue
        for test in settings.all_tests():
            other = getattr(test, "to", None) or getattr(test, "equals", None)
            schema, _, table = (other or "").partition(".")
            if other and schema in known and table.lower() not in known[schema]:
                problems.append(
                    f"{where}: test {test.kind} compares with {other}, which the project "
                    "does not make"
                )
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        cycle = " → ".join(error.args[1])
        return [f"models depend on each other in a cycle: {cycle}"]
    return []


def known_tables(project: Project, marts: dict[str, Path]) -> dict[str, dict[str, str]]:
    """The tables of each schema the project makes, lower-cased name → name as spelled."""
    raw = [f"{source}_{stream}" for source, stream in project.streams()]
    return {
        "raw": {name.lower(): name for name in raw},
        "staging": {name.lower(): name for name in project.staging},
        "anchor": {name.lower(): name for name, _ in project.anchor.tables()},
        "marts": {name.lower(): name for name in marts},
    }


def _unknown_tables(project: Project, tree: exp.Expr, marts: dict[str, Path]) -> list[str]:
    known = known_tables(project, marts)
    warehouse = Path(project.warehouse.path).stem.lower()
    problems = []
    for catalog, schema, name in tables_read(tree):
        shown = ".".join(p for p in (catalog, schema, name) if p)
        if catalog and catalog != warehouse:
            problems.append(f"reads {shown}, in another database; marts read the warehouse")
        elif not schema:
            problems.append(
                f"reads {name!r} without a schema; name it with its schema "
                "(raw., staging., anchor., marts. or meta.)"
            )
        elif schema in known and name not in known[schema]:
            tables = list(known[schema].values())
            close = difflib.get_close_matches(name, [t.lower() for t in tables], n=1)
            hint = f"did you mean {schema}.{known[schema][close[0]]}?" if close else (
                f"{schema} has: {', '.join(tables[:10]) or 'no tables'}"
                + (", ..." if len(tables) > 10 else "")
            )  # fmt: skip
            problems.append(f"reads {shown}, which the project does not make ({hint})")
        elif schema not in known and schema not in ("meta", *ENGINE_SCHEMAS):
            problems.append(
                f"reads {shown}: the warehouse has no schema {schema!r} "
                "(raw, staging, anchor, marts, meta)"
            )
    return problems
