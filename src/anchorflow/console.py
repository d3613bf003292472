"""Rich rendering of the façade's events and results: progress bars, summaries, status tables,
and their JSON form (`--json`)."""

from __future__ import annotations

import json
import sys
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

from anchorflow.config import Project, load_project
from anchorflow.journal.quarantine import TABLE as QUARANTINE
from anchorflow.journal.schema_events import SchemaEventInfo
from anchorflow.land.step import WindowResult
from anchorflow.publish.export import ExportedTable
from anchorflow.run import Pipeline, RunSummary, Status, as_json
from anchorflow.run.compaction import Compaction
from anchorflow.run.results import FieldReport, SourceStatus


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
            source, total=count, rows="", hour="", unit="windows"
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
            hour=result.window_key,
            rows=f"{self.files[result.source]:,} files {self.rows[result.source]:,} rows",
        )


def run_with_progress(
    console: Console,
    project: Path | Project | None,
    now: datetime | None,
    action: Callable[[Pipeline], RunSummary],
) -> RunSummary:
    # Only the sources the command loads need their variables: `Pipeline.run` and `backfill`
    # refuse those (`Project.require_env`), not another source's.
    if isinstance(project, Project):
        loaded = project
    else:
        loaded = load_project(project, defer_source_env=True)
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
        console.print("nothing due: every window available now is loaded")
    else:
        replaced = sum(1 for w in windows if w.replaced)
        console.print(
            f"loaded {_spans(windows)}: "
            f"{summary.rows:,} rows landed, {summary.staged:,} staged rows over all models, "
            f"{summary.quarantined:,} quarantined"
            + (f", {summary.suppressed:,} erased (not landed)" if summary.suppressed else "")
            + (f", {replaced} replaced an earlier load" if replaced else "")
            + f" in {summary.seconds:.1f}s ({summary.rows_per_second:,.0f} events/s)"
        )
    for warning in summary.warnings:
        _warn(console, warning)
    print_staging(console, summary.staging)
    if summary.anchor is not None:
        print_anchor(console, summary.anchor)
    print_marts(console, summary.marts)
    if summary.exports:
        print_exports(console, summary.exports)
    if summary.compaction is not None:
        print_compaction(console, summary.compaction)
    if summary.fraud is not None:
        print_fraud_run(console, summary.fraud)
    for check in summary.metric_alerts:
        if check.state != "unchanged":
            sent = f", sent {check.sent}" if check.sent else ""
            series = f" ({check.series})" if check.series else ""
            console.print(f"metric alert {check.alert}{series}: {check.error or check.state}{sent}")


def print_marts(console: Console, marts: list[Any], every_test: bool = False) -> None:
    """Each mart built (how, and why when not a plain rebuild), then its failing tests, one
    line each with the query that lists the failing rows; with `every_test`, passes too."""
    for mart in marts:
        name = f"mart marts.{mart.name}"
        if mart.kind == "skipped":
            _warn(console, f"{name} not built: {mart.reason} (its tests failed)")
            continue
        how = {
            "full": f"{mart.rows:,} rows",
            "incremental": f"{mart.rows:,} rows, {mart.periods or 0} period(s) redone",
            "view": "view made",
            "refresh": "view, tested again",
            "tests": "tested",
        }.get(mart.kind, mart.kind)
        passed = sum(1 for t in mart.tests if t.passed)
        failed = len(mart.tests) - passed
        tests = f", {passed} test(s) passed" if mart.tests else ""
        tests += f", {failed} failed" if failed else ""
        console.print(f"{name}: {how}{tests} ({mart.seconds:.2f}s)", highlight=False)
        for test in mart.tests:
            if test.passed and every_test:
                console.print(f"  pass {test.test}", highlight=False, soft_wrap=True)
            elif not test.passed:
                label = "FAIL" if test.severity == "error" else "WARN"
                what = test.detail or f"{test.failures:,} failing row(s)"
                console.print(
                    Text.assemble(
                        (f"  {label} ", "bold red" if label == "FAIL" else "bold yellow"),
                        f"{test.test}: {what}; find them: {test.query}",
                    ),
                    soft_wrap=True,
                )


def print_exports(console: Console, exported: list[ExportedTable]) -> None:
    for done in exported:
        console.print(
            f"exported {done.table}: {done.rows:,} rows, {done.bytes / 1e6:,.1f} MB "
            f"({done.seconds:.2f}s) → {_shown(done.path)}",
            highlight=False,
            soft_wrap=True,
        )


def _shown(path: Path) -> str:
    """The path from the current directory when it is below it, else as it is."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_compaction(console: Console, done: Compaction) -> None:
    console.print(
        f"compacted the warehouse file: {done.erasures} erasure request(s) applied, "
        f"{done.bytes_before / 1e6:,.1f} MB → {done.bytes_after / 1e6:,.1f} MB "
        f"({done.seconds:.1f}s)"
    )


def _spans(windows: list[WindowResult]) -> str:
    """`3 window(s) 20240301T00..20240301T02`, per source when there are several."""
    by_source: dict[str, list[WindowResult]] = {}
    for window in windows:
        by_source.setdefault(window.source, []).append(window)
    spans = []
    for source, found in by_source.items():
        keys = found[0].window_key + (f"..{found[-1].window_key}" if len(found) > 1 else "")
        spans.append(f"{len(found)} window(s) {keys}" + (
            f" of {source}" if len(by_source) > 1 else ""))  # fmt: skip
    return ", ".join(spans)


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
        f"{observed:,} observations in {run.seconds:.1f}s "
        f"(serving tables: {run.serving_rows:,} rows in {run.serving_seconds:.1f}s)"
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


def print_fields(console: Console, report: FieldReport) -> None:
    if report.batch_id is None:
        console.print(
            f"no statistics for {report.model} yet: it has not been staged (or sampling is 0)"
        )
        return
    loads = report.load_ids
    span = f"loads {min(loads)}..{max(loads)}" if loads else "no loads"
    rows = []
    for f in report.fields:
        value_range = f"{f.min_value} .. {f.max_value}" if f.min_value is not None else (
            f"len {f.min_length}..{f.max_length}" if f.min_length is not None else "")  # fmt: skip
        rows.append([
            f.field, f.column or "(not mapped)", ", ".join(f.json_types), f.non_null,
            f"{f.nulls / f.sampled:.1%}" if f.sampled else "", value_range, f.approx_distinct,
            ", ".join(f.examples), report.type_errors.get(f.column, 0) if f.column else "",
        ])  # fmt: skip
    print_table(
        console,
        f"staging.{report.model}: batch {report.batch_id} ({span}), sampled rows per field",
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
        ["id", "kind", "stream", "model", "fields", "detail", "first load", "seen", "status"],
        [_event_row(e) for e in events],
    )


LISTED_FIELDS = 20  # fields a row of `drift` names; `drift --json` lists them all


def _event_row(e: SchemaEventInfo) -> list[Any]:
    """An event and its fields; the detail of a one-field event, the count of a larger one."""
    if e.field_count == 1:
        fields, detail = e.field, json.dumps(e.detail.get(e.field, {}))
    else:
        more = e.field_count - LISTED_FIELDS
        fields = ", ".join(e.fields[:LISTED_FIELDS]) + (f" and {more} more" if more > 0 else "")
        detail = f"{e.field_count} fields (`anchorflow drift --json` has each one's detail)"
    return [e.event_id, e.kind, e.stream, e.model, fields, detail, e.first_load_id, e.seen_at,
            e.status]  # fmt: skip


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


def print_status(console: Console, status: Status) -> None:
    print_table(
        console,
        "sources",
        ["source", "stream", "position", "lag (h)", "due", "last available", "note"],
        [_source_row(m) for m in status.sources],
    )
    queues = [m for m in status.sources if m.queue is not None]
    if queues:
        print_table(
            console,
            "queues (landing chunks)",
            ["source", "queue", "depth", "chunks waiting", "oldest chunk", "readers alive"],
            [_queue_row(m) for m in queues],
        )
    print_table(
        console,
        "last loads",
        ["load", "source", "stream", "window", "files", "rows", "quarantined", "staged",
         "status", "finished"],
        [
            [x.load_id, x.source, x.stream, x.window, x.files, x.rows, x.quarantined, x.staged,
             x.status, x.finished_at]
            for x in status.loads
        ],
    )  # fmt: skip
    print_table(
        console,
        "last runs",
        ["run", "command", "status", "started", "detail"],
        [[r.run_id, r.command, r.status, r.started_at, r.detail] for r in status.runs],
    )
    console.print(f"quarantined records: {status.quarantined:,} (see {QUARANTINE})")
    for target in status.alerts:
        retry = f", next attempt after {target.next_attempt_at:%Y-%m-%d %H:%M} UTC" if (
            target.next_attempt_at) else ""  # fmt: skip
        failed = f", {target.failures} failure(s) in a row ({target.last_error})" if (
            target.failures) else ""  # fmt: skip
        console.print(f"alerts for {target.target}: {target.pending:,} waiting{failed}{retry}")
    if status.open_schema_events:
        console.print(
            f"open schema events: {status.open_schema_events:,} listing "
            f"{status.open_schema_event_fields:,} field(s) (see `anchorflow drift`)"
        )
    for load in status.noted_loads:
        _warn(console, f"load {load.load_id} ({load.source} {load.stream} {load.window}): "
                       f"{load.note}")  # fmt: skip
    if status.erasures:
        print_table(
            console,
            "erasures waiting for `anchorflow compact`",
            ["erasure", "entity", "erased", "compact by"],
            [[e.erasure_id, e.entity, e.erased_at, e.compact_by] for e in status.erasures],
        )


def _warn(console: Console, text: str) -> None:
    """A warning line; the text is printed as it is (it may hold [brackets])."""
    console.print(Text.assemble(("warning: ", "bold yellow"), text))


def _source_row(m: SourceStatus) -> list[Any]:
    due = "?" if m.due is None else m.due
    lag = "replay" if m.replay_end else m.lag_hours  # hours behind today mean nothing there
    return [m.source, m.stream, m.position, lag, due, m.last_available, m.note]


def _queue_row(m: SourceStatus) -> list[Any]:
    q = m.queue
    assert q is not None
    unknown = "?"
    age = "" if q.oldest_chunk_age is None else _age(q.oldest_chunk_age)
    depth = unknown if q.depth is None else q.depth
    readers = unknown if q.readers_alive is None else q.readers_alive
    return [m.source, m.stream, depth, q.chunks_waiting, age, readers]


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def print_json(result: Any) -> None:
    """A result as plain JSON on stdout, for scripts and other tools (`--json`)."""
    sys.stdout.write(json.dumps(as_json(result), indent=2) + "\n")


def print_arrow(console: Console, result: Any, title: str, max_rows: int = 50) -> None:
    """An Arrow table as a rich table: the first `max_rows` rows, and how many there are."""
    rows = result.slice(0, max_rows).to_pylist()
    print_table(console, title, list(result.column_names), [list(r.values()) for r in rows])
    if result.num_rows > max_rows:
        console.print(f"… {result.num_rows - max_rows:,} more row(s); use --output to export")


def print_rule_run(console: Console, run: Any) -> None:
    """One line per rule run, as it finishes."""
    shadow = " (shadow)" if run.shadow else ""
    console.print(
        f"rule {run.rule}{shadow} {run.window_start:%Y-%m-%d}..{run.window_end:%Y-%m-%d}: "
        f"{run.found:,} found, {run.added:,} new, {run.users_added:,} users and "
        f"{run.events_added:,} events flagged ({run.seconds:.2f}s) [{run.rule_run_id}]",
        highlight=False,
    )


def print_fraud_run(console: Console, result: Any) -> None:
    for rule, why in sorted(result.skipped.items()):
        console.print(f"rule {rule} skipped: {why}", highlight=False)
    seconds = sum(r.seconds for r in result.runs)
    console.print(
        f"fraud: {len(result.runs)} rule(s) ran in {seconds:.1f}s, {result.users_added:,} users "
        "newly flagged; `anchorflow fraud report` shows the report"
    )


def print_evaluation(console: Console, result: Any) -> None:
    from anchorflow.fraud.evaluate import format_evaluation

    for line in format_evaluation(result.evaluation):
        console.print(line, highlight=False, markup=False)
    verdict = "unchanged" if result.unchanged else "CHANGED"
    console.print(
        f"re-run of {result.reran} rule(s) over their last window: fraud.* {verdict} "
        f"(sha256 {result.checksum_before[:16]} → {result.checksum_after[:16]})",
        highlight=False,
    )
