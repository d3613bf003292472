"""Crash recovery: a run killed at any point of a window's transaction, then rerun, leaves the
warehouse identical to a run that never crashed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, Fault
from tests import engines
from tests.builders import amplitude_source, build_project
from tests.conftest import (
    API_KEY,
    NEXT_HOUR,
    SECRET_KEY,
    SMALL,
    START,
    available_at,
    env_without_crash,
    hour,
    table_rows,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
HOURS = 5
NOW = available_at(HOURS).strftime("%Y%m%dT%H")
CRASH_EXIT = 86
MART = "SELECT event_type, count(*) AS events FROM staging.events GROUP BY ALL ORDER BY ALL"

# What must be identical between the crashed-then-rerun warehouse and a clean one.
COMPARED = {
    "raw": "SELECT load_id, source, stream, origin, line_no, record FROM raw.amplitude_events "
    "ORDER BY load_id, origin, line_no",
    "staging": "SELECT * FROM staging.events ORDER BY load_id, event_uuid",
    "watermarks": "SELECT source, stream, cursor, load_id FROM meta.cursors "
    "ORDER BY source, stream",
    "loads": "SELECT load_id, window_start, rows, status, staged, quarantined FROM meta.loads "
    "ORDER BY load_id",
    "quarantine": "SELECT * FROM meta.quarantine ORDER BY load_id, stage, origin, line_no",
    "mart": "SELECT * FROM marts.daily ORDER BY ALL",
}


def run(project: Project, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**env_without_crash(), "AMPLITUDE_API_KEY": API_KEY, "AMPLITUDE_SECRET_KEY": SECRET_KEY}
    if crash_at:
        env["ANCHORFLOW_CRASH_AT"] = crash_at
    return subprocess.run(
        [str(ANCHORFLOW), "run", "--project", str(project.root), "--now", NOW],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def snapshot(project: Project, compared: Sequence[str] = tuple(COMPARED)) -> dict[str, Any]:
    return {name: table_rows(project, COMPARED[name]) for name in compared}


@pytest.fixture(scope="module")
def faulty_emulator() -> Iterator[AmplitudeEmulator]:
    """Shared by the module so every run serves the same (cached) hours."""
    store = ExportStore(START, hour(48), spec=SMALL)
    # Bad lines in the crashing window (quarantine) and duplicates of earlier events later on
    # (staging's dedup across windows): both must come out the same after recovery.
    faults = [Fault("malformed_line", hours={hour(0)}), Fault("reexport", hours={hour(2)}, count=7)]
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY, faults) as running:
        yield running


@pytest.fixture(scope="module")
def new_project(
    faulty_emulator: AmplitudeEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], Project]:
    def make() -> Project:
        source = amplitude_source(faulty_emulator.base_url, hours_per_request=2)
        root = tmp_path_factory.mktemp("project")
        return build_project(root, sources={"amplitude": source}, marts={"daily": MART})

    return make


@pytest.fixture(scope="module")
def clean(new_project: Callable[[], Project]) -> dict[str, list[tuple[Any, ...]]]:
    """The warehouse of a run that never crashed."""
    project = new_project()
    result = run(project)
    assert result.returncode == 0, result.stderr
    expected = snapshot(project)
    assert [row[1] for row in expected["loads"]] == [hour(n) for n in range(HOURS)]
    assert expected["quarantine"], "the malformed line should be quarantined"
    assert len(expected["staging"]) < len(expected["raw"]), "re-exported events are deduplicated"
    assert expected["mart"]
    return expected


@pytest.mark.parametrize("point", ["after_land", "after_stage", "before_commit", "after_commit"])
def test_a_crashed_run_rerun_equals_a_clean_run(
    point: str, new_project: Callable[[], Project], clean: dict[str, list[tuple[Any, ...]]]
) -> None:
    crashed = new_project()
    result = run(crashed, crash_at=point)
    assert result.returncode == CRASH_EXIT, result.stderr
    committed = 1 if point == "after_commit" else 0  # the crash hits the first window
    path = crashed
    assert table_rows(path, "SELECT window_start FROM meta.loads ORDER BY load_id") == [
        (hour(n),) for n in range(committed)
    ]
    assert (
        table_rows(path, "SELECT DISTINCT load_id FROM raw.amplitude_events") == [(1,)] * committed
    )
    assert table_rows(path, NEXT_HOUR) == ([(hour(1),)] if committed else [])

    result = run(crashed)
    assert result.returncode == 0, result.stderr
    assert snapshot(crashed) == clean


def test_a_run_killed_mid_window_on_each_engine_reruns_to_what_a_clean_run_leaves(
    engine: str, faulty_emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    """The process dies (no cleanup, its connection cut) with the first window landed but not
    committed: the engine rolls the window back, and the rerun redoes it."""
    staged, marts = engines.staging_ported(), engines.marts_ported()
    compared = [name for name in COMPARED if (staged or name != "staging") and
                ((staged and marts) or name != "mart")]  # fmt: skip

    def make(name: str) -> Project:
        source = amplitude_source(faulty_emulator.base_url, hours_per_request=2)
        return build_project(
            tmp_path / name, sources={"amplitude": source},
            staging=None if staged else {}, marts={"daily": MART} if staged and marts else None,
        )  # fmt: skip

    clean = make("clean")
    assert run(clean).returncode == 0
    crashed = make("crashed")
    result = run(crashed, crash_at="after_land")
    assert result.returncode == CRASH_EXIT, result.stderr
    assert table_rows(crashed, "SELECT count(*) FROM meta.loads") == [(0,)]
    assert table_rows(crashed, "SELECT count(*) FROM raw.amplitude_events") == [(0,)]
    assert table_rows(crashed, "SELECT status FROM meta.runs") == [("running",)]

    result = run(crashed)
    assert result.returncode == 0, result.stderr
    assert snapshot(crashed, compared) == snapshot(clean, compared)
    assert table_rows(crashed, "SELECT status FROM meta.runs ORDER BY run_id") == [
        ("interrupted",), ("ok",),
    ]  # fmt: skip
