"""The demo's grading exports and users table: the MaestroQA emulator and moto's DynamoDB server
started by `anchorflow demo`, the grades loaded through the `async_export` source into staging
and the wide grading mart, the users scanned twice by the `dynamodb` source with some changed in
between, and the anchor model's history holding exactly those changes."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from anchorflow.dev.demo_accounts import CITIES, MOVED, PLANS, UPGRADED, USERS, user_item
from anchorflow.dev.demo_grading import grading_clock
from anchorflow.sources.async_export.config import AsyncExportConfig
from tests.conftest import START, table_rows
from tests.test_cli import ANCHORFLOW

DEMO = Path(__file__).resolve().parents[1] / "examples" / "product_analytics"
SECOND_SCAN = START + timedelta(hours=2 + 2)  # two hours, then the availability delay


@pytest.mark.unit
def test_the_changed_users_differ_from_the_table_in_one_attribute_each() -> None:
    assert (len(MOVED), len(UPGRADED)) == (30, 20) and not set(MOVED) & set(UPGRADED)
    for i in [*MOVED, *UPGRADED]:
        before, after = user_item(i), expected_item(i)
        assert [k for k in before if before[k] != after[k]] == (
            ["city"] if i in MOVED else ["plan"]
        )


def expected_item(i: int) -> dict[str, dict[str, str]]:
    if i in MOVED:
        return user_item(i, city=CITIES[(i + 1) % len(CITIES)])
    return user_item(i, plan=PLANS[(i + 1) % len(PLANS)])


@pytest.mark.unit
def test_the_grading_clock_is_after_the_last_day_the_demo_touches() -> None:
    config = AsyncExportConfig.model_validate(
        {"kind": "async_export", "preset": "maestroqa", "base_url": "http://127.0.0.1:1/api/v1",
         "start": "2024-03-01", "streams": {"groups": {}, "total_scores": {}}}
    )  # fmt: skip
    assert grading_clock(config, START + timedelta(hours=2)) == datetime(2024, 3, 2, 1)
    assert grading_clock(config, START + timedelta(hours=72)) == datetime(2024, 3, 4, 1)


@pytest.mark.e2e
@pytest.mark.slow
def test_the_demo_loads_grades_into_the_mart_and_the_users_changes_between_two_scans(
    tmp_path: Path,
) -> None:
    root = tmp_path / "demo"
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns("*.duckdb*", ".env", ".data",
                                                            ".anchorflow", "exports"))  # fmt: skip
    prefixes = ("AMPLITUDE_", "REDIS_", "MAESTROQA_", "DYNAMODB_", "AWS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    done = subprocess.run(
        [str(ANCHORFLOW), "demo", "--project", str(root), "--hours", "2",
         "--events-per-hour", "2000"],
        capture_output=True, text=True, env={**env, "COLUMNS": "200"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert (
        "MaestroQA emulator: http://127.0.0.1:" in out and "(40 agents, 1,000 grades a day)" in out
    )
    assert "grading: 2 exports requested, polled, downloaded and staged in " in out
    assert "DynamoDB (moto's server): http://127.0.0.1:" in out and f"{USERS:,} users" in out
    assert "accounts: the users table scanned at 2024-03-01 03:00 in " in out
    assert "s; then 30 users moved to another city and 20 changed plan" in out
    assert "raw.qa_total_scores 1,000 records, 1,000 grades and 108 agent ids staged" in out
    assert "1,000 rows in marts.grading" in out
    assert (
        "accounts (DynamoDB scans → raw → staging → anchor.Account): 2 scans, "
        "raw.accounts_users 6,000 records, 50 changes between the scans" in out
    )
    assert "marts.grading (MaestroQA's grades × the agents' teams)" in out
    assert "the users' changes between the two scans" in out and "(10 of 50)" in out

    warehouse = root / "warehouse.duckdb"
    assert table_rows(warehouse, "SELECT count(*), count(DISTINCT gradable_id) "
                                 "FROM staging.grades") == [(1_000, 1_000)]  # fmt: skip
    assert table_rows(
        warehouse,
        "SELECT count(*), count(team), count(DISTINCT country), min(score_pct) >= 0, "
        "max(score_pct) <= 100 FROM marts.grading",
    ) == [(1_000, 1_000, 3, True, True)]  # every ticket's agent id found in a team
    first_scan = SECOND_SCAN - timedelta(hours=1)
    history = table_rows(
        warehouse,
        'SELECT a.user_id, h.attribute, h.value, h.changed_at FROM anchor."Account_history" h '
        'JOIN anchor."Account" a ON a.id = h.id '
        f"WHERE h.changed_at > TIMESTAMP '{first_scan:%Y-%m-%d %H:%M:%S}' ORDER BY 1, 2",
    )
    expected = sorted(
        (f"user_{i}", "city" if i in MOVED else "plan",
         expected_item(i)["city" if i in MOVED else "plan"]["S"], SECOND_SCAN)
        for i in [*MOVED, *UPGRADED]
    )  # fmt: skip
    assert history == expected
    # The first scan saw every user once; the second added only the changes.
    assert table_rows(warehouse, 'SELECT count(*) FROM anchor."Account_city"') == [(USERS + 30,)]
    assert table_rows(warehouse, 'SELECT count(*) FROM anchor."Account_plan"') == [(USERS + 20,)]
    assert table_rows(warehouse, "SELECT count(*) FROM staging.accounts") == [(2 * USERS,)]
