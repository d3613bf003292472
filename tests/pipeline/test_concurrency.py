"""anchorflow beside the other processes that open the warehouse: commands that only read open it
read-only and never create it; a writer waits for a reader up to `warehouse.lock_timeout`, then
fails in one line, on record in the run log and alerted; a run lets go of the file while it
waits on the network, so a reader gets in and the run still ends with the exact data.

Every other process is a real one: the `anchorflow` command, and holders from tests/warehouse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from anchorflow.config.loader import load_project
from anchorflow.config.project import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, Fault
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.run import Pipeline
from anchorflow.run.runlog import logged_runs
from tests.builders import amplitude_source, build_project, open_warehouse
from tests.conftest import API_KEY, SECRET_KEY, SMALL, START, available_at, hour, table_rows
from tests.pipeline.test_faults import emulator_lines
from tests.receiver import Receiver, running_receiver
from tests.warehouse.holders import holding, let_go

pytestmark = pytest.mark.integration
receiver = pytest.fixture(running_receiver)
ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
READERS = [["status", "--json"], ["fields", "events"], ["drift"], ["suggest-mapping", "amplitude"]]


def env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "ANCHORFLOW_CRASH_AT"}}
    return base | {"AMPLITUDE_API_KEY": API_KEY, "AMPLITUDE_SECRET_KEY": SECRET_KEY,
                   "COLUMNS": "200", "NO_COLOR": "1"}  # fmt: skip


def start(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(ANCHORFLOW), *args, "--project", str(root)], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        out, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def at_once(
    root: Path, commands: Sequence[Sequence[str]]
) -> list[subprocess.CompletedProcess[str]]:
    return [finish(p) for p in [start(root, *c) for c in commands]]


def now_arg(hours: int) -> str:
    return available_at(hours).strftime("%Y%m%dT%H")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_commands_that_only_read_never_create_the_warehouse(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    build_project(root)
    for done in at_once(root, [*READERS, ["model"]]):
        if done.args[1] != "model":  # without an anchor section, `model` has nothing to read
            assert done.returncode == 1, done
            assert done.stderr.strip() == (
                f"error: no warehouse yet at {root / 'warehouse.duckdb'}: run `anchorflow run` "
                "first"
            ), done.args
    assert sorted(p.name for p in root.iterdir()) == ["anchorflow.yml", "models"]


def test_commands_that_only_read_work_beside_another_reader_and_change_nothing(
    tmp_path: Path, emulator: AmplitudeEmulator
) -> None:
    project = build_project(tmp_path / "p", sources={"amplitude": amplitude_source(
        emulator.base_url)})  # fmt: skip
    with Pipeline(project, now=available_at(3)) as pipeline:
        pipeline.run()
    path = project.warehouse_path
    before = digest(path)
    with holding(path, "read"):  # a notebook keeps its connection open
        done = at_once(project.root, READERS)
    assert [d.returncode for d in done] == [0] * len(READERS), [d.stderr for d in done]
    status = json.loads(done[0].stdout)
    assert [s["position"] for s in status["sources"]] == ["20240301T03"]
    assert "sampled records of raw.amplitude_events" in done[3].stdout
    assert digest(path) == before
    assert not path.with_name(path.name + ".wal").exists()


def test_a_reader_sees_what_the_last_run_built_without_creating_what_was_declared_since(
    tmp_path: Path, emulator: AmplitudeEmulator
) -> None:
    from tests.anchor.pipeline_project import write_project

    project = write_project(tmp_path / "p", emulator.base_url)
    with Pipeline(project, now=available_at(2)) as pipeline:
        pipeline.run()
        want = pipeline.query("User", ["country", "plan"])
        tables = pipeline.describe_model()
    with holding(project.warehouse_path, "read"):
        with Pipeline(project, read_only=True) as reader:
            assert reader.query("User", ["country", "plan"]).equals(want)
            assert reader.describe_model() == tables
        data = yaml.safe_load((project.root / "anchorflow.yml").read_text())
        data["anchor"]["entities"]["Session"]["attributes"]["platform"] = {
            "model": "events", "history": "scd0"}  # fmt: skip
        declared = build_project(project.root, data["sources"], data["staging"], data["anchor"],
                                 pii_salt="test-salt")  # fmt: skip
        missing = r"^anchor\.Session_platform is not in the warehouse yet: `anchorflow run`"
        with (
            Pipeline(declared, read_only=True) as reader,
            pytest.raises(WarehouseError, match=missing),
        ):
            reader.query("Session", ["platform"])


def test_a_reader_of_a_journal_older_than_the_code_says_to_run_a_writing_command_first(
    tmp_path: Path,
) -> None:
    project = build_project(tmp_path / "p")
    with open_warehouse(project) as wh:  # as the release before erasure left it
        wh.execute("ALTER TABLE meta.loads DROP COLUMN suppressed")
    with Pipeline(project, read_only=True) as reader, pytest.raises(WarehouseError) as failed:
        reader.status()
    assert str(failed.value) == (
        f"the journal in {project.warehouse_path} was written by an older anchorflow (it has no "
        "meta.loads.suppressed): run a writing command such as `anchorflow run` once to bring "
        "it up to date"
    )
    with Pipeline(project) as writer:  # a writer brings it up to date
        writer.status()
    with Pipeline(project, read_only=True) as reader:
        assert reader.status().runs == []


def test_a_run_waits_for_a_reader_that_lets_go_and_loads(
    tmp_path: Path, emulator: AmplitudeEmulator
) -> None:
    project = build_project(
        tmp_path / "p", sources={"amplitude": amplitude_source(emulator.base_url)},
        warehouse={"path": "warehouse.duckdb", "lock_timeout": "2m"},
    )  # fmt: skip
    open_warehouse(project).close()
    with holding(project.warehouse_path, "read") as holder:
        run = start(project.root, "run", "--now", now_arg(3))
        stderr = lines_of(run)
        waited_for(stderr, f"is in use by PID {holder.pid}")  # the run's one warning line
        let_go(holder)
        done = finish(run)
    assert done.returncode == 0, done.stderr
    assert table_rows(project.warehouse_path, "SELECT count(*) FROM meta.loads") == [(3,)]
    assert [r["outcome"] for r in logged_runs(project.state_path)] == ["ok"]


def alerting_project(tmp_path: Path, receiver: Receiver) -> Project:
    """A project whose warehouse waits 1 s for a held lock and whose alerts go to `receiver`."""
    return build_project(
        tmp_path / "p", warehouse={"path": "warehouse.duckdb", "lock_timeout": "1s"},
        alerts=[{"kind": "webhook", "url": receiver.url}],
    )  # fmt: skip


def test_a_run_that_waits_past_the_lock_timeout_fails_in_one_line_logged_and_alerted(
    tmp_path: Path, receiver: Receiver
) -> None:
    project = alerting_project(tmp_path, receiver)
    open_warehouse(project).close()
    with holding(project.warehouse_path, "read") as holder:
        done = finish(start(project.root, "run", "--now", now_arg(3)))
    assert done.returncode == 1
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith(f"error: the warehouse {project.warehouse_path} is in use by PID "
                           f"{holder.pid} (python")  # fmt: skip
    assert re.search(r"; waited \d+(\.\d)?s \(warehouse\.lock_timeout is 1s\): let ", line)
    (logged,) = logged_runs(project.state_path)
    assert (logged["command"], logged["outcome"]) == ("run", "failed")
    assert f"PID {holder.pid}" in logged["error"] and logged["started"] <= logged["finished"]
    (alert,) = receiver.delivered
    assert (alert["kind"], alert["subject"]) == ("run_failed", "`anchorflow run` failed")
    assert f"PID {holder.pid}" in alert["details"]["error"]
    assert table_rows(project.warehouse_path, "SELECT count(*) FROM meta.runs") == [(0,)]


def test_a_reader_gets_in_while_the_run_waits_out_a_rate_limit_and_the_data_is_exact(
    tmp_path: Path,
) -> None:
    """Hours 0..5 come in the first request; the second (6..11) is answered 429 with
    Retry-After: 2 until the test lifts the limit. Meanwhile another process opens the file
    read-only and reads the six hours committed so far, and `anchorflow status` gets in too.
    (The limit lasts until both are done, however slow the machine: no timing involved.)"""
    store = ExportStore(START, START + timedelta(hours=24), spec=SMALL)
    limited = Fault("rate_limit", hours=frozenset({hour(6)}), retry_after=2)
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY, [limited]) as emulator:
        source = amplitude_source(emulator.base_url, retry={"attempts": 50})  # 100 s at most
        project = build_project(tmp_path / "p", sources={"amplitude": source})
        path = project.warehouse_path
        run = start(project.root, "run", "--now", now_arg(12))
        reader = subprocess.Popen([sys.executable, "-c", READ_WHEN_SIX, str(path)],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        read = json.loads(reader.communicate(timeout=120)[0])
        assert run.poll() is None  # read during the run, which still waits out the 429
        status = start(project.root, "status", "--json")
        looked = finish(status)
        emulator.faults.clear()
        done = finish(run)
        statuses = [r.status for r in emulator.requests]
    assert read == {"loads": 6, "runs": ["running"], "raw": sum(
        len(emulator_lines(store, hour(n))) for n in range(6))}  # fmt: skip
    assert looked.returncode == 0, looked.stderr
    assert json.loads(looked.stdout)["runs"][0]["status"] == "running"
    assert done.returncode == 0, done.stderr
    assert statuses[0] == 200 and statuses[-1] == 200 and len(statuses) >= 3
    assert set(statuses[1:-1]) == {429}
    landed = table_rows(path, "SELECT l.window_start, r.record FROM raw.amplitude_events AS r "
                        "JOIN meta.loads AS l USING (load_id)")  # fmt: skip
    assert sorted(landed) == sorted(
        (hour(n), line.decode()) for n in range(12) for line in emulator_lines(store, hour(n))
    )
    assert table_rows(path, "SELECT status FROM meta.runs") == [("ok",)]


# The reader: opens the file read-only, over and over while it is locked, until it sees six
# committed hours; prints what it read then, as JSON.
READ_WHEN_SIX = """
import json, sys, time
import duckdb
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    try:
        con = duckdb.connect(sys.argv[1], read_only=True)
    except duckdb.Error:
        time.sleep(0.05)
        continue
    try:
        loads = con.execute("SELECT count(*) FROM meta.loads").fetchone()[0]
        if loads >= 6:
            runs = [r[0] for r in con.execute("SELECT status FROM meta.runs").fetchall()]
            raw = con.execute("SELECT count(*) FROM raw.amplitude_events").fetchone()[0]
            print(json.dumps({"loads": loads, "runs": runs, "raw": raw}))
            sys.exit(0)
    except duckdb.Error:
        pass
    finally:
        con.close()
    time.sleep(0.05)
sys.exit("never got in")
"""


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's stderr lines as they come (read in a thread, so waiting has a deadline)."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    stream = process.stderr

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    process.stderr = None  # `finish` must not read it too
    return lines


def waited_for(lines: queue.Queue[str], text: str, seconds: float = 60) -> None:
    seen = ""
    deadline = time.monotonic() + seconds
    while " ".join(seen.split()).find(text) < 0:
        remaining = deadline - time.monotonic()
        assert remaining > 0, seen
        with contextlib.suppress(queue.Empty):
            seen += lines.get(timeout=remaining)


def test_a_run_that_cannot_open_the_warehouse_fails_in_one_line_logged_and_alerted(
    tmp_path: Path, receiver: Receiver
) -> None:
    project = alerting_project(tmp_path, receiver)
    project.warehouse_path.write_bytes(b"not a database, " * 1024)
    done = finish(start(project.root, "run", "--now", now_arg(3)))
    assert done.returncode == 1
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith(f"error: cannot open the DuckDB file {project.warehouse_path}: ")
    (logged,) = logged_runs(project.state_path)
    assert (logged["command"], logged["outcome"]) == ("run", "failed")
    assert logged["error"].startswith("cannot open the DuckDB file ")
    (alert,) = receiver.delivered
    assert (alert["kind"], alert["subject"]) == ("run_failed", "`anchorflow run` failed")
    assert alert["details"]["error_type"] == "WarehouseError"


def test_a_run_missing_a_secret_is_logged_and_alerted(tmp_path: Path, receiver: Receiver) -> None:
    """In cron nobody reads stderr: a missing secret is a failed run like any other."""
    root = build_project(tmp_path / "p", alerts=[{"kind": "webhook", "url": receiver.url}]).root
    without = {k: v for k, v in env().items() if k != "AMPLITUDE_SECRET_KEY"}
    project = load_project(root, env=without, defer_source_env=True)
    with Pipeline(project) as pipeline, pytest.raises(ConfigError, match="AMPLITUDE_SECRET_KEY"):
        pipeline.run()
    (logged,) = logged_runs(project.state_path)
    assert (logged["command"], logged["outcome"]) == ("run", "failed")
    assert "AMPLITUDE_SECRET_KEY" in logged["error"]
    (alert,) = receiver.delivered
    assert (alert["subject"], alert["details"]["error_type"]) == (
        "`anchorflow run` failed",
        "ConfigError",
    )
    assert not project.warehouse_path.exists()
