"""The run log: one JSON line per writing command in `<project>/.anchorflow/runs.jsonl`.

The journal in the warehouse records every run too; this file is its witness outside the
warehouse, so that a command that could not open the warehouse (another process held it past
`warehouse.lock_timeout`, the file is not a database, a secret is missing) is on record too.
Each line holds `command`, `started`, `finished` (ISO 8601, UTC), `outcome` (ok, failed,
interrupted) and `error` (redacted, one line, or null). The file keeps the newest lines: past
`KEEP_BYTES` the older half is dropped.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anchorflow.redact import shorten

FILE = "runs.jsonl"
KEEP_BYTES = 1 << 20
ERROR_CHARS = 1000


@dataclass(frozen=True)
class LoggedRun:
    command: str
    started: str
    finished: str
    outcome: str  # ok | failed | interrupted
    error: str | None


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def log_run(state_dir: Path, command: str, started: str, outcome: str, error: str | None) -> None:
    """Append the command's line; a run log that cannot be written never fails the command."""
    text = shorten(error.split("\n")[0], ERROR_CHARS) if error is not None else None
    line = LoggedRun(command.strip(), started, timestamp(), outcome, text)
    path = state_dir / FILE
    with contextlib.suppress(OSError):
        state_dir.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(line)) + "\n")
        if path.stat().st_size > KEEP_BYTES:
            _keep_newest_half(path)


def logged_runs(state_dir: Path) -> list[dict[str, Any]]:
    """Every line of the run log, oldest first (an unreadable line is skipped)."""
    try:
        lines = (state_dir / FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    runs = []
    for line in lines:
        with contextlib.suppress(ValueError):
            runs.append(json.loads(line))
    return runs


def _keep_newest_half(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    fresh = path.with_name(path.name + ".tmp")
    fresh.write_text("".join(lines[len(lines) // 2 :]), encoding="utf-8")
    os.replace(fresh, path)
