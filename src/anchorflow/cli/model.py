"""The commands on the anchor model and what is published from it: anchor, model, query,
rollback, forget, compact, export, dbt-sources."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from anchorflow.cli.base import (
    JsonOption,
    ProjectOption,
    VerboseOption,
    _fail,
    _instant,
    _setup_logging,
    _with_pipeline,
    app,
    console,
    guarded,
)


@app.command()
def anchor(
    project: ProjectOption = None,
    verbose: VerboseOption = False,
    rebuild_serving: Annotated[
        bool,
        typer.Option(
            "--rebuild-serving",
            help="Recompute every serving table (anchor.<Entity>_current) from the attribute "
            "and tie tables, then exit; nothing is loaded.",
        ),
    ] = False,
) -> None:
    """Load typed staging rows that the anchor model does not hold yet (`run` does it too).

    Entities and knots first, then every attribute and tie, each in its own transaction and
    checked for integrity; a failed check alerts, rolls that table back and exits 1. Then the
    serving tables (anchor.<Entity>_current, what the perspectives read) catch up.
    """
    from anchorflow.console import print_anchor

    _setup_logging(verbose)
    if rebuild_serving:
        counts = _with_pipeline(project, lambda p: p.rebuild_serving())
        for name, rows in sorted(counts.items()):
            console.print(f"rebuilt {name}: {rows:,} row(s)")
        return
    print_anchor(console, _with_pipeline(project, lambda p: p.anchor()))


@app.command()
def model(project: ProjectOption = None, json: JsonOption = False) -> None:
    """The anchor model on one page: entities, knots, attributes and ties, with their history
    kind, source model, row counts, latest change and loads still to anchor."""
    from anchorflow.console import print_json, print_model

    infos = _with_pipeline(project, lambda p: p.describe_model(), read_only=True)
    if json:
        print_json(infos)
    else:
        print_model(console, infos)


@app.command()
def query(
    entity: Annotated[str, typer.Argument(help="The entity, e.g. User.")],
    attrs: Annotated[
        str | None,
        typer.Option("--attrs", help="Comma-separated attributes (default: all of them)."),
    ] = None,
    ties: Annotated[
        str | None, typer.Option("--ties", help="Comma-separated ties to add partner ids from.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Values in force at this instant, e.g. 2024-03-02T12:00."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="table (print), or a file written by the engine (needs --output): csv, "
            "parquet or json (one object per line).",
        ),
    ] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many rows.", min=0)] = None,
    project: ProjectOption = None,
) -> None:
    """One row per entity with only the attributes asked for: joins nothing else.

    Without --as-of the values are the latest (scd0: the first); with it, each scd2 attribute
    shows the value in force then, scd0 the first value if it existed by then, scd1 the latest.
    """
    from anchorflow.anchor.query import FORMATS
    from anchorflow.console import print_arrow

    if fmt not in FORMATS:
        guarded(lambda: _fail(f"query: --format must be one of {', '.join(FORMATS)}"))
    if fmt != "table" and output is None:
        guarded(lambda: _fail(f"query: --format {fmt} writes a file; give --output PATH"))
    instant = guarded(lambda: _instant(as_of)) if as_of else None
    chosen = [a.strip() for a in attrs.split(",") if a.strip()] if attrs is not None else None
    related = [t.strip() for t in ties.split(",") if t.strip()] if ties else []
    if output is not None and fmt != "table":
        path = output.absolute()
        written = _with_pipeline(
            project,
            lambda p: p.export_query(entity, chosen, related, instant, limit, fmt, path),
            read_only=True,
        )
        console.print(f"wrote {written:,} rows to {output}")
        return
    result = _with_pipeline(
        project, lambda p: p.query(entity, chosen, related, instant, limit), read_only=True
    )
    print_arrow(console, result, f"{entity}" + (f" as of {as_of}" if as_of else ""))


@app.command()
def rollback(
    load_id: Annotated[int, typer.Argument(help="The load to remove (see `anchorflow status`).")],
    project: ProjectOption = None,
) -> None:
    """Remove a load from staging, the anchor model and the marts, keeping its raw records;
    the next `run` (or `stage --force`) types and anchors it again."""
    counts = _with_pipeline(project, lambda p: p.rollback(load_id))
    for name, rows in sorted(counts.items()):
        console.print(f"removed {rows:,} row(s) from {name}")
    console.print(f"load {load_id} rolled back; `anchorflow run` loads it again")


@app.command()
def forget(
    entity: Annotated[str, typer.Argument(help="The entity, e.g. User.")],
    key: Annotated[list[str], typer.Argument(help="Its natural key (one value per key column).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    project: ProjectOption = None,
) -> None:
    """Erase an entity everywhere (GDPR): its anchor rows, attribute values and ties, the staging
    rows and raw records that carry its key, and their traces in the journal. Leaves an audit
    row in the journal (its erasures table) with counts only, and the key hashed with pii_salt
    so that a backfill does not bring the entity back. Cannot be undone."""
    if not yes:
        typer.confirm(f"Erase this {entity} from every layer, raw included?", abort=True)
    counts = _with_pipeline(project, lambda p: p.forget(entity, key))
    for name, rows in sorted(counts.items()):
        console.print(f"erased {rows:,} row(s) from {name}")
    if not counts:
        console.print(f"no {entity} with that key was found; nothing was erased")
    console.print(
        "its key is kept hashed, so loading the same windows again drops its records; the "
        "file still holds the deleted bytes until `anchorflow compact` (or a `run` near the "
        "deadline, see `anchorflow status`)"
    )


@app.command()
def compact(project: ProjectOption = None) -> None:
    """Rewrite the warehouse file so that the rows `forget` deleted leave no byte behind;
    applies every pending erasure request (`run` does it by itself near their deadline)."""
    from anchorflow.console import print_compaction

    print_compaction(console, _with_pipeline(project, lambda p: p.compact()))


@app.command("export")
def export_tables(
    tables: Annotated[
        list[str] | None,
        typer.Argument(
            help="Tables to export: schema.table or a glob such as marts.* (default: the "
            "project's exports.tables)."
        ),
    ] = None,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Directory of the files (default: exports.path, exports/)."),
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Publish tables as Parquet files, <dir>/<schema>/<table>.parquet, for tools that read
    while anchorflow loads: each file is written under a temporary name, then renamed over the
    previous one, so a reader sees a whole file, old or new."""
    from anchorflow.console import print_exports

    exported = _with_pipeline(project, lambda p: p.export(tables or (), to), read_only=True)
    print_exports(console, exported)


@app.command("dbt-sources")
def dbt_sources(
    schema: Annotated[
        list[str] | None,
        typer.Option(
            "--schema", help="A schema to describe, repeatable (default: staging, anchor, marts)."
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="The warehouse's catalog name in dbt (default: the file's name without .duckdb, "
            "as dbt-duckdb names it; use the alias of an attach: entry)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Print (or write) a dbt sources.yml for the warehouse: one source per schema, its tables
    and columns with the project file's descriptions, and tests for the declared keys."""
    from anchorflow.publish.dbt import write_dbt_sources

    text = _with_pipeline(project, lambda p: p.dbt_sources(schema or (), database), read_only=True)
    if output is None:
        sys.stdout.write(text)
        return
    write_dbt_sources(text, output)
    console.print(f"wrote {output}")
