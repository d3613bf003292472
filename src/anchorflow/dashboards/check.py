"""`validate`'s check of the dashboards: every tile's query bound on the scratch warehouse
(empty tables of everything the project makes), so a column or metric a tile reads that is not
there is named with its file and tile before anyone opens the page."""

from __future__ import annotations

from datetime import date

from anchorflow.config.project import Project
from anchorflow.dashboards import dashboards
from anchorflow.dashboards.tiles import Selection, metric_dimensions, run_tile
from anchorflow.warehouse import Warehouse

SCRATCH_RANGE = Selection(date(2000, 1, 3), date(2000, 1, 10))


def dashboard_problems(warehouse: Warehouse, project: Project) -> list[str]:
    """One line per tile whose query the engine cannot run, `<file>: tiles.<i>: <error>`."""
    found = dashboards(project)
    if not found:
        return []
    needs_metrics = any(
        t.kind in ("kpi", "line", "bar", "table") for d in found.values() for t in d.tiles
    )
    dimensions = metric_dimensions(project) if needs_metrics else {}
    problems = []
    for dashboard in found.values():
        segments = {name: "" for name in dashboard.filters.segments}
        selection = Selection(SCRATCH_RANGE.start, SCRATCH_RANGE.end, segments)
        for index in range(len(dashboard.tiles)):
            result = run_tile(warehouse, project, dashboard, index, selection, dimensions)
            if result.error is not None:
                problems.append(f"{dashboard.file}: tiles.{index}: {result.error}")
    return problems
