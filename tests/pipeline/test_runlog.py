"""The run log outside the warehouse: one JSON line per writing command, the newest kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchorflow.run import runlog
from anchorflow.run.runlog import log_run, logged_runs, timestamp

pytestmark = pytest.mark.unit


def test_each_command_is_one_line_with_its_outcome_and_error(tmp_path: Path) -> None:
    state = tmp_path / ".anchorflow"
    started = timestamp()
    log_run(state, "run ", started, "ok", None)
    log_run(state, "backfill amplitude", started, "failed", "held\nby someone (see below)")
    first, second = logged_runs(state)
    assert first == {"command": "run", "started": started, "finished": first["finished"],
                     "outcome": "ok", "error": None}  # fmt: skip
    assert (second["command"], second["error"]) == ("backfill amplitude", "held")
    assert started <= first["finished"] <= second["finished"]


def test_the_log_keeps_its_newest_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runlog, "KEEP_BYTES", 2_000)
    for n in range(100):
        log_run(tmp_path, f"stage m{n}", timestamp(), "ok", None)
    kept = [r["command"] for r in logged_runs(tmp_path)]
    assert kept[-1] == "stage m99" and len(kept) < 30
    assert kept == [f"stage m{n}" for n in range(100 - len(kept), 100)]
    assert (tmp_path / runlog.FILE).stat().st_size <= 2_000
