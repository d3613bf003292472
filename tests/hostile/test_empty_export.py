"""An export answered with HTTP 200 and an empty ZIP (the real API answers 404 for no data):
the hour still commits, since it may truly be empty, but its load record says what was
suspicious, and the run, `status` and `status --json` warn about it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, parse_fault
from anchorflow.run import Pipeline
from tests.conftest import (
    API_KEY,
    NEXT_HOUR,
    SECRET_KEY,
    SMALL,
    START,
    available_at,
    hour,
    table_rows,
)
from tests.test_cli import cli

pytestmark = [pytest.mark.hostile, pytest.mark.integration]


def test_an_empty_zip_commits_the_hour_with_a_note_and_a_warning(
    make_project: Callable[..., Project],
) -> None:
    store = ExportStore(START, START + timedelta(hours=6), spec=SMALL)
    fault = parse_fault(f"empty_zip:hours={hour(1):%Y%m%dT%H},times=1")
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY, faults=[fault]) as emulator:
        project = make_project(emulator.base_url, hours_per_request=1)
        ran = cli("run", "--project", str(project.root), "--now",
                  f"{available_at(3):%Y%m%dT%H}")  # fmt: skip
        statuses = [r.status for r in emulator.requests]
    assert ran.returncode == 0, ran.stderr
    assert statuses == [200, 200, 200]

    path = project.warehouse_path
    loads = table_rows(path, "SELECT window_key, rows, note FROM meta.loads ORDER BY load_id")
    assert [(key, rows > 0) for key, rows, _ in loads] == [
        ("20240301T00", True), ("20240301T01", False), ("20240301T02", True)]  # fmt: skip
    notes = [note for _, _, note in loads]
    assert notes[0] is None and notes[2] is None
    assert "empty archive (HTTP 200)" in notes[1] and "404" in notes[1]
    assert table_rows(path, NEXT_HOUR) == [(hour(3),)]  # the cursor still moves
    assert "warning: amplitude events 20240301T01 (load 2): the export was an empty archive" in (
        " ".join(ran.stdout.split()))  # fmt: skip

    with Pipeline(project, now=available_at(3)) as pipeline:
        status = pipeline.status()
    assert [(x.load_id, x.note) for x in status.noted_loads] == [(2, notes[1])]
    shown = cli("status", "--project", str(project.root), "--now", f"{available_at(3):%Y%m%dT%H}")
    assert shown.returncode == 0, shown.stderr
    assert "warning: load 2 (amplitude events 20240301T01): the export was an empty archive" in (
        " ".join(shown.stdout.split()))  # fmt: skip
    as_json = json.loads(cli("status", "--json", "--project", str(project.root)).stdout)
    assert [x["note"] for x in as_json["noted_loads"]] == [notes[1]]
    assert [x["note"] is not None for x in as_json["loads"]] == [False, True, False]


def test_a_run_result_holds_the_note_of_an_empty_export(
    make_project: Callable[..., Project],
) -> None:
    store = ExportStore(START, START + timedelta(hours=6), spec=SMALL)
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY, faults=[parse_fault("empty_zip")]) as em:
        project = make_project(em.base_url)
        with Pipeline(project, now=available_at(2)) as pipeline:
            summary = pipeline.run()
    assert [(w.window_key, w.rows) for w in summary.windows] == [
        ("20240301T00", 0), ("20240301T01", 0)]  # fmt: skip
    assert all("empty archive" in (w.note or "") for w in summary.windows)
    assert len(summary.warnings) == 2
