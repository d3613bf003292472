"""The `anchorflow` command end to end, in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from tests.conftest import API_KEY, NEXT_HOUR, SECRET_KEY, available_at, hour, table_rows
from tests.test_project import BAD_PROJECTS, MISSING_VAR, BadProject

pytestmark = pytest.mark.e2e

ANCHORFLOW = Path(sys.executable).with_name("anchorflow")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console script; a wide terminal so help text is not wrapped."""
    base = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "ANCHORFLOW_CRASH_AT"}}
    base.update({"COLUMNS": "200", "NO_COLOR": "1"})
    if env is not None:
        base = {**{k: v for k, v in base.items() if not k.startswith("AMPLITUDE_")}, **env}
    return subprocess.run(
        [str(ANCHORFLOW), *args],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def hour_arg(n: int) -> str:
    return hour(n).strftime("%Y%m%dT%H")


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_init_creates_a_project_that_validates(tmp_path: Path) -> None:
    created = cli("init", str(tmp_path / "shop-analytics"))
    assert created.returncode == 0, created.stderr
    root = tmp_path / "shop-analytics"
    assert files_under(root) == {
        "anchorflow.yml",
        "models",
        "models/daily_active_users.sql",
        ".env.example",
        ".gitignore",
    }
    checked = cli("validate", "--project", str(root))
    assert checked.returncode == 0, checked.stderr
    assert "ok" in checked.stdout and "1 source(s), 1 staging model(s)" in checked.stdout
    assert checked.stderr == ""
    assert not (root / "warehouse.duckdb").exists()


def test_init_refuses_to_overwrite_a_project(tmp_path: Path) -> None:
    root = tmp_path / "existing"
    root.mkdir()
    (root / "anchorflow.yml").write_text("name: mine\n")
    result = cli("init", str(root))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {root / 'anchorflow.yml'}: a project already exists here; nothing was changed"
    ]
    assert (root / "anchorflow.yml").read_text() == "name: mine\n"
    assert files_under(root) == {"anchorflow.yml"}


def test_validate_without_the_secrets_warns_naming_both_variables_and_passes(
    tmp_path: Path,
) -> None:
    """Like dbt's `parse`, checking a project needs no credentials; `run` does (below)."""
    assert cli("init", str(tmp_path / "p")).returncode == 0
    result = cli("validate", "--project", str(tmp_path / "p"), env={})
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: anchorflow.yml: sources.amplitude.api_key: environment variable "
        "AMPLITUDE_API_KEY is not set (`run` and `backfill` need it)",
        "warning: anchorflow.yml: sources.amplitude.secret_key: environment variable "
        "AMPLITUDE_SECRET_KEY is not set (`run` and `backfill` need it)",
    ]
    assert result.stdout.startswith("ok ")


# Every case is run through `run` below; `validate` gets one of each kind of problem.
VALIDATE_CASES = [c for c in BAD_PROJECTS if c.id in {
    "start-not-an-hour", "unknown-column-key", "invalid-yaml", "mart-sql-does-not-parse",
}]  # fmt: skip


@pytest.mark.parametrize("case", VALIDATE_CASES, ids=lambda c: c.id)
def test_validate_prints_the_one_line_error_and_writes_nothing(
    case: BadProject, tmp_path: Path
) -> None:
    root = case.write(tmp_path / "project")
    before = files_under(root)
    result = cli("validate", "--project", str(root))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {case.expected}"]
    assert result.stdout == ""
    assert SECRET_KEY not in result.stderr and API_KEY not in result.stderr
    assert files_under(root) == before
    assert not (root / "warehouse.duckdb").exists()


@pytest.mark.parametrize("case", BAD_PROJECTS, ids=lambda c: c.id)
def test_run_on_a_bad_project_writes_nothing(
    case: BadProject, tmp_path: Path, emulator: AmplitudeEmulator
) -> None:
    root = case.write(tmp_path / "project", emulator.base_url)
    before = files_under(root)
    result = cli("run", "--project", str(root), "--now", available_at(2).strftime("%Y%m%dT%H"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"error: {case.expected}"]
    written = files_under(root) - before
    if case.id == "missing-env-var":
        # The project loaded, so the refusal is a recorded command: the run log keeps it (for
        # cron) and the alerts announce it; the warehouse is never created.
        assert written == {".anchorflow", ".anchorflow/runs.jsonl"}
        (line,) = (root / ".anchorflow/runs.jsonl").read_text().splitlines()
        assert json.loads(line)["outcome"] == "failed"
        assert MISSING_VAR in json.loads(line)["error"]
    else:
        assert written == set()
    assert not (root / "warehouse.duckdb").exists()
    assert emulator.requests == []  # not even a download


@pytest.mark.parametrize(
    ("command", "explains"),
    [
        ((), "Declarative ELT for product analytics"),
        (("init",), "Create a project"),
        (("validate",), "Check the project file"),
        (("run",), "Load every closed, available window that is due"),
        (("backfill",), "Reload a past range of hours"),
        (("status",), "Watermarks, lag, the last loads and runs"),
        (("demo",), "Generate traffic, serve it from the local Amplitude emulator"),
        (("emulate",), "Run local emulators of the SaaS APIs"),
        (("emulate", "amplitude"), "Serve Amplitude's Export API"),
        (("emulate", "maestroqa"), "Serve MaestroQA's export API"),
        (("synth",), "Generate deterministic synthetic source data"),
        (("stage",), "Type raw loads that the transfer log does not hold yet"),
        (("fields",), "Field statistics of a model's last typed batch"),
        (("drift",), "Open schema events"),
        (("suggest-mapping",), "Print a staging model inferred from the raw records"),
        (("synth", "amplitude"), "Write Amplitude export files"),
        (("compact",), "Rewrite the warehouse file so that the rows `forget` deleted"),
        (("compile",), "Write the project's SQL for Snowflake or BigQuery"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_help_of_every_command_exits_zero_and_explains(
    command: tuple[str, ...], explains: str
) -> None:
    result = cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "Usage: anchorflow" in text
    assert explains in text


def test_run_loads_the_due_hours_and_status_shows_the_watermark(
    engine: str, emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(emulator.base_url, hours_per_request=2)
    root = project.root
    now = available_at(3).strftime("%Y%m%dT%H")
    result = cli("run", "--project", str(root), "--now", now)
    assert result.returncode == 0, result.stderr
    assert "loaded 3 window(s) 20240301T00..20240301T02" in result.stdout
    path = project
    assert table_rows(path, "SELECT window_start, status FROM meta.loads ORDER BY load_id") == [
        (hour(0), "committed"),
        (hour(1), "committed"),
        (hour(2), "committed"),
    ]
    raw = table_rows(path, "SELECT count(*) FROM raw.amplitude_events")[0][0]
    assert raw == table_rows(path, "SELECT sum(rows) FROM meta.loads")[0][0] > 0
    assert table_rows(path, NEXT_HOUR) == [(hour(3),)]

    status = cli("status", "--project", str(root), "--now", now)
    assert status.returncode == 0, status.stderr
    marks = [
        line for line in status.stdout.splitlines() if "amplitude" in line and "events" in line
    ]
    assert any(hour_arg(3) in line for line in marks), status.stdout

    again = cli("run", "--project", str(root), "--now", now)
    assert again.returncode == 0, again.stderr
    assert "nothing due" in again.stdout
    assert table_rows(path, "SELECT count(*) FROM raw.amplitude_events")[0][0] == raw


def test_status_model_fields_and_drift_print_json_for_scripts(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(emulator.base_url)
    root, now = str(project.root), available_at(2).strftime("%Y%m%dT%H")
    assert cli("run", "--project", root, "--now", now).returncode == 0

    status = json.loads(cli("status", "--project", root, "--now", now, "--json").stdout)
    assert status["sources"] == [
        {"source": "amplitude", "stream": "events", "position": "20240301T02", "due": 0,
         "lag_hours": 2.0, "last_available": "20240301T01", "note": "", "replay_end": None,
         "queue": None}
    ]  # fmt: skip
    assert [(x["load_id"], x["window"], x["status"]) for x in status["loads"]] == [
        (2, "20240301T01", "committed"), (1, "20240301T00", "committed"),
    ]  # fmt: skip
    assert status["runs"][0]["command"] == "run" and status["runs"][0]["status"] == "ok"

    fields = json.loads(cli("fields", "events", "--project", root, "--json").stdout)
    assert fields["model"] == "events" and fields["batch_id"] == 2 and fields["load_ids"] == [2]
    by_field = {f["field"]: f for f in fields["fields"]}
    assert by_field["uuid"]["column"] == "event_uuid" and by_field["uuid"]["nulls"] == 0

    drift = json.loads(cli("drift", "--all", "--project", root, "--json").stdout)
    assert isinstance(drift, list) and all({"kind", "model", "detail"} <= set(e) for e in drift)
    assert json.loads(cli("model", "--project", root, "--json").stdout) == []  # no anchor


def test_backfill_of_an_hour_not_yet_available_is_a_one_line_error(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    root = make_project(emulator.base_url).root
    result = cli(
        "backfill", "amplitude", "--project", str(root),
        "--start", hour_arg(0), "--end", hour_arg(10), "--now", hour_arg(5),
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: backfill: hour 20240301T10 is not available yet; the last closed, available hour "
        "is 20240301T02"
    ]
    assert emulator.requests == []


def test_backfill_with_a_malformed_hour_is_a_one_line_error(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    root = make_project(emulator.base_url).root
    result = cli(
        "backfill", "amplitude", "--project", str(root), "--start", "2024-03-01", "--end",
        hour_arg(1), "--now", hour_arg(5),
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: backfill: expected YYYYMMDDTHH, got '2024-03-01'"]


def test_synth_with_a_malformed_start_is_a_one_line_error(tmp_path: Path) -> None:
    result = cli("synth", "amplitude", "--out", str(tmp_path / "x"), "--start", "2024-03-01")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: --start: expected YYYYMMDDTHH, got '2024-03-01'"]
    assert not (tmp_path / "x").exists()
