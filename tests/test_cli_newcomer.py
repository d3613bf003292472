"""What a new user meets first, through the command in a subprocess: which commands need the
sources' secrets, the project's `.env`, and output that is not cut short in a pipe."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from tests.builders import amplitude_source, project_data, write_project
from tests.conftest import API_KEY, SECRET_KEY, available_at, hour
from tests.test_cli import ANCHORFLOW, cli

pytestmark = pytest.mark.e2e

NOW = available_at(2).strftime("%Y%m%dT%H")
REFUSED = [
    "error: anchorflow.yml: sources.amplitude.api_key: environment variable AMPLITUDE_API_KEY "
    "is not set",
    "error: anchorflow.yml: sources.amplitude.secret_key: environment variable "
    "AMPLITUDE_SECRET_KEY is not set",
]


def test_reading_commands_need_no_source_secrets_and_loading_ones_still_refuse(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    root = str(make_project(emulator.base_url).root)
    assert cli("run", "--project", root, "--now", NOW).returncode == 0
    asked = len(emulator.requests)

    status = cli("status", "--project", root, "--now", NOW, "--json", env={})
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["sources"][0]["position"] == "20240301T02"
    for command in (["fields", "events"], ["drift", "--all"], ["model"]):
        read = cli(*command, "--project", root, "--json", env={})
        assert read.returncode == 0, (command, read.stderr)
        assert read.stderr == ""
    suggested = cli("suggest-mapping", "amplitude", "--project", root, env={})
    assert suggested.returncode == 0, suggested.stderr

    for command in (["run"], ["backfill", "amplitude", "--start", "20240301T00", "--end",
                              "20240301T00"]):  # fmt: skip
        refused = cli(*command, "--project", root, "--now", NOW, env={})
        assert refused.returncode == 1
        assert refused.stderr.splitlines() == REFUSED
    assert len(emulator.requests) == asked  # nothing was asked of the source without its keys
    assert API_KEY not in status.stdout + suggested.stdout


def test_run_reads_the_secrets_from_the_project_s_dot_env(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    root = make_project(emulator.base_url).root
    (root / ".env").write_text(f"AMPLITUDE_API_KEY={API_KEY}\nAMPLITUDE_SECRET_KEY={SECRET_KEY}\n")
    loaded = cli("run", "--project", str(root), "--now", NOW, env={})
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 2 window(s)" in loaded.stdout

    # An exported variable wins over the file: a wrong key in the environment is refused.
    refused = cli("backfill", "amplitude", "--project", str(root), "--start", "20240301T00",
                  "--end", "20240301T00", "--now", NOW,
                  env={"AMPLITUDE_API_KEY": "exported-but-wrong"})  # fmt: skip
    assert refused.returncode == 1
    assert "401" in refused.stderr


def test_init_start_end_and_the_env_example_filled_in_replay_a_past_export(
    emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    """The newcomer's path: init for a past range, .env from .env.example, run with no --now."""
    root = tmp_path / "shop"
    made = cli("init", str(root), "--start", "20240301T00", "--end", "20240301T02")
    assert made.returncode == 0, made.stderr
    example = (root / ".env.example").read_text()
    assert "AMPLITUDE_BASE_URL=" in example
    filled = {"AMPLITUDE_API_KEY": API_KEY, "AMPLITUDE_SECRET_KEY": SECRET_KEY,
              "AMPLITUDE_BASE_URL": emulator.base_url}  # fmt: skip
    lines = [
        f"{line.split('=')[0]}={filled[line.split('=')[0]]}" if "=" in line else line
        for line in example.splitlines()
    ]
    (root / ".env").write_text("\n".join(lines) + "\n")

    loaded = cli("run", "--project", str(root), env={})
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 3 window(s) 20240301T00..20240301T02" in loaded.stdout
    assert all(r.end is not None and r.end <= hour(2) for r in emulator.requests)

    status = json.loads(cli("status", "--project", str(root), "--json", env={}).stdout)
    assert status["sources"] == [
        {"source": "amplitude", "stream": "events", "position": "20240301T03", "due": 0,
         "lag_hours": None, "last_available": "20240301T02",
         "note": "replay to 20240301T02: done", "replay_end": "20240301T02", "queue": None}
    ]  # fmt: skip
    table = cli("status", "--project", str(root), env={}).stdout
    (row,) = [line for line in table.splitlines() if line.startswith("│ amplitude")]
    assert [c.strip() for c in row.split("│")[1:-1]][3] == "replay"


def test_emulate_on_a_busy_port_is_one_line_not_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("emulate", "amplitude", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: emulate amplitude: cannot listen on 127.0.0.1:{port} (Address already in use); "
        "stop what holds it, or choose another --port (0 picks a free one)"
    ]


def test_emulate_maestroqa_on_a_busy_port_is_one_line_not_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("emulate", "maestroqa", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: emulate maestroqa: cannot listen on 127.0.0.1:{port} (Address already in use); "
        "stop what holds it, or choose another --port (0 picks a free one)"
    ]


def test_validate_fails_for_a_mart_reading_a_table_that_is_not_there(tmp_path: Path) -> None:
    root = tmp_path / "p"
    assert cli("init", str(root)).returncode == 0
    (root / "models" / "runs.sql").write_text("SELECT * FROM meta.run_history")
    result = cli("validate", "--project", str(root))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: anchorflow.yml: marts: models/runs.sql: Catalog Error: Table with name "
        "run_history does not exist!"
    ]


def piped(*args: str) -> subprocess.CompletedProcess[str]:
    """The command as CI runs it: stdout a pipe, no COLUMNS, no terminal."""
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "FORCE_COLOR", "TERM"}}
    return subprocess.run(
        [str(ANCHORFLOW), *args], env={**env, "NO_COLOR": "1"}, capture_output=True, text=True,
        timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_output_in_a_pipe_is_not_cut_at_80_columns(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project], tmp_path: Path
) -> None:
    root = str(make_project(emulator.base_url).root)
    assert piped("run", "--project", root, "--now", NOW).returncode == 0
    status = piped("status", "--project", root, "--now", NOW)
    assert status.returncode == 0, status.stderr
    assert "…" not in status.stdout
    header = [cells for cells in table_rows(status.stdout) if "quarantined" in cells]
    assert header == [["load", "source", "stream", "window", "files", "rows", "quarantined",
                       "staged", "status", "finished"]]  # fmt: skip
    made = piped("init", str(tmp_path / "new"))
    assert made.stdout.splitlines()[-1] == (
        "next: copy .env.example to .env and fill it in, then `anchorflow validate` and "
        "`anchorflow run`"
    )


def table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line[1:-1].split(line[0])] for line in text.splitlines()
            if line[:1] in "│┃" and line]  # fmt: skip


def test_version_is_the_installed_package_s() -> None:
    result = piped("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"anchorflow {metadata.version('anchorflow')}\n"


@pytest.mark.parametrize(
    "command",
    [(), ("drift",), ("run",), ("stage",), ("forget",), ("init",), ("query",), ("status",),
     ("emulate", "amplitude"), ("emulate", "maestroqa"), ("synth", "amplitude"), ("export",),
     ("dbt-sources",)],
    ids=lambda c: " ".join(c) or "anchorflow",
)  # fmt: skip
def test_help_shows_no_python_type_placeholders(command: tuple[str, ...]) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "--help" in result.stdout
    assert "<bool>" not in result.stdout
    assert "<list[" not in result.stdout


def test_run_of_one_source_needs_only_that_source_s_variables(
    emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    other = amplitude_source(emulator.base_url, api_key="${AF_TEST_OTHER_KEY}")
    data = project_data(sources={"amplitude": amplitude_source(emulator.base_url), "other": other})
    root = str(write_project(tmp_path / "p", data))

    loaded = cli("run", "amplitude", "--project", root, "--now", NOW)
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 2 window(s)" in loaded.stdout

    for command in (["run"], ["run", "other"], ["backfill", "other", "--start", "20240301T00",
                                                "--end", "20240301T00"]):  # fmt: skip
        refused = cli(*command, "--project", root, "--now", NOW)
        assert refused.returncode == 1
        assert refused.stderr.splitlines() == [
            "error: anchorflow.yml: sources.other.api_key: environment variable "
            "AF_TEST_OTHER_KEY is not set"
        ]
