"""meta.runs: every command is recorded, and one cut off by a crash is marked so."""

from __future__ import annotations

import threading
from collections.abc import Callable

import duckdb
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


def test_an_interrupt_the_engine_turned_into_its_own_error_is_recorded_as_interrupted(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    """Ctrl-C while DuckDB runs a statement reaches Python as DuckDB's error, not as the
    interrupt: the run is still recorded as interrupted (not failed, nobody paged), and the
    interrupt is what leaves the command."""
    project = make_project(emulator.base_url)
    con = duckdb.connect()
    with (
        Pipeline(project, now=available_at(1)) as pipeline,
        pytest.raises(KeyboardInterrupt) as stopped,
        pipeline._recorded_run("run"),
    ):
        threading.Timer(0.2, con.interrupt).start()
        con.execute("SELECT count(*) FROM range(10000000000) a, range(10) b").fetchall()
    assert type(stopped.value.__cause__).__name__ == "InterruptException"
    runs = table_rows(project, "SELECT status, detail FROM meta.runs")
    assert runs == [("interrupted", "stopped by Ctrl-C (SIGINT)")]
