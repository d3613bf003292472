"""Dashboards defined in YAML in the project (`dashboards/<name>.yml`, read by
`config.dashboards`): each tile runs as one query (`tiles`, `events`) into a result with its
data, SQL and timing; `specs` turns results into Vega-Lite specs and JSON. The CLI
(`anchorflow dashboards`) and the web app (`serve/web/dashboards.py`) only print or render them.
"""

from __future__ import annotations

from typing import Any

from anchorflow.config.dashboards import Dashboard, load_dashboards
from anchorflow.config.project import Project
from anchorflow.dashboards.specs import plain, tile_json
from anchorflow.dashboards.tiles import (
    DashboardResult,
    Selection,
    TileResult,
    default_selection,
    run_dashboard,
    run_tile,
)
from anchorflow.errors import ConfigError

__all__ = [
    "Dashboard",
    "DashboardResult",
    "Selection",
    "TileResult",
    "dashboard_json",
    "dashboards",
    "default_selection",
    "find",
    "run_dashboard",
    "run_tile",
]


def dashboards(project: Project) -> dict[str, Dashboard]:
    """The project's dashboards by name (ConfigError naming each bad file and key)."""
    try:
        return load_dashboards(project)
    except ValueError as error:
        raise ConfigError(str(error).splitlines()) from None


def find(project: Project, name: str) -> Dashboard:
    found = dashboards(project)
    if name not in found:
        import difflib

        close = difflib.get_close_matches(name, list(found), n=1)
        hint = f"did you mean {close[0]!r}?" if close else (
            f"dashboards: {', '.join(found) or 'none'} in {project.dashboards.path}/"
        )  # fmt: skip
        raise ConfigError([f"no dashboard {name!r} ({hint})"])
    return found[name]


def dashboard_json(result: DashboardResult) -> dict[str, Any]:
    """A dashboard's results as JSON (the API and `dashboards show --format json`)."""
    return {
        "name": result.name,
        "title": result.title,
        "description": result.description,
        "from": plain(result.selection.start),
        "to": plain(result.selection.end),
        "segments": result.selection.segments,
        "choices": result.choices,
        "seconds": round(result.seconds, 4),
        "tiles": [tile_json(tile) for tile in result.tiles],
    }
