"""The journal's reads for the Health page of `anchorflow serve`: each source's last load, and
the rows loaded per hour per source (by the hour the rows are about, the window's start, or
the load's end for sources without windows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from anchorflow.warehouse import Warehouse

HOUR = "date_trunc('hour', coalesce(window_start, finished_at))"


@dataclass(frozen=True)
class LastLoad:
    source: str
    stream: str
    load_id: int
    window: str
    rows: int
    quarantined: int
    type_errors: int
    seconds: float | None
    status: str
    finished_at: datetime | None


@dataclass(frozen=True)
class HourlyRows:
    source: str
    hour: datetime
    rows: int


def last_loads(warehouse: Warehouse) -> list[LastLoad]:
    """The newest load of every source stream."""
    rows = warehouse.query(
        "SELECT source, stream, load_id, coalesce(window_key, ''), coalesce(rows, 0), "
        "coalesce(quarantined, 0), coalesce(type_errors, 0), started_at, finished_at, status "
        "FROM meta.loads AS l WHERE load_id = (SELECT max(load_id) FROM meta.loads AS m "
        "WHERE m.source = l.source AND m.stream = l.stream) ORDER BY source, stream"
    )
    return [
        LastLoad(
            str(s),
            str(st),
            int(i),
            str(w),
            int(r),
            int(q),
            int(t),
            (f - b).total_seconds() if b is not None and f is not None else None,
            str(status),
            f,
        )
        for s, st, i, w, r, q, t, b, f, status in rows
    ]


def rows_per_hour(warehouse: Warehouse, days: int = 3) -> list[HourlyRows]:
    """Committed rows per hour per source, over each source's last `days` days (up to its
    newest hour: a replay of old data shows where it is)."""
    rows = warehouse.query(
        f"SELECT source, hour, sum(rows) FROM (SELECT source, {HOUR} AS hour, rows, "
        f"max({HOUR}) OVER (PARTITION BY source) AS newest FROM meta.loads "
        "WHERE status = 'committed') AS l "
        f"WHERE hour > newest - INTERVAL '{int(days)} days' "
        "GROUP BY source, hour ORDER BY source, hour"
    )
    return [HourlyRows(str(s), h, int(n or 0)) for s, h, n in rows]


@dataclass(frozen=True)
class SentAlert:
    sent_at: datetime
    kind: str
    subject: str
    target: str
    status: str
    attempts: int
    error: str | None


def recent_alerts(warehouse: Warehouse, limit: int = 10) -> list[SentAlert]:
    """The latest alert deliveries, delivered or not (never a target's URL: it is not kept)."""
    rows = warehouse.query(
        "SELECT sent_at, kind, subject, target, status, attempts, error FROM meta.alerts "
        "ORDER BY sent_at DESC LIMIT ?",
        [limit],
    )
    return [SentAlert(r[0], str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]), r[6])
            for r in rows]  # fmt: skip
