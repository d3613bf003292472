"""Files published whole: the temporary file a publication writes, and its leftovers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from anchorflow.publish.files import leftovers, publish_file

pytestmark = pytest.mark.unit


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The PID of a process that runs until the test ends."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                               stdin=subprocess.PIPE)  # fmt: skip
    try:
        yield process.pid
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


def dead_pid() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    return int(process.stdout)


def test_only_the_leftovers_of_processes_that_are_gone_are_removed(
    tmp_path: Path, live_pid: int
) -> None:
    """Two publications of one target at once (two `export`s, `export` beside `query -o`)
    must not delete each other's temporary file, which failed the first one."""
    target = tmp_path / "events.parquet"
    writing = tmp_path / f".events.parquet.{live_pid}.tmp"
    cut_off = tmp_path / f".events.parquet.{dead_pid()}.tmp"
    other = tmp_path / f".events.parquet.{dead_pid()}.tmp.parquet"  # not one of ours
    for path in (writing, cut_off, other):
        path.write_text("partial")
    assert leftovers(target) == [cut_off]

    assert publish_file(target, lambda temporary: temporary.write_text("whole")) == 5
    assert target.read_text() == "whole"
    assert writing.read_text() == "partial"  # the other publication goes on with its file
    assert not cut_off.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, writing.name, other.name]
    )
