"""Dashboard files: what a valid one reads as, and one line per problem naming the file and key."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from anchorflow.config.dashboards import FunnelTile, load_dashboards, parse_range
from anchorflow.errors import ConfigError
from tests.builders import build_project

pytestmark = pytest.mark.unit

GOOD = """
title: Overview
events: {model: events, dimensions: [platform]}
filters:
  date: {default: last 7 days, relative_to: latest}
  segments: [platform]
tiles:
  - kind: funnel
    steps: [session_start, {event: [add_to_cart, search], label: engaged}, purchase]
    window: 2d
  - {kind: retention, weeks: 4, return_event: purchase, width: 12}
"""


def _write(root: Path, files: dict[str, str]) -> None:
    folder = root / "dashboards"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_a_dashboard_file_reads_as_tiles(tmp_path: Path) -> None:
    _write(tmp_path, {"overview.yml": GOOD})
    project = build_project(tmp_path)
    found = load_dashboards(project)
    assert list(found) == ["overview"]
    board = found["overview"]
    funnel = board.tiles[0]
    assert isinstance(funnel, FunnelTile)
    assert [s.name for s in funnel.steps] == ["session_start", "engaged", "purchase"]
    assert funnel.window == timedelta(days=2) and funnel.width == 6
    assert board.tiles[1].width == 12 and board.file == "dashboards/overview.yml"
    assert board.tile_title(0) == "Funnel: session_start → engaged → purchase"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("title: x\ntiles: []\n", "dashboards/bad.yml: tiles: List should have at least 1 item"),
        (
            "title: x\ntiles: [{kind: pie, metric: m}]\n",
            "dashboards/bad.yml: tiles.0: unknown tile kind",
        ),
        (
            "title: x\ntiles: [{kind: kpi, metric: m, width: 13}]\n",
            "dashboards/bad.yml: tiles.0.width: Input should be less than or equal to 12",
        ),
        (
            "title: x\ntiles: [{kind: kpi, metric: m, colour: red}]\n",
            "dashboards/bad.yml: tiles.0.colour: unknown key",
        ),
        (
            "title: x\ntiles: [{kind: funnel, steps: [a, b], window: 7d}]\n",
            "dashboards/bad.yml: tiles.0: a funnel tile reads events",
        ),
        (
            "title: x\nevents: {model: events}\n"
            "tiles: [{kind: funnel, steps: [a, b], window: soon}]\n",
            "dashboards/bad.yml: tiles.0.window: expected a duration",
        ),
        (
            "title: x\nfilters: {date: {default: last summer}}\ntiles: [{kind: kpi, metric: m}]\n",
            "dashboards/bad.yml: filters.date.default: expected `last N days|weeks|months`",
        ),
        (
            "title: x\nevents: {model: evnts}\ntiles: [{kind: retention}]\n",
            "dashboards/bad.yml: events.model: unknown staging model 'evnts'",
        ),
        (
            "title: x\nevents: {model: events}\n"
            "tiles: [{kind: retention, first_seen: {model: firsts}}]\n",
            "dashboards/bad.yml: tiles.0.first_seen.model: unknown staging model 'firsts'",
        ),
        (
            "title: x\nevents: {model: events}\ntiles: [{kind: retention, cohort_event: a, "
            "first_seen: {table: marts.firsts}}]\n",
            "dashboards/bad.yml: tiles.0: first_seen holds each user's first event of any type",
        ),
        (
            "title: x\nevents: {table: raw.x}\ntiles: [{kind: retention}]\n",
            "dashboards/bad.yml: events: table: expected <schema>.<table>",
        ),
        ("title: [x\n", "dashboards/bad.yml: line 2: not valid YAML"),
        ("- a\n", "dashboards/bad.yml: expected a mapping"),
    ],
)
def test_a_bad_dashboard_is_refused_when_the_project_is_read(
    tmp_path: Path, text: str, problem: str
) -> None:
    _write(tmp_path, {"bad.yml": text})
    with pytest.raises(ConfigError) as error:
        build_project(tmp_path)
    assert len(error.value.problems) == 1
    assert error.value.problems[0].startswith(problem), error.value.problems


def test_the_dashboards_folder_is_a_setting(tmp_path: Path) -> None:
    _write(tmp_path, {"bad.yml": "- a\n"})  # not read: the setting points elsewhere
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "ok.yml").write_text(GOOD)
    project = build_project(tmp_path, dashboards={"path": "boards"})
    assert list(load_dashboards(project)) == ["ok"]


def test_date_ranges() -> None:
    today = date(2024, 3, 31)
    assert parse_range("last 30 days", today) == (date(2024, 3, 2), date(2024, 4, 1))
    assert parse_range("last 1 day", today) == (today, date(2024, 4, 1))
    assert parse_range("last 2 weeks", today) == (date(2024, 3, 18), date(2024, 4, 1))
    assert parse_range("2024-03-01..2024-03-03", today) == (date(2024, 3, 1), date(2024, 3, 4))
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_range("2024-03-03..2024-03-01", today)
