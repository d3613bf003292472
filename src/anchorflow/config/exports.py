"""The `exports:` section: the tables published as Parquet files for tools that read while
anchorflow loads (a notebook, a BI tool, dbt), and where those files go.

```yaml
exports:
  path: exports                  # relative to the project file (default)
  tables: [marts.*, anchor.User_latest, staging.purchases]
  on_run: true                   # `run` and `backfill` export after the marts (default)
```

Pure: a name or glob is checked against the tables the project makes (its staging models,
anchor model and mart files), so a typo is one line when the file is read.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import field_validator

from anchorflow.project_types import Strict

if TYPE_CHECKING:
    from anchorflow.config.project import Project

EXPORTABLE = ("raw", "staging", "anchor", "marts")
PATTERN = re.compile(r"^(?P<schema>[a-z]+)\.(?P<name>[A-Za-z0-9_*?]{1,63})$")


class Exports(Strict):
    path: str = "exports"
    tables: list[str] = []
    on_run: bool = True

    @field_validator("tables")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            pattern_problem(pattern, raise_it=True)
        return value


def pattern_problem(pattern: str, raise_it: bool = False) -> str | None:
    """Why `pattern` is not `<schema>.<table or glob>` of an exportable schema, if it is not."""
    match = PATTERN.match(pattern)
    problem = None
    if not match:
        problem = (
            f"{pattern!r}: expected <schema>.<table>, e.g. marts.daily_active_users or marts.* "
            "(letters, digits, _, and * or ? as wildcards)"
        )
    elif match["schema"] not in EXPORTABLE:
        problem = f"{pattern!r}: exports come from {', '.join(EXPORTABLE)}"
    if problem and raise_it:
        raise ValueError(problem)
    return problem


def matching(pattern: str, names: Iterable[str]) -> list[str]:
    """The names a `<table or glob>` part matches (names ignore case, as in the engine)."""
    wanted = pattern.lower()
    return [name for name in names if fnmatch.fnmatchcase(name.lower(), wanted)]


def exportable_tables(project: Project) -> dict[str, list[str]]:
    """The tables and views of each exportable schema that the project makes (the anchor
    model's point-in-time macros are no tables)."""
    from anchorflow.config.marts import known_tables, mart_files

    known = known_tables(project, mart_files(project.marts_path))
    anchor = [name for name in known["anchor"].values() if not name.endswith("_as_of")]
    return {**{s: list(known[s].values()) for s in EXPORTABLE}, "anchor": anchor}


def export_problems(project: Project, patterns: Iterable[str] | None = None) -> list[str]:
    """One line for each pattern that names no table the project makes."""
    tables = exportable_tables(project)
    problems = []
    for pattern in project.exports.tables if patterns is None else patterns:
        problem = pattern_problem(pattern)
        if problem:
            problems.append(problem)
            continue
        schema, name = pattern.split(".", 1)
        if not matching(name, tables[schema]):
            close = difflib.get_close_matches(name, tables[schema], n=1)
            hint = f"did you mean {schema}.{close[0]}?" if close else (
                f"{schema} has: {', '.join(tables[schema][:10]) or 'no tables'}"
            )  # fmt: skip
            problems.append(f"{pattern!r} matches no table the project makes ({hint})")
    return problems
