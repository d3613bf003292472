"""meta.runs: every command is recorded, and one cut off by a crash is marked so."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.journal.runs import start_run
from anchorflow.run import Pipeline
from tests.conftest import available_at, table_rows

pytestmark = pytest.mark.integration


def test_a_run_left_running_by_a_crash_is_marked_interrupted(
    engine: str, emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(emulator.base_url)
    with Pipeline(project, now=available_at(1)) as pipeline:
        start_run(pipeline.warehouse, "run")  # never finished: as after a kill -9
    with Pipeline(project, now=available_at(1)) as pipeline:
        pipeline.run()
    runs = table_rows(project, "SELECT run_id, status FROM meta.runs ORDER BY 1")
    assert runs == [(1, "interrupted"), (2, "ok")]
