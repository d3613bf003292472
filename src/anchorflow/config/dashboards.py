"""Dashboards: `dashboards/<name>.yml` files beside the project file, one dashboard each.

```yaml
title: Product overview
events: {model: app_events, user: user_id, time: event_time, event: event_type,
         dimensions: [country, platform]}       # what funnel and retention tiles read
filters:
  date: {default: last 30 days, relative_to: latest}
  segments: [country, platform]                 # choices are read from the data
tiles:
  - {kind: kpi, metric: active_users, width: 3}
  - {kind: line, metric: active_users, grain: day, by: platform, width: 9}
  - {kind: bar, metric: revenue, by: country, top: 10}
  - {kind: table, metrics: [revenue, active_users], by: [country]}
  - {kind: funnel, steps: [session_start, add_to_cart, purchase], window: 7d}
  - {kind: retention, weeks: 6}
```

Pure: the files are read and checked here, no engine is opened; that metric names exist is
checked against the project's `metrics:` when there is one, and `validate` binds every tile's
SQL on the scratch warehouse (`dashboards.check`). Problems are one line each, naming the file
and the key.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator

from anchorflow.config.tables import TableRef
from anchorflow.project_types import IDENTIFIER, Duration, Identifier, Strict

if TYPE_CHECKING:
    from anchorflow.config.project import Project

GRAINS = ("hour", "day", "week", "month", "quarter", "year")
RELATIVE = re.compile(r"^\s*last\s+(\d+)\s+(day|week|month)s?\s*$", re.IGNORECASE)
ABSOLUTE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})\s*$")
MAX_FILE_BYTES = 1 << 20


class DashboardsSettings(Strict):
    """The project file's `dashboards:` section."""

    path: str = "dashboards"


def parse_range(text: str, today: date) -> tuple[date, date]:
    """`last 30 days` (the 30 days up to and including `today`), `last 4 weeks`, `last 3
    months` (30 days each), or `2024-03-01..2024-03-31` (both days included), as
    [start, end) dates."""
    relative = RELATIVE.match(text)
    if relative:
        count, unit = int(relative.group(1)), relative.group(2).lower()
        days = count * {"day": 1, "week": 7, "month": 30}[unit]
        if days < 1:
            raise ValueError(f"expected at least one day, got {text!r}")
        return today - timedelta(days=days - 1), today + timedelta(days=1)
    absolute = ABSOLUTE.match(text)
    if absolute:
        start, last = date.fromisoformat(absolute.group(1)), date.fromisoformat(absolute.group(2))
        if last < start:
            raise ValueError(f"the range ends before it starts: {text!r}")
        return start, last + timedelta(days=1)
    raise ValueError(f"expected `last N days|weeks|months` or YYYY-MM-DD..YYYY-MM-DD, got {text!r}")


def _range_text(value: Any) -> str:
    text = str(value)
    parse_range(text, date(2000, 1, 1))
    return text


RangeText = Annotated[str, BeforeValidator(_range_text)]


class EventsSource(TableRef):
    """The events table that funnel and retention tiles read: a staging model or a table."""

    user: Identifier = "user_id"
    time: Identifier = "event_time"
    event: Identifier = "event_type"
    dimensions: list[Identifier] = Field(
        default=[], description="columns that the dashboard's segment filters may filter on"
    )


class DateFilter(Strict):
    default: RangeText = "last 30 days"
    relative_to: Literal["today", "latest"] = Field(
        default="today",
        description="what `last N days` ends at: today (UTC), or the last day of the events",
    )


class Filters(Strict):
    date: DateFilter = DateFilter()
    segments: list[Identifier] = []


def _names(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Names = Annotated[list[Identifier], BeforeValidator(_names)]


class TileBase(Strict):
    title: str | None = None
    width: int = Field(default=6, ge=1, le=12)


class KpiTile(TileBase):
    kind: Literal["kpi"]
    metric: Identifier


class LineTile(TileBase):
    kind: Literal["line"]
    metric: Identifier
    grain: Literal["hour", "day", "week", "month", "quarter", "year"] = "day"
    by: Identifier | None = None


class BarTile(TileBase):
    kind: Literal["bar"]
    metric: Identifier
    by: Identifier
    top: int = Field(default=10, ge=1, le=1000)


class TableTile(TileBase):
    kind: Literal["table"]
    metrics: Names
    by: Names = []
    limit: int = Field(default=100, ge=1, le=10_000)


class FunnelStep(Strict):
    event: Names
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or " or ".join(self.event)


def _step(value: Any) -> Any:
    return {"event": value} if isinstance(value, str | list) else value


class FunnelTile(TileBase):
    kind: Literal["funnel"]
    steps: list[Annotated[FunnelStep, BeforeValidator(_step)]] = Field(min_length=2)
    window: Duration = Field(description="how long after step 1 a user has for the others")
    by: Identifier | None = None
    events: EventsSource | None = None

    @field_validator("window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a duration longer than 0s, such as 7d")
        return value


class RetentionTile(TileBase):
    kind: Literal["retention"]
    weeks: int = Field(default=6, ge=1, le=52, description="returning weeks shown: 0..weeks")
    cohort_event: Names = Field(default=[], description="event types that start a cohort")
    return_event: Names = Field(default=[], description="event types that count as a return")
    events: EventsSource | None = None
    first_seen: EventsSource | None = Field(
        default=None,
        description="each user's first event time, per values of the events' dimensions (a "
        "mart), read for the cohorts instead of grouping all the events by user",
    )

    @model_validator(mode="after")
    def _first_seen_of_any_event(self) -> RetentionTile:
        if self.first_seen is not None and self.cohort_event:
            raise ValueError(
                "first_seen holds each user's first event of any type: drop cohort_event "
                "or first_seen"
            )
        return self


Tile = Annotated[
    Union[KpiTile, LineTile, BarTile, TableTile, FunnelTile, RetentionTile],  # noqa: UP007
    Field(discriminator="kind"),
]
METRIC_KINDS = ("kpi", "line", "bar", "table")
EVENT_KINDS = ("funnel", "retention")


class Dashboard(Strict):
    title: str
    description: str = ""
    events: EventsSource | None = None
    filters: Filters = Filters()
    tiles: list[Tile] = Field(min_length=1)

    # Set by load_dashboards, not by the file.
    name: str = ""
    file: str = ""

    @model_validator(mode="after")
    def _events_where_needed(self) -> Dashboard:
        for index, tile in enumerate(self.tiles):
            if isinstance(tile, FunnelTile | RetentionTile) and not (tile.events or self.events):
                raise ValueError(
                    f"tiles.{index}: a {tile.kind} tile reads events: give the dashboard (or "
                    "the tile) events: {model: ..., user: ..., time: ..., event: ...}"
                )
        return self

    def events_of(self, tile: FunnelTile | RetentionTile) -> EventsSource:
        source = tile.events or self.events
        assert source is not None  # checked when read
        return source

    def tile_title(self, index: int) -> str:
        tile = self.tiles[index]
        if tile.title:
            return tile.title
        if isinstance(tile, FunnelTile):
            return "Funnel: " + " → ".join(step.name for step in tile.steps)
        if isinstance(tile, RetentionTile):
            return "Weekly retention"
        if isinstance(tile, TableTile):
            return ", ".join(tile.metrics) + (f" by {', '.join(tile.by)}" if tile.by else "")
        if isinstance(tile, LineTile | BarTile) and tile.by:
            return f"{tile.metric} by {tile.by}"
        return tile.metric


def dashboard_files(path: Path) -> dict[str, Path]:
    """Every `<name>.yml` (or `.yaml`) in the dashboards folder, by name."""
    if not path.is_dir():
        return {}
    files = sorted([*path.glob("*.yml"), *path.glob("*.yaml")])
    return {p.stem: p for p in files}


def read_dashboard(name: str, path: Path, where: str) -> Dashboard:
    """One file as a `Dashboard`, or ValueError with its problems, one line each."""
    if not IDENTIFIER.match(name):
        raise ValueError(f"{where}: a dashboard's file name must be a plain identifier")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{where}: the file is larger than 1 MiB")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        problem = " ".join(str(getattr(error, "problem", None) or error).split())
        raise ValueError(f"{where}: {line}not valid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping (title:, tiles:, ...)")
    try:
        return Dashboard.model_validate({**data, "name": name, "file": where})
    except ValidationError as error:
        raise ValueError("\n".join(_lines(error, where))) from None


def _lines(error: ValidationError, where: str) -> list[str]:
    lines = []
    for item in error.errors():
        # The discriminated union adds the kind as a path part: drop it.
        loc = [
            str(p)
            for p in item["loc"]
            if p not in ("kpi", "line", "bar", "table", "funnel", "retention")
        ]
        loc = [p for p in loc if not p.startswith("function-")]
        key = ".".join(loc)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "union_tag_invalid":
            message = f"unknown tile kind; expected one of {', '.join(METRIC_KINDS + EVENT_KINDS)}"
        elif item["type"] == "union_tag_not_found":
            message = f"a tile needs kind: one of {', '.join(METRIC_KINDS + EVENT_KINDS)}"
        lines.append(f"{where}: {key + ': ' if key else ''}{' '.join(message.split())}")
    return lines


def load_dashboards(project: Project) -> dict[str, Dashboard]:
    """Every dashboard of the project, by name; ValueError listing every problem."""
    folder = project.root / project.dashboards.path
    found: dict[str, Dashboard] = {}
    problems: list[str] = []
    for name, path in dashboard_files(folder).items():
        where = f"{project.dashboards.path}/{path.name}"
        try:
            found[name] = read_dashboard(name, path, where)
        except ValueError as error:
            problems += str(error).splitlines()
            continue
        problems += _unknown_names(project, found[name])
    if problems:
        raise ValueError("\n".join(problems))
    return found


def _unknown_names(project: Project, dashboard: Dashboard) -> list[str]:
    """Tiles that read a staging model the project lacks, or a metric it does not define
    (when it has a `metrics:` section: before one exists, run_query names what is missing)."""
    problems = []
    sources = (
        [("events", dashboard.events)]
        + [
            (f"tiles.{i}.events", t.events)
            for i, t in enumerate(dashboard.tiles)
            if isinstance(t, FunnelTile | RetentionTile)
        ]
        + [
            (f"tiles.{i}.first_seen", t.first_seen)
            for i, t in enumerate(dashboard.tiles)
            if isinstance(t, RetentionTile)
        ]
    )
    for key, source in sources:
        if source is not None and source.model is not None and source.model not in project.staging:
            problems.append(
                f"{dashboard.file}: {key}.model: unknown staging model {source.model!r}"
            )
    known = _metric_names(project)
    if known is None:
        return problems
    for index, tile in enumerate(dashboard.tiles):
        names = tile.metrics if isinstance(tile, TableTile) else (
            [tile.metric] if isinstance(tile, KpiTile | LineTile | BarTile) else []
        )  # fmt: skip
        for metric in names:
            if metric not in known:
                close = difflib.get_close_matches(metric, sorted(known), n=1)
                hint = f"did you mean {close[0]!r}?" if close else (
                    "metrics: " + (", ".join(sorted(known)[:10]) or "none")
                )  # fmt: skip
                problems.append(
                    f"{dashboard.file}: tiles.{index}: unknown metric {metric!r} ({hint})"
                )
    return problems


def _metric_names(project: Project) -> set[str] | None:
    """The names of the project's metrics, or None when the project has no `metrics:`."""
    metrics = getattr(project, "metrics", None)
    names = getattr(metrics, "metrics", None)
    if not names:
        return None
    return set(names)
