"""Shared helpers of the staging tests: write a project with given staging models, commit
synthetic windows of JSON records through the pipeline, and read the warehouse back."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from anchorflow.config import Project
from anchorflow.land.step import WindowResult
from anchorflow.run import Pipeline
from anchorflow.sources.amplitude.export import hour_window
from anchorflow.sources.base import LandBatch
from anchorflow.sources.lines import split_lines
from anchorflow.stage import ModelRun
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
    return table_rows(project.warehouse_path, sql)


def drop_tables(project: Project, *names: str) -> None:
    """`DROP TABLE staging.<name>`, as a user would run it in a SQL client."""
    con = duckdb.connect(str(project.warehouse_path))
    try:
        for name in names:
            con.execute(f"DROP TABLE staging.{name}")
    finally:
        con.close()


def u(n: int) -> str:
    """The n-th event id: a valid UUID that sorts by n."""
    return str(uuid.UUID(int=n))
