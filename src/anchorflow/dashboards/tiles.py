"""A dashboard's tiles run: each tile → one query → a `TileResult` (columns, rows, the SQL and
its bound values, seconds). KPI, line, bar and table tiles go through the semantic layer
(`metrics.run_query`); funnel and retention tiles read their events table (`dashboards.events`).

The dashboard's global filters are a `Selection`: the date range and the segment values. A
segment filter applies to a tile whose metric (or events table) has that dimension; a tile that
cannot apply one says so (`ignored`), rather than showing numbers that only look filtered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from anchorflow.config.dashboards import (
    BarTile,
    Dashboard,
    EventsSource,
    FunnelTile,
    KpiTile,
    LineTile,
    RetentionTile,
    TableTile,
    parse_range,
)
from anchorflow.config.project import Project
from anchorflow.dashboards.events import Segment, funnel_sql, retention_sql
from anchorflow.errors import AnchorflowError
from anchorflow.warehouse import Warehouse, ident, table

MAX_CHOICES = 200


@dataclass(frozen=True)
class Selection:
    """The dashboard's global filters: [start, end) dates and segment values by dimension."""

    start: date
    end: date
    segments: dict[str, str] = field(default_factory=dict)


@dataclass
class TileResult:
    index: int
    kind: str
    title: str
    width: int
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    sql: str = ""
    params: list[Any] = field(default_factory=list)
    seconds: float = 0.0
    ignored: list[str] = field(default_factory=list)  # segment filters the tile cannot apply
    error: str | None = None


@dataclass
class DashboardResult:
    name: str
    title: str
    description: str
    selection: Selection
    choices: dict[str, list[str]]
    tiles: list[TileResult]
    seconds: float


def default_selection(
    warehouse: Warehouse, dashboard: Dashboard, today: date | None = None
) -> Selection:
    """The date range the dashboard opens with, no segment chosen."""
    setting = dashboard.filters.date
    anchor = today or datetime.now(UTC).date()
    if setting.relative_to == "latest" and dashboard.events is not None:
        anchor = latest_day(warehouse, dashboard.events) or anchor
    start, end = parse_range(setting.default, anchor)
    return Selection(start, end)


def latest_day(warehouse: Warehouse, source: EventsSource) -> date | None:
    schema, name = source.schema_and_name
    latest = warehouse.scalar(f"SELECT max({ident(source.time)}) FROM {table(schema, name)}")
    if latest is None:
        return None
    return latest.date() if isinstance(latest, datetime) else latest


def segment_choices(
    warehouse: Warehouse, project: Project, dashboard: Dashboard
) -> dict[str, list[str]]:
    """The values each segment filter offers, read from the data: the events table's column
    when it has the dimension, else the dimension's values through the semantic layer."""
    choices: dict[str, list[str]] = {}
    for dimension in dashboard.filters.segments:
        source = dashboard.events
        if source is not None and dimension in source.dimensions:
            schema, name = source.schema_and_name
            column = ident(dimension)
            rows = warehouse.query(
                f"SELECT DISTINCT {column} FROM {table(schema, name)} WHERE {column} IS NOT NULL "
                f"ORDER BY 1 LIMIT {MAX_CHOICES}"
            )
        else:
            rows = _metric_values(warehouse, project, dashboard, dimension)
        choices[dimension] = [str(row[0]) for row in rows]
    return choices


def _metric_values(
    warehouse: Warehouse, project: Project, dashboard: Dashboard, dimension: str
) -> list[tuple[Any, ...]]:
    from anchorflow.metrics import MetricQuery, run_query

    dimensions = metric_dimensions(project)
    for tile in dashboard.tiles:
        for metric in _metrics_of(tile):
            if dimension in dimensions.get(metric, ()):
                query = MetricQuery(metrics=(metric,), by=(dimension,), limit=MAX_CHOICES)
                result = run_query(warehouse, project, query)
                return sorted((row[0],) for row in result.rows if row[0] is not None)
    return []


def _metrics_of(tile: Any) -> list[str]:
    if isinstance(tile, TableTile):
        return list(tile.metrics)
    if isinstance(tile, KpiTile | LineTile | BarTile):
        return [tile.metric]
    return []


def metric_dimensions(project: Project) -> dict[str, set[str]]:
    """Each metric's dimensions (its time dimension included), from the semantic layer."""
    from anchorflow.metrics import describe

    found = {}
    for info in describe(project):
        found[info.name] = set(info.dimensions) | (
            {info.time_dimension} if info.time_dimension else set()
        )
    return found


def run_dashboard(
    warehouse: Warehouse,
    project: Project,
    dashboard: Dashboard,
    selection: Selection | None = None,
    with_choices: bool = True,
) -> DashboardResult:
    """Every tile of the dashboard under `selection` (the dashboard's default when None). A
    tile that fails holds its error; the others still run."""
    started = time.perf_counter()
    selection = selection or default_selection(warehouse, dashboard)
    choices = segment_choices(warehouse, project, dashboard) if with_choices else {}
    dimensions = metric_dimensions(project) if any(_metrics_of(t) for t in dashboard.tiles) else {}
    tiles = [
        run_tile(warehouse, project, dashboard, index, selection, dimensions)
        for index in range(len(dashboard.tiles))
    ]
    return DashboardResult(
        dashboard.name, dashboard.title, dashboard.description, selection, choices, tiles,
        time.perf_counter() - started,
    )  # fmt: skip


def run_tile(
    warehouse: Warehouse,
    project: Project,
    dashboard: Dashboard,
    index: int,
    selection: Selection,
    dimensions: dict[str, set[str]] | None = None,
) -> TileResult:
    tile = dashboard.tiles[index]
    result = TileResult(index, tile.kind, dashboard.tile_title(index), tile.width)
    started = time.perf_counter()
    try:
        if isinstance(tile, FunnelTile | RetentionTile):
            _run_events_tile(warehouse, dashboard.events_of(tile), tile, selection, result)
        else:
            known = dimensions if dimensions is not None else metric_dimensions(project)
            _run_metric_tile(warehouse, project, tile, selection, known, result)
    except AnchorflowError as error:
        result.error = str(error).splitlines()[0]
    result.seconds = time.perf_counter() - started
    return result


def _run_events_tile(
    warehouse: Warehouse,
    source: EventsSource,
    tile: FunnelTile | RetentionTile,
    selection: Selection,
    result: TileResult,
) -> None:
    segments = [Segment(d, v) for d, v in selection.segments.items() if d in source.dimensions]
    result.ignored = [d for d in selection.segments if d not in source.dimensions]
    if isinstance(tile, FunnelTile):
        sql, params = funnel_sql(source, tile, selection.start, selection.end, segments)
        result.sql, result.params = sql, params
        result.columns, result.rows = funnel_rows(tile, warehouse.query(sql, params))
    else:
        sql, params = retention_sql(source, tile, selection.start, selection.end, segments)
        result.sql, result.params = sql, params
        result.columns, result.rows = retention_rows(tile, warehouse.query(sql, params))


def funnel_rows(
    tile: FunnelTile, counts: list[tuple[Any, ...]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """One row per (series,) step: its users, % of step 1 and % of the step before."""
    by = [tile.by] if tile.by else []
    rows = []
    for row in counts:
        series, users = (
            (row[:1], [int(v) for v in row[1:]]) if tile.by else ((), [int(v) for v in row])
        )
        for k, step in enumerate(tile.steps):
            of_first = _pct(users[k], users[0])
            of_previous = _pct(users[k], users[k - 1]) if k else 100.0 if users[0] else None
            rows.append((*series, k + 1, step.name, users[k], of_first, of_previous))
    return [*by, "step", "label", "users", "pct_of_first", "pct_of_previous"], rows


def retention_rows(
    tile: RetentionTile, grid: list[tuple[Any, ...]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """One row per cohort week and week n (0..weeks): its users, returning users and %. Weeks
    after the last one anybody returned in are left out (not over yet, or not loaded); a week
    before it that nobody of the cohort returned in is 0."""
    counts: dict[tuple[date, int], int] = {}
    sizes: dict[date, int] = {}
    for cohort, size, n, users in grid:
        day = cohort.date() if isinstance(cohort, datetime) else cohort
        sizes[day] = int(size)
        if n is not None:
            counts[(day, int(n))] = int(users)
    # The last week anyone came back in: later weeks are not over yet (or not loaded).
    reached = max((c + timedelta(weeks=n) for (c, n), u in counts.items() if u), default=None)
    rows = []
    for cohort, size in sorted(sizes.items()):
        for n in range(tile.weeks + 1):
            if n and (reached is None or cohort + timedelta(weeks=n) > reached):
                break
            users = counts.get((cohort, n), 0)
            rows.append((cohort, size, n, users, _pct(users, size)))
    return ["cohort", "cohort_users", "week", "users", "pct"], rows


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _run_metric_tile(
    warehouse: Warehouse,
    project: Project,
    tile: Any,
    selection: Selection,
    dimensions: dict[str, set[str]],
    result: TileResult,
) -> None:
    from anchorflow.metrics import Filter, MetricQuery, run_query

    names = _metrics_of(tile)
    usable = set.intersection(*(dimensions.get(m, set()) for m in names)) if names else set()
    where = tuple(Filter(d, "=", v) for d, v in selection.segments.items() if d in usable)
    result.ignored = [d for d in selection.segments if d not in usable]
    query = _metric_query(tile, where, selection)
    answer = run_query(warehouse, project, query)
    result.sql, result.params = answer.sql, list(answer.params)
    result.columns, result.rows = list(answer.columns), [tuple(r) for r in answer.rows]
    if isinstance(tile, KpiTile):
        span = selection.end - selection.start
        before = MetricQuery(
            metrics=query.metrics, where=where, start=selection.start - span, end=selection.start
        )
        previous = run_query(warehouse, project, before)
        value = _first(answer.rows)
        prior = _first(previous.rows)
        change = _pct_change(value, prior)
        result.columns = ["value", "previous", "change_pct"]
        result.rows = [(value, prior, change)]


def _metric_query(tile: Any, where: tuple[Any, ...], selection: Selection) -> Any:
    from anchorflow.metrics import MetricQuery

    window: dict[str, Any] = {"where": where, "start": selection.start, "end": selection.end}
    if isinstance(tile, KpiTile):
        return MetricQuery(metrics=(tile.metric,), **window)
    if isinstance(tile, LineTile):
        by = (tile.by,) if tile.by else ()
        return MetricQuery(metrics=(tile.metric,), by=by, grain=tile.grain, **window)
    if isinstance(tile, BarTile):
        return MetricQuery(
            metrics=(tile.metric,), by=(tile.by,), order=tile.metric, limit=tile.top, **window
        )
    return MetricQuery(
        metrics=tuple(tile.metrics), by=tuple(tile.by), order=tile.metrics[0], limit=tile.limit,
        **window,
    )  # fmt: skip


def _first(rows: list[Any]) -> Any:
    return rows[0][0] if rows and rows[0] else None


def _pct_change(value: Any, prior: Any) -> float | None:
    if value is None or prior in (None, 0):
        return None
    return round(100.0 * (float(value) - float(prior)) / float(prior), 1)


Runner = Callable[[Warehouse], DashboardResult]


def shift(selection: Selection, days: int) -> Selection:
    """The same range moved by `days` (the benchmark varies its filters with it)."""
    delta = timedelta(days=days)
    return Selection(selection.start + delta, selection.end + delta, dict(selection.segments))
