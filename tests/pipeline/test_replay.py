"""A source with an `end:` replays a past export: no hour after it is planned, whatever the clock
says, and `status` measures the replay against its last hour, not against today."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.errors import ConfigError
from anchorflow.run import Pipeline
from tests.conftest import NEXT_HOUR, available_at, hour, run_pipeline, table_rows

pytestmark = pytest.mark.integration

TODAY = datetime(2031, 6, 1, 12)  # years after the export: every hour of it is available
END = "20240301T03"


def test_a_replay_loads_up_to_its_end_and_never_plans_an_hour_after_it(
    engine: str, emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(emulator.base_url, end=END)
    summary = run_pipeline(project, TODAY)
    assert [w.window_key for w in summary.windows] == [
        "20240301T00", "20240301T01", "20240301T02", "20240301T03",
    ]  # fmt: skip
    assert all(r.end is not None and r.end <= hour(3) for r in emulator.requests)
    assert table_rows(project, NEXT_HOUR) == [(hour(4),)]

    asked = len(emulator.requests)
    assert run_pipeline(project, TODAY).windows == []
    assert len(emulator.requests) == asked

    with Pipeline(project, now=TODAY) as pipeline:
        (state,) = pipeline.status().sources
    assert (state.position, state.due, state.lag_hours) == ("20240301T04", 0, None)
    assert (state.replay_end, state.last_available) == (END, END)
    assert state.note == "replay to 20240301T03: done"


def test_a_replay_under_way_counts_the_hours_left_to_its_end(
    engine: str, emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(emulator.base_url, end=END)
    run_pipeline(project, available_at(2))  # hours 0 and 1 were available then
    with Pipeline(project, now=available_at(2)) as pipeline:
        (state,) = pipeline.status().sources
    assert (state.position, state.due, state.lag_hours) == ("20240301T02", 0, None)
    assert state.note == "replay to 20240301T03: 2 hour(s) left"
    assert state.last_available == "20240301T01"


def test_a_backfill_past_the_end_is_refused_in_one_line(
    engine: str, emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(emulator.base_url, end=END)
    with Pipeline(project, now=TODAY) as pipeline, pytest.raises(ConfigError) as refused:
        pipeline.backfill("amplitude", "20240301T02", "20240301T05")
    assert refused.value.problems == [
        "backfill: hour 20240301T05 is after the source's last hour (sources.amplitude.end: "
        "20240301T03)"
    ]
    assert emulator.requests == []


def test_an_end_before_the_start_is_a_one_line_config_error(
    engine: str,
    make_project: Callable[..., Project],
) -> None:
    with pytest.raises(ConfigError) as refused:
        make_project("http://127.0.0.1:9", end="20240229T23")
    assert refused.value.problems == [
        "anchorflow.yml: sources.amplitude.end: the last hour 20240229T23 is before start: "
        "20240301T00"
    ]
