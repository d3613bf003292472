"""`anchorflow compile`: the SQL for Snowflake or BigQuery, written to a directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from anchorflow.cli.base import ProjectOption, app, console, guarded


@app.command("compile")
def compile_sql(
    engine: Annotated[
        str,
        typer.Option(
            "--engine", "-e", help="The warehouse to write SQL for: snowflake or bigquery."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Directory to write (default: compiled/<engine> beside the file)."
        ),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Write the project's SQL for Snowflake or BigQuery: 01_ddl.sql (schemas and tables),
    02_views.sql (perspectives, view marts), 03_load.sql (staged NDJSON files → raw → staging
    → anchor model → marts), and README.txt (what is left to you). Reads only the project;
    the SQL is not run here: it is checked by golden tests and sqlglot's parser only."""
    from anchorflow.compile import compile_project, write_compiled
    from anchorflow.config import load_project

    def action() -> object:
        loaded = load_project(project, defer_source_env=True)
        directory = out or loaded.file.parent / "compiled" / engine
        return write_compiled(compile_project(loaded, engine), directory)

    compiled = guarded(action)
    from anchorflow.compile import Compiled

    assert isinstance(compiled, Compiled)
    counts = ", ".join(f"{f.name} ({len(f.statements)})" for f in compiled.files)
    console.print(
        f"wrote {compiled.statements} {compiled.engine} statements to {compiled.directory}: "
        f"{counts}, README.txt",
        highlight=False,
        soft_wrap=True,
    )
