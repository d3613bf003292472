"""`meta.runs`: every command that ran, with its outcome (failures included)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from anchorflow.journal.schema import utcnow
from anchorflow.redact import shorten
from anchorflow.warehouse import Warehouse

DETAIL_CHARS = 1000


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    command: str
    status: str  # running | ok | failed | interrupted
    started_at: datetime
    detail: str | None


def start_run(warehouse: Warehouse, command: str) -> int:
    # A run still 'running' here was cut off (killed, power loss): say so.
    warehouse.execute(
        "UPDATE meta.runs SET status = 'interrupted', finished_at = ? WHERE status = 'running'",
        [utcnow()],
    )
    run_id = int(warehouse.scalar("SELECT coalesce(max(run_id), 0) + 1 FROM meta.runs"))
    warehouse.execute(
        "INSERT INTO meta.runs VALUES (?, ?, ?, NULL, 'running', NULL)",
        [run_id, command, utcnow()],
    )
    return run_id


def finish_run(warehouse: Warehouse, run_id: int, status: str, detail: str | None) -> None:
    """`detail` is redacted and cut to DETAIL_CHARS characters."""
    text = shorten(detail, DETAIL_CHARS) if detail is not None else None
    warehouse.execute(
        "UPDATE meta.runs SET finished_at = ?, status = ?, detail = ? WHERE run_id = ?",
        [utcnow(), status, text, run_id],
    )


def recent_runs(warehouse: Warehouse, limit: int = 5) -> list[RunInfo]:
    rows = warehouse.query(
        "SELECT run_id, command, status, started_at, detail FROM meta.runs "
        "ORDER BY run_id DESC LIMIT ?",
        [limit],
    )
    return [RunInfo(int(r[0]), str(r[1]), str(r[2]), r[3], r[4]) for r in rows]


def scrub_runs(warehouse: Warehouse, pattern: str) -> int:
    """Replace matches of `pattern` (a regular expression with two groups around the erased
    text) in run details by `[erased]`; returns the runs changed."""
    return warehouse.insert(
        "UPDATE meta.runs SET detail = regexp_replace(detail, ?, '\\1[erased]\\2', 'g') "
        "WHERE regexp_matches(detail, ?)",
        [pattern, pattern],
    )
