"""`meta.rule_runs`: every run of a fraud rule, written in the transaction of its results.

A rule run's id is deterministic (rule, version, parameters, window), so running the same
window again has the same id; the journal keeps every run, and the results' anti-joins make the
second add nothing. The latest window end per rule is where the next run picks up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from anchorflow.journal.schema import utcnow
from anchorflow.warehouse import Warehouse


@dataclass(frozen=True)
class RuleRunRecord:
    rule_run_id: str
    rule: str
    version: int
    params: str
    window_start: datetime
    window_end: datetime
    shadow: bool
    found: int
    added: int
    users_added: int
    events_added: int
    seconds: float


def record_rule_run(warehouse: Warehouse, run: RuleRunRecord) -> None:
    warehouse.execute(
        "INSERT INTO meta.rule_runs (rule_run_id, rule, version, params, window_start, "
        "window_end, shadow, found, added, users_added, events_added, seconds, ran_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.rule_run_id, run.rule, run.version, run.params, run.window_start,
            run.window_end, run.shadow, run.found, run.added, run.users_added,
            run.events_added, run.seconds, utcnow(),
        ],
    )  # fmt: skip


def last_window_ends(warehouse: Warehouse) -> dict[str, datetime]:
    """Per rule, the end of the latest window it ran over."""
    rows = warehouse.query("SELECT rule, max(window_end) FROM meta.rule_runs GROUP BY rule")
    return {str(rule): end for rule, end in rows}


def last_windows(warehouse: Warehouse) -> dict[str, tuple[datetime, datetime]]:
    """Per rule, the window of its latest run (the newest by when it ran)."""
    rows = warehouse.query(
        "SELECT rule, window_start, window_end FROM (SELECT rule, window_start, window_end, "
        "row_number() OVER (PARTITION BY rule ORDER BY ran_at DESC, window_end DESC) AS n "
        "FROM meta.rule_runs) AS r WHERE n = 1"
    )
    return {str(rule): (start, end) for rule, start, end in rows}


def recent_rule_runs(warehouse: Warehouse, limit: int = 50) -> list[RuleRunRecord]:
    rows = warehouse.query(
        "SELECT rule_run_id, rule, version, params, window_start, window_end, shadow, found, "
        "added, users_added, events_added, seconds FROM meta.rule_runs "
        "ORDER BY ran_at DESC, rule LIMIT ?",
        [limit],
    )
    return [RuleRunRecord(*row) for row in rows]
