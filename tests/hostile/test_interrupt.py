"""Ctrl-C and SIGTERM stop a run as a person means it: one line, exit 130 (143), the run recorded
as interrupted, nobody paged. The CLI runs in a subprocess against an export API that stalls,
and gets the signal once its request has arrived."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders import amplitude_source, project_data, write_project
from tests.conftest import API_KEY, SECRET_KEY, table_rows
from tests.hostile.upstreams import Upstream
from tests.receiver import Receiver, running_receiver

pytestmark = [pytest.mark.hostile, pytest.mark.integration]
receiver = pytest.fixture(running_receiver)
ANCHORFLOW = Path(sys.executable).with_name("anchorflow")


@pytest.fixture
def stalled() -> Iterator[Upstream]:
    upstream = Upstream("stall")
    yield upstream
    upstream.close()


def communicate_or_show_stacks(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """The process's output once it exits; one still running after `timeout` writes its
    threads' stacks to its stderr (SIGUSR1, the CLI's faulthandler), is killed, and fails the
    test with them (a CI run once saw it hang after SIGINT)."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(2)  # the stacks reach stderr; not a timing assertion
        process.kill()
        _, err = process.communicate()
        raise AssertionError(
            f"the process did not stop within {timeout:.0f} s of the signal; its stacks:\n"
            + err[-8000:]
        ) from None


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])  # fmt: skip
def test_an_interrupted_run_exits_quietly_and_is_recorded_as_interrupted(
    tmp_path: Path, stalled: Upstream, receiver: Receiver, signum: int, code: int
) -> None:
    source = amplitude_source(stalled.base_url, timeout="120s")
    alerts = [{"kind": "webhook", "url": receiver.url}]
    root = write_project(tmp_path, project_data(sources={"amplitude": source}, alerts=alerts))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORCE_")}
    env.update({"AMPLITUDE_API_KEY": API_KEY, "AMPLITUDE_SECRET_KEY": SECRET_KEY,
                "NO_COLOR": "1", "COLUMNS": "200"})  # fmt: skip
    running = subprocess.Popen(
        [str(ANCHORFLOW), "run", "--project", str(root), "--now", "20240301T08"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        while not stalled.arrived and running.poll() is None:  # the run is in its download
            time.sleep(0.02)
        assert running.poll() is None, running.communicate()
        signalled = time.monotonic()
        running.send_signal(signum)
        out, err = communicate_or_show_stacks(running, timeout=60)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == code, err
    assert time.monotonic() - signalled < 15  # the stalled read alone would take 120 s
    assert "Traceback" not in out + err
    assert err.strip().splitlines()[-1] == (
        "interrupted: the window in flight was rolled back; run the command again to continue"
    )
    path = root / "warehouse.duckdb"
    assert table_rows(path, "SELECT command, status FROM meta.runs") == [("run", "interrupted")]
    assert table_rows(path, "SELECT count(*) FROM meta.loads") == [(0,)]
    assert receiver.bodies == []
