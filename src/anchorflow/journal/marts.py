"""The marts' journal, and what the marts read of the other steps' journal.

- `meta.mart_builds`: one row per build of a mart: how (full, incremental, view, refresh,
  tests), why, the SQL's and settings' hashes, the mart's columns, and what it was built from:
  per input, its version (see `InputVersion`). A mart's newest row says whether it is due.
- `meta.mart_tests`: one row per test run on a mart: pass or fail, how many rows failed, and
  the query that lists them; written with the build it checks.

An input's version is read from the journal of the step that fills it, never from its rows:
per staging model its typed loads (`meta.transfers`), per anchor table its anchored loads
(`meta.anchor_transfers`), per raw stream its committed loads (`meta.loads`), per mart its
newest build. Rows hold no user values: failing rows are counted, never copied here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anchorflow.journal.schema import MART_DDL, utcnow
from anchorflow.warehouse import Warehouse


@dataclass(frozen=True)
class InputVersion:
    """What an input held, by its journal: how many journal rows, the sum of their load ids
    (a load removed and another added changes it), and the newest row's time (or, for a
    mart, its newest build id in `rows`)."""

    rows: int
    ids: int = 0
    at: str | None = None

    def as_json(self) -> list[Any]:
        return [self.rows, self.ids, self.at]

    @staticmethod
    def of_json(value: Any) -> InputVersion:
        rows, ids, at = value
        return InputVersion(int(rows), int(ids), at)


@dataclass(frozen=True)
class MartBuild:
    """A mart's newest build, as the journal holds it."""

    build_id: int
    mart: str
    kind: str
    materialized: str
    sql_hash: str
    settings_hash: str
    tests_hash: str
    columns: list[str]
    inputs: dict[str, InputVersion]
    built_at: datetime


@dataclass(frozen=True)
class TestRecord:
    mart: str
    test: str
    kind: str
    severity: str
    status: str
    failures: int
    detail: str | None
    query: str


def ensure_mart_journal(warehouse: Warehouse) -> None:
    """The marts' journal tables (also made by `ensure_journal`): `build_marts` may run on a
    warehouse that no pipeline prepared."""
    warehouse.create_schema("meta")
    for ddl in MART_DDL:
        warehouse.execute(ddl)


def latest_builds(warehouse: Warehouse) -> dict[str, MartBuild]:
    rows = warehouse.query(
        "SELECT b.build_id, b.mart, b.kind, b.materialized, b.sql_hash, b.settings_hash, "
        "b.tests_hash, b.columns, b.inputs, b.built_at FROM meta.mart_builds AS b "
        "WHERE b.build_id = (SELECT max(o.build_id) FROM meta.mart_builds AS o "
        "WHERE o.mart = b.mart)"
    )
    found = {}
    for r in rows:
        inputs = {k: InputVersion.of_json(v) for k, v in json.loads(r[8]).items()}
        found[str(r[1])] = MartBuild(
            int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]),
            json.loads(r[7]) if r[7] else [], inputs, r[9],
        )  # fmt: skip
    return found


def next_build_id(warehouse: Warehouse) -> int:
    return int(warehouse.scalar("SELECT coalesce(max(build_id), 0) + 1 FROM meta.mart_builds"))


def record_build(
    warehouse: Warehouse,
    build: MartBuild,
    reason: str,
    periods: int | None,
    rows: int,
    seconds: float,
) -> None:
    warehouse.execute(
        "INSERT INTO meta.mart_builds (build_id, mart, kind, reason, materialized, sql_hash, "
        "settings_hash, tests_hash, columns, inputs, periods, rows, seconds, built_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            build.build_id, build.mart, build.kind, reason, build.materialized, build.sql_hash,
            build.settings_hash, build.tests_hash, json.dumps(build.columns),
            json.dumps({k: v.as_json() for k, v in sorted(build.inputs.items())}), periods,
            rows, seconds, build.built_at,
        ],
    )  # fmt: skip


def record_tests(warehouse: Warehouse, build_id: int | None, results: Sequence[TestRecord]) -> None:
    now = utcnow()
    for r in results:
        warehouse.execute(
            "INSERT INTO meta.mart_tests (build_id, mart, test, kind, severity, status, "
            "failures, detail, query, tested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [build_id, r.mart, r.test, r.kind, r.severity, r.status, r.failures, r.detail,
             r.query, now],
        )  # fmt: skip


def _versions(rows: list[tuple[Any, ...]]) -> dict[str, InputVersion]:
    return {
        str(r[0]): InputVersion(int(r[1]), int(r[2] or 0), r[3].isoformat() if r[3] else None)
        for r in rows
    }


def staging_versions(warehouse: Warehouse) -> dict[str, InputVersion]:
    """Per staging model, its typed loads."""
    return _versions(
        warehouse.query(
            "SELECT model, count(*), sum(load_id), max(typed_at) FROM meta.transfers GROUP BY 1"
        )
    )


def anchor_versions(warehouse: Warehouse) -> dict[str, InputVersion]:
    """Per anchor table, its anchored loads."""
    return _versions(
        warehouse.query(
            "SELECT target, count(*), sum(load_id), max(anchored_at) FROM meta.anchor_transfers "
            "GROUP BY 1"
        )
    )


def raw_versions(warehouse: Warehouse) -> dict[tuple[str, str], InputVersion]:
    """Per raw stream (source, stream), its committed loads."""
    rows = warehouse.query(
        "SELECT source, stream, count(*), sum(load_id), max(finished_at) FROM meta.loads "
        "WHERE status = 'committed' GROUP BY 1, 2"
    )
    return {
        (str(r[0]), str(r[1])): InputVersion(
            int(r[2]), int(r[3] or 0), r[4].isoformat() if r[4] else None
        )
        for r in rows
    }


# The journal of each input kind: its table, the column naming the input, its time column.
JOURNALS = {
    "staging": ("meta.transfers", "model = ?", "typed_at"),
    "anchor": ("meta.anchor_transfers", "target = ?", "anchored_at"),
    "raw": ("meta.loads", "status = 'committed' AND source = ? AND stream = ?", "finished_at"),
}


def loads_since(
    warehouse: Warehouse, kind: str, key: Sequence[str], since: InputVersion
) -> list[int] | None:
    """The loads the input gained after `since` (its version at a mart's last build), or None
    when it also lost some (or they were typed again): then only a full rebuild is right."""
    table, where, at = JOURNALS[kind]
    if since.at is None:
        return None
    before = warehouse.query(
        f"SELECT count(*), coalesce(sum(load_id), 0) FROM {table} WHERE {where} AND {at} <= ?",
        [*key, datetime.fromisoformat(since.at)],
    )[0]
    if (int(before[0]), int(before[1])) != (since.rows, since.ids):
        return None
    rows = warehouse.query(
        f"SELECT DISTINCT load_id FROM {table} WHERE {where} AND {at} > ? ORDER BY 1",
        [*key, datetime.fromisoformat(since.at)],
    )
    return [int(r[0]) for r in rows]


def mart_versions(warehouse: Warehouse) -> dict[str, int]:
    """Per mart, its newest build that changed its rows (a run of its tests alone did not)."""
    rows = warehouse.query(
        "SELECT mart, max(build_id) FROM meta.mart_builds WHERE kind <> 'tests' GROUP BY 1"
    )
    return {str(r[0]): int(r[1]) for r in rows}


def failing_marts(warehouse: Warehouse) -> set[str]:
    """The marts whose tests, as they last ran, had a failure of severity error."""
    rows = warehouse.query(
        "SELECT DISTINCT t.mart FROM meta.mart_tests AS t WHERE t.status = 'fail' "
        "AND t.severity = 'error' AND t.tested_at = (SELECT max(o.tested_at) "
        "FROM meta.mart_tests AS o WHERE o.mart = t.mart)"
    )
    return {str(r[0]) for r in rows}
