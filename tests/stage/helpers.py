"""Shared helpers of the staging tests: write a project with given staging models, commit
synthetic windows of JSON records through the pipeline, and read the warehouse back."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from anchorflow.config import Project
from anchorflow.land.step import WindowResult
from anchorflow.run import Pipeline
from anchorflow.sources.amplitude.export import hour_window
from anchorflow.sources.base import LandBatch
from anchorflow.sources.lines import split_lines
from anchorflow.stage import ModelRun
from anchorflow.warehouse import connect
from tests.builders import build_project
from tests.conftest import START, table_rows

# Far after every load's wall-clock time: any max_age has elapsed at this pipeline clock.
LATER = datetime(2100, 1, 1)
SALT = "pepper-7f3a"


def write_project(root: Path, staging: dict[str, Any], **top: Any) -> Project:
    """A project with one Amplitude source (never contacted) and the given staging models."""
    return build_project(root, staging=staging, **top)


def records_of(*events: dict[str, Any] | str) -> list[str]:
    return [e if isinstance(e, str) else json.dumps(e) for e in events]


def commit(
    project: Project, window: int, events: list[dict[str, Any] | str], now: datetime = LATER
) -> WindowResult:
    """Commit the events as the window of hour `window` (after START), one load."""
    lines = records_of(*events)
    records, rejected = split_lines(f"w{window}#0.json", "\n".join(lines).encode())
    hour = hour_window("events", START + timedelta(hours=window))
    batch = LandBatch("amplitude", hour, f"w{window}", records, 1, 0, rejected)
    with Pipeline(project, now=now) as pipeline:
        return pipeline.commit_window(batch)


def stage(
    project: Project, *models: str, force: bool = False, now: datetime = LATER
) -> list[ModelRun]:
    with Pipeline(project, now=now, clock=lambda: now) as pipeline:
        return pipeline.stage(models, force=force)


def rows(project: Project, sql: str) -> list[tuple[Any, ...]]:
    return table_rows(project, sql)


def every_row(
    project: Project, name: str, exclude: tuple[str, ...] = (), where: str = "true"
) -> list[tuple[Any, ...]]:
    """Every row of the table `name` (schema.table) but the `exclude` columns, in one order
    whatever the engine (sorted here: `ORDER BY ALL` and `EXCLUDE` are DuckDB's)."""
    schema, table = name.split(".")
    columns = [
        str(c)
        for (c,) in rows(
            project,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            f"'{schema}' AND table_name = '{table}' ORDER BY ordinal_position",
        )
        if c not in exclude
    ]
    found = rows(project, f"SELECT {', '.join(columns)} FROM {name} WHERE {where}")
    return sorted(found, key=lambda row: [(v is None, str(v)) for v in row])


def execute(project: Project, *statements: str) -> None:
    """Run statements on the project's warehouse, as a user would in a SQL client."""
    with connect(project) as warehouse:
        for statement in statements:
            warehouse.execute(statement)


def drop_tables(project: Project, *names: str) -> None:
    """`DROP TABLE staging.<name>`, as a user would run it in a SQL client."""
    execute(project, *(f"DROP TABLE staging.{name}" for name in names))


def u(n: int) -> str:
    """The n-th event id: a valid UUID that sorts by n."""
    return str(uuid.UUID(int=n))
