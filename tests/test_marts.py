"""Marts: SQL models built in the order their SQL implies, on real loaded data."""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project, load_project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.dev.synth.costs import write_cost_files
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.run import Pipeline, check_project
from tests.conftest import START, available_at, run_demo_feeds, run_pipeline, table_rows

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[1] / "examples" / "product_analytics"


def write_models(project: Project, models: dict[str, str]) -> None:
    for name, sql in models.items():
        (project.marts_path / f"{name}.sql").write_text(sql)


def test_marts_build_in_the_order_their_sql_implies_not_by_file_name(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(emulator.base_url)
    # Alphabetical order would be a_top, m_middle, z_base: exactly backwards.
    write_models(
        project,
        {
            "a_top": "SELECT platform, users * 10 AS scaled FROM marts.m_middle",
            "m_middle": "SELECT platform, count(DISTINCT user_id) AS users\n"
            "FROM marts.z_base GROUP BY platform",
            "z_base": "SELECT platform, user_id FROM staging.events WHERE user_id IS NOT NULL;",
        },
    )
    summary = run_pipeline(project, available_at(2))
    assert [m.name for m in summary.marts] == ["z_base", "m_middle", "a_top"]
    path = project.warehouse_path
    expected = table_rows(
        path,
        "SELECT platform, count(DISTINCT user_id) * 10 FROM staging.events "
        "WHERE user_id IS NOT NULL GROUP BY ALL ORDER BY 1",
    )
    assert expected  # the data has users on some platforms
    assert table_rows(path, "SELECT * FROM marts.a_top ORDER BY 1") == expected
    rows = {m.name: m.rows for m in summary.marts}
    assert (
        rows["z_base"]
        == table_rows(path, "SELECT count(*) FROM staging.events WHERE user_id IS NOT NULL")[0][0]
    )

    # A rebuild after more data reads the fresh base, not the previous build's.
    run_pipeline(project, available_at(4))
    fresh = table_rows(
        path,
        "SELECT platform, count(DISTINCT user_id) * 10 FROM staging.events "
        "WHERE user_id IS NOT NULL GROUP BY ALL ORDER BY 1",
    )
    assert fresh != expected
    assert table_rows(path, "SELECT * FROM marts.a_top ORDER BY 1") == fresh


def test_a_dependency_cycle_is_a_config_error_naming_the_models(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(emulator.base_url)
    write_models(
        project,
        {
            "orders_daily": "SELECT * FROM marts.orders_weekly",
            "orders_weekly": "SELECT * FROM marts.orders_monthly",
            "orders_monthly": "SELECT * FROM marts.orders_daily",
            "standalone": "SELECT 1 AS one",
        },
    )
    with Pipeline(project) as pipeline, pytest.raises(ConfigError) as raised:
        pipeline.build_marts()
    (problem,) = raised.value.problems
    assert problem.startswith("marts: models depend on each other in a cycle: ")
    for name in ("orders_daily", "orders_weekly", "orders_monthly"):
        assert name in problem
    assert "standalone" not in problem
    # Nothing of the failed build is left behind.
    assert table_rows(
        project.warehouse_path,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts'",
    ) == [(0,)]


def test_the_demo_daily_active_users_mart_matches_a_count_over_staging(
    emulator: AmplitudeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "demo"
    made = ("*.duckdb*", ".env", ".data", ".anchorflow", ".postgres", "exports")  # by make demo
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns(*made))
    monkeypatch.setenv("AMPLITUDE_BASE_URL", emulator.base_url)
    costs = write_cost_files(root / ".data" / "costs", START, days=2)  # the demo's cost files
    project = load_project(root)
    summary = run_demo_feeds(project, available_at(26))  # crosses midnight: two days
    assert [w.source for w in summary.windows] == ["amplitude"] * 26 + ["costs"] * 2
    assert {m.name for m in summary.marts} == {
        "daily_active_users", "revenue_by_country", "cost_per_user", "grading", "user_days",
        "funnel_events", "user_first_days",
    }  # fmt: skip
    spent = sum(Decimal(line.split(",")[3]) for f in costs for line in f.read_text().split()[1:])
    assert table_rows(project.warehouse_path, "SELECT sum(cost) FROM marts.cost_per_user") == [
        (spent,)
    ]

    events = table_rows(
        project.warehouse_path,
        "SELECT event_time, platform, user_id, device_id FROM staging.events",
    )
    users: dict[tuple[date, Any], set[str]] = defaultdict(set)
    counts: dict[tuple[date, Any], int] = defaultdict(int)
    for event_time, platform, user_id, device_id in events:
        assert isinstance(event_time, datetime)
        key = (event_time.date(), platform)
        counts[key] += 1
        who = user_id if user_id is not None else device_id
        if who is not None:
            users[key].add(who)
    expected = sorted((day, platform, len(users[(day, platform)]), n)
                      for (day, platform), n in counts.items())  # fmt: skip
    assert {date(2024, 3, 1), date(2024, 3, 2)} <= {day for day, *_ in expected}
    mart = table_rows(
        project.warehouse_path,
        "SELECT day, platform, active_users, events FROM marts.daily_active_users ORDER BY ALL",
    )
    assert mart == expected
    assert sum(n for *_, n in mart) == len(events)
    typed = table_rows(
        project.warehouse_path, "SELECT sum(staged) FROM meta.transfers WHERE model = 'events'"
    )
    assert typed == [(len(events),)]


# -- checks -------------------------------------------------------------------------------------


def test_validate_binds_every_mart_and_names_its_file_and_what_it_reads(
    make_project: Callable[..., Project],
) -> None:
    project = make_project("http://127.0.0.1:9")
    write_models(
        project,
        {
            "daily": "SELECT run_id FROM meta.run_log",  # meta's tables: not in the file's check
            "by_country": "SELECT countryy, count(*) AS n FROM staging.events GROUP BY 1",
            "on_daily": "SELECT * FROM marts.daily",  # fails only because daily does
            "from_files": "SELECT * FROM read_csv('exports/*.csv')",  # a file is not the mart's
            "fine": "SELECT r.status, e.user_id FROM meta.runs r, staging.events e",
        },
    )
    with pytest.raises(ConfigError) as raised:
        check_project(load_project(project.root))
    assert raised.value.problems == [
        'anchorflow.yml: marts: models/by_country.sql: Binder Error: Referenced column "countryy" '
        "not found in FROM clause!",
        "anchorflow.yml: marts: models/daily.sql: Catalog Error: Table with name run_log does not "
        "exist!",
    ]


def test_the_demo_project_s_marts_bind_over_the_tables_it_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "demo"
    made = ("*.duckdb*", ".env", ".data", ".anchorflow", ".postgres", "exports")  # by make demo
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns(*made))
    monkeypatch.setenv("AMPLITUDE_BASE_URL", "http://127.0.0.1:9")
    check_project(load_project(root))  # anchor perspectives, staging, raw and meta all there
    assert sorted(p.name for p in root.iterdir()) == ["anchorflow.yml", "dashboards", "models"]


def test_a_mart_failing_in_a_run_is_named_by_its_file(
    emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(
        emulator.base_url, mart_sql="SELECT CAST(event_type AS INTEGER) AS n FROM staging.events"
    )
    check_project(project)  # it binds: only the rows make it fail
    with pytest.raises(WarehouseError) as failed:
        run_pipeline(project, available_at(1))
    assert str(failed.value).startswith("models/daily.sql: ConversionException: ")
