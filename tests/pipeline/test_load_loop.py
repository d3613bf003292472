"""The loader loop: chunk sources run again and again; idle rounds skipped; `anchorflow load`
until SIGTERM."""

from __future__ import annotations

import linecache
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from anchorflow.cli import base
from anchorflow.errors import ConfigError, Terminated
from anchorflow.run.loop import LoadLoop
from tests.builders import build_project
from tests.conftest import env_without_crash, table_rows
from tests.sources.chunk_kit import SOURCE, chunk_project, events, land_chunk, sealed, start_launch

pytestmark = pytest.mark.integration
ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
COUNT = "SELECT count(*) FROM raw.backend_events"


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_run_once_loads_what_landed_and_skips_idle_rounds(engine: str, tmp_path: Path) -> None:
    project = chunk_project(tmp_path / "p")
    launch = start_launch(project)
    land_chunk(project, "events", launch, 1, events(10))
    loop = LoadLoop(project, [SOURCE], interval=0.1, idle_every=3600)
    first = loop.run_once()
    assert first is not None and first.rows == 10
    assert loop.run_once() is None  # nothing landed since: no run, no row in meta.runs
    land_chunk(project, "events", launch, 2, events(5, 10))
    second = loop.run_once()
    assert second is not None and second.rows == 5
    assert table_rows(project, COUNT) == [(15,)]
    assert table_rows(project, "SELECT count(*) FROM meta.runs") == [(2,)]


def test_run_forever_loads_chunks_as_they_land_until_stopped(tmp_path: Path) -> None:
    project = chunk_project(tmp_path / "p")
    launch = start_launch(project)
    stop = threading.Event()
    loop = LoadLoop(project, [SOURCE], interval=0.05)
    worker = threading.Thread(target=loop.run_forever, args=(stop,))
    worker.start()
    try:
        for seq in range(1, 4):
            land_chunk(project, "events", launch, seq, events(7, 7 * seq))
            wait_for(lambda: not sealed(project))  # deleted once committed
    finally:
        stop.set()
        worker.join(60)
    assert not worker.is_alive()
    assert table_rows(project, COUNT) == [(21,)]


@pytest.mark.e2e
def test_the_load_command_loads_until_sigterm(tmp_path: Path) -> None:
    project = chunk_project(tmp_path / "p")
    launch = start_launch(project)
    command = [str(ANCHORFLOW), "load", SOURCE, "--every", "100ms", "--project", str(project.root)]
    env = {**env_without_crash(), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))
    reader.start()
    try:
        land_chunk(project, "events", launch, 1, events(12))
        wait_for(lambda: any("12 rows landed" in line for line in lines) or (
            process.poll() is not None))  # fmt: skip
        assert process.poll() is None, process.communicate()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        reader.join(60)
    assert process.returncode == 143, process.stderr.read()
    assert table_rows(project, COUNT) == [(12,)]


def test_the_loop_takes_only_chunk_sources(tmp_path: Path) -> None:
    project = build_project(tmp_path / "p")  # one amplitude source
    with pytest.raises(ConfigError, match="not one fed through landing chunks"):
        LoadLoop(project, ["amplitude"])


class InterruptedRun:
    """A run whose statement is interrupted in a real DuckDB (as Ctrl-C or SIGTERM does while
    the loader is inside the engine): DuckDB raises its own error instead of the interrupt."""

    project = None

    def __init__(self) -> None:
        self.con = duckdb.connect()

    def __enter__(self) -> InterruptedRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def run(self, sources: list[str]) -> None:
        threading.Timer(0.2, self.con.interrupt).start()
        self.con.execute("SELECT count(*) FROM range(10000000000) a, range(10) b").fetchall()


@pytest.mark.unit
def test_an_interrupt_the_engine_swallowed_stops_the_loop() -> None:
    loop = LoadLoop(InterruptedRun, [SOURCE], interval=0.01)  # type: ignore[arg-type]
    give_up = threading.Event()  # without the fix the loop goes on: this ends the test
    timer = threading.Timer(30, give_up.set)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as stopped:
            loop.run_forever(give_up)
    finally:
        timer.cancel()
    assert type(stopped.value.__cause__).__name__ == "InterruptException"


class SignalledRun(InterruptedRun):
    """A run that gets SIGTERM while DuckDB runs its statement, under the CLI's own handler:
    DuckDB runs the handler, drops its `Terminated` and raises `RuntimeError('Query
    interrupted')` (what stopped `anchorflow load` from hearing SIGTERM in the Redis crash test)."""

    def run(self, sources: list[str]) -> None:
        main = threading.get_ident()
        here = sys._getframe()

        def signal_inside_the_statement() -> None:
            # SIGTERM once the main thread is in the statement's call below (it runs for minutes).
            while (frame := sys._current_frames().get(main)) is not here or not inside(frame):
                time.sleep(0.01)
            time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=signal_inside_the_statement, daemon=True).start()
        self.con.execute("SELECT count(*) FROM range(10000000000) a, range(10) b").fetchall()


def inside(frame: types.FrameType) -> bool:
    return "self.con.execute" in (linecache.getline(frame.f_code.co_filename, frame.f_lineno))


@pytest.fixture
def cli_sigterm() -> Iterator[None]:
    """The CLI's SIGTERM handler in this process, as `anchorflow load` installs it."""
    previous = signal.signal(signal.SIGTERM, base._terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        base.STOPPING.clear()


@pytest.mark.unit
def test_sigterm_the_engine_swallowed_stops_the_loop(cli_sigterm: None) -> None:
    loop = LoadLoop(SignalledRun, [SOURCE], interval=0.01)  # type: ignore[arg-type]
    with pytest.raises(Terminated) as stopped:
        loop.run_forever(base.STOPPING)
    assert repr(stopped.value.__cause__) == "RuntimeError('Query interrupted')"
    assert base.STOPPING.is_set()  # a swallow the loop missed ends it after the run anyway
