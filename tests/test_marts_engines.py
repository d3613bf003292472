"""Marts on every engine: the same DuckDB-spelled models (GROUP BY ALL, FILTER, ROUND of a
double, a mart reading another) build the same tables on DuckDB and PostgreSQL, and views that
someone else made on a mart survive its rebuild."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from anchorflow.config import Project
from anchorflow.errors import WarehouseError
from anchorflow.marts import build_marts
from anchorflow.warehouse import Warehouse, connect
from tests.builders import build_project
from tests.conftest import table_rows

pytestmark = pytest.mark.integration

MODELS = {
    "daily": "-- events per day and platform\n"
    "SELECT CAST(event_time AS DATE) AS day, platform, count(*) AS events,\n"
    "  SUM(amount) FILTER (WHERE event_type = 'purchase') AS revenue,\n"
    "  COUNT(DISTINCT COALESCE(user_id, device_id)) AS users\n"
    "FROM staging.events GROUP BY ALL ORDER BY ALL",
    "per_user": "SELECT day, platform, ROUND(revenue / NULLIF(users, 0), 2) AS per_user,\n"
    "  (SELECT SUM(d.events) FROM marts.daily AS d WHERE d.day = m.day) AS day_events\n"
    "FROM marts.daily AS m ORDER BY day, platform",
}
IOS_VIEW = "CREATE VIEW marts.ios AS SELECT * FROM marts.daily WHERE platform = 'ios'"
EVENTS = [
    ("purchase", datetime(2024, 3, 1, 1), "u1", "d1", "ios", 10.0),
    ("purchase", datetime(2024, 3, 1, 2), "u2", "d2", "ios", 5.5),
    ("session_start", datetime(2024, 3, 1, 3), None, "d3", "android", None),
    ("purchase", datetime(2024, 3, 2, 1), "u1", "d1", "android", 1.0),
]


def _project(root: Path) -> Project:
    return build_project(root, marts=MODELS)


def _stage(warehouse: Warehouse, events: list[tuple[object, ...]]) -> None:
    """staging.events as the stage step makes it (only the columns the marts read)."""
    warehouse.create_schema("staging")
    warehouse.execute(
        "CREATE OR REPLACE TABLE staging.events (event_type VARCHAR, event_time TIMESTAMP, "
        "user_id VARCHAR, device_id VARCHAR, platform VARCHAR, amount DOUBLE)"
    )
    for event in events:
        warehouse.execute("INSERT INTO staging.events VALUES (?, ?, ?, ?, ?, ?)", list(event))


def test_the_same_models_build_the_same_marts_on_every_engine(engine: str, tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    with connect(project) as warehouse:
        _stage(warehouse, EVENTS)
        built = build_marts(warehouse, project)
    assert [(m.name, m.rows) for m in built] == [("daily", 3), ("per_user", 3)]
    day1, day2 = datetime(2024, 3, 1).date(), datetime(2024, 3, 2).date()
    assert table_rows(project, "SELECT * FROM marts.daily ORDER BY day, platform") == [
        (day1, "android", 1, None, 1),
        (day1, "ios", 2, 15.5, 2),
        (day2, "android", 1, 1.0, 1),
    ]
    assert table_rows(project, "SELECT * FROM marts.per_user ORDER BY day, platform") == [
        (day1, "android", None, 3),
        (day1, "ios", 7.75, 3),
        (day2, "android", 1.0, 1),
    ]
    # The file's header comment describes the table, on every engine.
    with connect(project, read_only=True) as reader:
        comments = dict(reader.query(reader.sql.table_comments(), ["marts"]))
    assert comments["daily"] == "events per day and platform"


def test_views_on_a_mart_survive_its_rebuild(engine: str, tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    with connect(project) as warehouse:
        _stage(warehouse, EVENTS[:2])
        build_marts(warehouse, project)
        # An analyst's views: one on a mart, one on that view.
        warehouse.execute(IOS_VIEW)
        warehouse.execute("CREATE VIEW marts.ios_total AS SELECT sum(events) AS n FROM marts.ios")
        _stage(warehouse, EVENTS)
        build_marts(warehouse, project)
        build_marts(warehouse, project)  # twice: nothing changes, nothing is left behind
    assert table_rows(project, "SELECT n FROM marts.ios_total") == [(2,)]
    assert table_rows(project, "SELECT count(*) FROM marts.daily") == [(3,)]
    tables = table_rows(
        project,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
        "ORDER BY table_name",
    )
    assert tables == [("daily",), ("ios",), ("ios_total",), ("per_user",)]


def test_a_mart_whose_columns_change_under_a_view_is_refused_naming_the_view(
    tmp_path: Path,
    engine: str,
) -> None:
    project = _project(tmp_path / "p")
    with connect(project) as warehouse:
        _stage(warehouse, EVENTS)
        build_marts(warehouse, project)
        warehouse.execute(IOS_VIEW)
    daily = project.marts_path / "daily.sql"
    wider = daily.read_text().replace(" AS users\n", " AS users, max(event_time) AS last\n")
    daily.write_text(wider)
    with connect(project) as warehouse:
        if not warehouse.sql.dependent_views():  # DuckDB binds a view when it is read
            build_marts(warehouse, project)
            return
        with pytest.raises(WarehouseError) as refused:
            build_marts(warehouse, project)
    assert str(refused.value) == (
        "models/daily.sql: its columns changed, and views depend on marts.daily (marts.ios): "
        "drop them (they are not anchorflow's) or keep the mart's columns and types"
    )
    # The transaction rolled back: the previous mart and the view are as they were.
    assert table_rows(project, "SELECT count(*) FROM marts.ios") == [(1,)]


def test_marts_are_exported_and_described_for_dbt_on_every_engine(
    engine: str, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq
    import yaml

    from anchorflow.publish.dbt import dbt_sources
    from anchorflow.publish.export import export_tables

    project = _project(tmp_path / "p")
    with connect(project) as warehouse:
        _stage(warehouse, EVENTS)
        build_marts(warehouse, project)
    with connect(project, read_only=True) as reader:
        exported = export_tables(reader, project, ["marts.*"], tmp_path / "out")
        sources = yaml.safe_load(dbt_sources(reader, project, ["marts"]))
        database = reader.scalar("SELECT current_database()")
    assert [(e.table, e.rows) for e in exported] == [("marts.daily", 3), ("marts.per_user", 3)]
    daily = pq.read_table(tmp_path / "out" / "marts" / "daily.parquet")
    assert daily.column_names == ["day", "platform", "events", "revenue", "users"]
    assert sorted(daily.column("revenue").to_pylist(), key=str) == [1.0, 15.5, None]
    (source,) = sources["sources"]
    assert source["database"] == (database if engine == "postgres" else "warehouse")
    tables = {t["name"]: [c["name"] for c in t["columns"]] for t in source["tables"]}
    assert tables["daily"] == ["day", "platform", "events", "revenue", "users"]


def test_the_read_only_commands_answer_on_every_engine(engine: str, tmp_path: Path) -> None:
    """status, fields, drift and query of a project whose marts were built and nothing loaded:
    each answers through a read-only connection, on the project's engine."""
    from anchorflow.run import Pipeline

    project = _project(tmp_path / "p")
    with Pipeline(project) as writer:
        _stage(writer.warehouse, EVENTS)
        writer.build_marts()
    with Pipeline(project, read_only=True) as reader:
        status = reader.status()
        assert [(s.source, s.position) for s in status.sources] == [("amplitude", "never loaded")]
        assert reader.field_stats("events").fields == []
        assert reader.schema_events() == []
        assert reader.totals().loads == 0
