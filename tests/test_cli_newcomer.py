"""What a new user meets first, through the command in a subprocess: which commands need the
sources' secrets, the project's `.env`, and output that is not cut short in a pipe."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from tests.conftest import API_KEY, SECRET_KEY, available_at
from tests.test_cli import cli

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
