"""meta.runs: every command is recorded, and one cut off by a crash is marked so."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from anchorflow import journal
from anchorflow.emulators.amplitude import AmplitudeEmulator
from anchorflow.pipeline import Pipeline
from anchorflow.project import Project
from tests.conftest import available_at, table_rows

pytestmark = pytest.mark.integration


def test_a_run_left_running_by_a_crash_is_marked_interrupted(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(emulator.base_url)
    with Pipeline(project, now=available_at(1)) as pipeline:
        journal.start_run(pipeline.warehouse, "run")  # never finished: as after a kill -9
    with Pipeline(project, now=available_at(1)) as pipeline:
        pipeline.run()
    runs = table_rows(project.warehouse_path, "SELECT run_id, status FROM meta.runs ORDER BY 1")
    assert runs == [(1, "interrupted"), (2, "ok")]
