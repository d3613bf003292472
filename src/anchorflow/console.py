"""Rich rendering of the façade's events and results: progress bars, summaries, status tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from anchorflow.pipeline import Pipeline, RunSummary, WindowResult
from anchorflow.project import format_hour, load_project


class ProgressReporter:
    """A bar per source over its due windows, with the files and rows landed so far."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.rows: dict[str, int] = {}
        self.files: dict[str, int] = {}

    def windows_planned(self, source: str, count: int) -> None:
        self.rows[source] = 0
        self.files[source] = 0
        self.tasks[source] = self.progress.add_task(
            source, total=count, rows="", hour="", unit="hours"
        )

    def anchor_planned(self, tables: int) -> None:
        self.tasks["anchor"] = self.progress.add_task(
            "anchor", total=tables, rows="", hour="", unit="tables"
        )

    def anchor_table_done(self, run: Any) -> None:
        self.rows["anchor"] = self.rows.get("anchor", 0) + run.inserted
        self.progress.update(
            self.tasks["anchor"], advance=1, hour=run.table,
            rows=f"{self.rows['anchor']:,} rows inserted",
        )  # fmt: skip

    def window_done(self, result: WindowResult) -> None:
        self.rows[result.source] += result.rows
        self.files[result.source] += result.files
        self.progress.update(
            self.tasks[result.source],
            advance=1,
            hour=format_hour(result.window_start),
            rows=f"{self.files[result.source]:,} files {self.rows[result.source]:,} rows",
        )


def run_with_progress(
    console: Console,
    project: Path | None,
    now: datetime | None,
    action: Callable[[Pipeline], RunSummary],
) -> RunSummary:
    loaded = load_project(project)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[hour]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TextColumn("{task.fields[rows]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with progress, Pipeline(loaded, ProgressReporter(progress), now=now) as pipeline:
        return action(pipeline)


def print_summary(console: Console, summary: RunSummary) -> None:
    windows = summary.windows
    if not windows:
        console.print("nothing due: every closed, available hour is loaded")
    else:
        replaced = sum(1 for w in windows if w.replaced)
        console.print(
            f"loaded {len(windows)} hour(s) "
            f"{format_hour(windows[0].window_start)}..{format_hour(windows[-1].window_start)}: "
            f"{summary.rows:,} rows landed, {summary.staged:,} staged rows over all models, "
            f"{summary.quarantined:,} quarantined"
            + (f", {replaced} replaced an earlier load" if replaced else "")
            + f" in {summary.seconds:.1f}s ({summary.rows_per_second:,.0f} events/s)"
        )
    print_staging(console, summary.staging)
    if summary.anchor is not None:
        print_anchor(console, summary.anchor)
    for mart in summary.marts:
        console.print(f"mart marts.{mart.name}: {mart.rows:,} rows ({mart.seconds:.2f}s)")


def print_staging(console: Console, runs: list[Any]) -> None:
    """What the staging step did per model (loads typed in their own window are not repeated)."""
    for run in runs:
        if run.batches:
            console.print(
                f"staged {run.model}: {run.loads:,} load(s) in {run.batches} batch(es), "
                f"{run.rows:,} rows, {run.type_errors:,} type errors, "
                f"{run.quarantined:,} quarantined, {run.events} new schema event(s)"
            )
        elif run.waiting:
            console.print(f"waiting {run.model}: {run.waiting}")


def print_anchor(console: Console, run: Any) -> None:
    loaded = [t for t in run.targets if t.loads]
    if not loaded:
        console.print("anchor model: up to date")
        return
    observed = sum(t.observed for t in loaded if t.kind in ("attribute", "tie"))
    console.print(
        f"anchor model: {len(loaded)} table(s) loaded, {run.inserted:,} rows inserted from "
        f"{observed:,} observations in {run.seconds:.1f}s"
    )


def print_model(console: Console, infos: list[Any]) -> None:
    """The one-page description: every anchor table, its history kind, rows and freshness."""
    print_table(
        console,
        "anchor model",
        ["table", "kind", "declared", "from", "rows", "ids", "latest change", "last load",
         "pending loads"],
        [
            [i.table, i.kind, i.detail, i.source, i.rows, i.ids, i.last_change, i.last_load,
             i.pending_loads]
            for i in infos
        ],
    )  # fmt: skip


def print_fields(console: Console, model: str, stats: dict[str, Any]) -> None:
    if stats["batch_id"] is None:
        console.print(f"no statistics for {model} yet: it has not been staged (or sampling is 0)")
        return
    loads = stats["load_ids"]
    span = f"loads {min(loads)}..{max(loads)}" if loads else "no loads"
    rows = []
    for (field, column, sampled, types, non_null, nulls, lo, hi, min_len, max_len, distinct,
         examples) in stats["fields"]:  # fmt: skip
        value_range = f"{lo} .. {hi}" if lo is not None else (
            f"len {min_len}..{max_len}" if min_len is not None else "")  # fmt: skip
        rows.append([
            field, column or "(not mapped)", ", ".join(types or []), non_null,
            f"{nulls / sampled:.1%}" if sampled else "", value_range, distinct,
            ", ".join(examples or []), stats["type_errors"].get(column, 0) if column else "",
        ])  # fmt: skip
    print_table(
        console,
        f"staging.{model}: batch {stats['batch_id']} ({span}), sampled rows per field",
        ["field", "column", "json types", "non-null", "null rate", "range", "~distinct",
         "examples", "type errors"],
        rows,
    )  # fmt: skip


def print_drift(console: Console, events: list[Any]) -> None:
    if not events:
        console.print("no open schema events")
        return
    print_table(
        console,
        "schema events (acknowledge with `anchorflow drift --ack ID`)",
        ["id", "kind", "stream", "model", "field", "detail", "first load", "seen", "status"],
        [list(e) for e in events],
    )


def print_table(console: Console, title: str, header: list[str], rows: list[Any]) -> None:
    grid = Table(title=title, title_justify="left")
    for name in header:
        grid.add_column(name)
    for row in rows:
        grid.add_row(*[_cell(v) for v in row])
    console.print(grid)


def _cell(value: Any) -> Text:
    """Cells are plain text: values such as error details may hold [brackets]."""
    return Text(_format(value))


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def print_status(console: Console, status: dict[str, Any]) -> None:
    marks = status["watermarks"]
    print_table(
        console,
        "watermarks",
        ["source", "stream", "next hour", "lag (h)", "due hours", "last available"],
        [
            [
                m["source"],
                m["stream"],
                m["watermark"],
                m["lag_hours"],
                m["due_hours"],
                m["last_available"],
            ]
            for m in marks
        ],
    )
    print_table(
        console,
        "last loads",
        [
            "load",
            "source",
            "stream",
            "hour",
            "files",
            "rows",
            "quarantined",
            "staged",
            "status",
            "finished",
        ],
        status["loads"],
    )
    print_table(
        console, "last runs", ["run", "command", "status", "started", "detail"], status["runs"]
    )
    console.print(f"quarantined records: {status['quarantined']:,} (see meta.quarantine)")


def print_arrow(console: Console, result: Any, title: str, max_rows: int = 50) -> None:
    """An Arrow table as a rich table: the first `max_rows` rows, and how many there are."""
    rows = result.slice(0, max_rows).to_pylist()
    print_table(console, title, list(result.column_names), [list(r.values()) for r in rows])
    if result.num_rows > max_rows:
        console.print(f"… {result.num_rows - max_rows:,} more row(s); use --output to export")
