"""One writer at a time on every engine: a second `anchorflow run` waits for the warehouse up to
`warehouse.lock_timeout`, then fails in one line that names the process holding it; once the
first writer is done, the run loads."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from tests import engines
from tests.builders import amplitude_source, build_project, open_warehouse
from tests.conftest import available_at, table_rows

pytestmark = pytest.mark.e2e

ANCHORFLOW = Path(sys.executable).with_name("anchorflow")


def test_a_second_writer_waits_out_the_lock_timeout_and_fails_in_one_line_naming_the_first(
    engine: str, tmp_path: Path, emulator: AmplitudeEmulator
) -> None:
    root = tmp_path / "p"
    project = build_project(
        root, sources={"amplitude": amplitude_source(emulator.base_url)}, staging={},
        warehouse={**engines.warehouse_settings(root), "lock_timeout": "1s"},
    )  # fmt: skip
    run = [str(ANCHORFLOW), "run", "--project", str(root), "--now",
           available_at(2).strftime("%Y%m%dT%H")]  # fmt: skip
    with open_warehouse(project):  # the first writer, this process
        waited = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert waited.returncode == 1
    (line,) = [line for line in waited.stderr.splitlines() if line.strip()]
    # (DuckDB names this process; PostgreSQL, the server process serving its connection.)
    assert line.startswith("error: the warehouse ") and re.search(r" PID \d+ ", line)
    assert "warehouse.lock_timeout" in line

    done = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert table_rows(project, "SELECT count(*) FROM meta.loads") == [(2,)]
