"""A small shop for the semantic layer's tests: events, accounts and purchases in staging, with
semantic models over them, and a few days of rows whose answers are known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anchorflow.config import Project
from anchorflow.stage.tables import prepare_tables
from anchorflow.warehouse import Warehouse
from tests.builders import EVENTS_MODEL, amplitude_source, build_project

STAGING: dict[str, Any] = {
    "events": {
        **EVENTS_MODEL,
        "columns": {**EVENTS_MODEL["columns"], "country": "VARCHAR"},
    },
    "accounts": {
        "source": "amplitude",
        "selector": "event_type = 'account'",
        "unique_key": "user_id",
        "columns": {"user_id": "VARCHAR", "plan": "VARCHAR"},
    },
    "purchases": {
        "source": "amplitude",
        "selector": "event_type = 'purchase'",
        "unique_key": "event_uuid",
        "columns": {
            "event_uuid": {"path": "uuid", "type": "UUID"},
            "user_id": "VARCHAR",
            "event_time": "TIMESTAMP",
            "amount": "DOUBLE",
            "country": "VARCHAR",
        },
    },
}

METRICS: dict[str, Any] = {
    "models": {
        "events": {
            "model": "events",
            "time": {"column": "event_time", "grains": ["hour", "day", "week", "month"]},
            "dimensions": {
                "country": "country",
                "platform": {"column": "platform"},
                "kind": {"sql": "lower(event_type)"},
            },
            "measures": {
                "events": {"agg": "count"},
                "users": {"agg": "count_distinct", "sql": "coalesce(user_id, device_id)"},
                "revenue": {"agg": "sum", "column": "amount", "filter": "event_type = 'purchase'"},
                "biggest": {"agg": "max", "column": "amount"},
                "average": {"agg": "avg", "column": "amount"},
                "devices": {"agg": "approx_count_distinct", "column": "device_id"},
            },
            "joins": {
                "account": {"model": "accounts", "relationship": "many_to_one",
                            "on": {"user_id": "user_id"}},
            },
        },
        "accounts": {
            "model": "accounts",
            "dimensions": {"plan": "plan"},
            "measures": {"accounts": {"agg": "count"}},
        },
        "purchases": {
            "model": "purchases",
            "time": {"column": "event_time", "grains": ["day", "week", "month"]},
            "dimensions": {"country": "country"},
            "measures": {
                "purchases": {"agg": "count"},
                "buyers": {"agg": "count_distinct", "column": "user_id"},
                "amount": {"agg": "sum", "column": "amount"},
            },
            "joins": {
                "account": {"model": "accounts", "relationship": "many_to_one",
                            "on": {"user_id": "user_id"}},
            },
        },
    },
    "metrics": {
        "events": {"measure": "events.events", "label": "Events"},
        "active_users": {"measure": "events.users", "label": "Active users"},
        "revenue": {"measure": "events.revenue", "label": "Revenue", "format": "currency"},
        "biggest": {"measure": "events.biggest"},
        "average": {"measure": "events.average"},
        "devices": {"measure": "events.devices"},
        "purchases": {"measure": "purchases.purchases"},
        "buyers": {"measure": "purchases.buyers"},
        "purchase_amount": {"measure": "purchases.amount"},
        "conversion": {"ratio": ["buyers", "active_users"], "format": "percent"},
        "accounts": {"measure": "accounts.accounts"},
    },
}  # fmt: skip

# (uuid, type, time, user, device, platform, country, amount)
UUID = "00000000-0000-0000-0000-00000000000"
EVENTS = [
    (UUID + "1", "open", "2024-03-01 09:00", "u1", "d1", "iOS", "DE", None),
    (UUID + "2", "purchase", "2024-03-01 10:30", "u1", "d1", "iOS", "DE", 10.0),
    (UUID + "3", "purchase", "2024-03-01 11:00", "u1", "d1", "iOS", "DE", 5.0),
    (UUID + "4", "open", "2024-03-01 12:00", "u2", "d2", "Android", "FR", None),
    (UUID + "5", "open", "2024-03-02 08:00", None, "d9", "Web", None, None),
    (UUID + "6", "purchase", "2024-03-02 09:00", "u3", "d3", "Web", "DE", 7.5),
    (UUID + "7", "Open", "2024-03-04 10:00", "u2", "d2", "Android", "FR", None),
    (UUID + "8", "purchase", "2024-03-04 11:00", "u2", "d2", "Android", "FR", 20.0),
]  # fmt: skip
ACCOUNTS = [("u1", "pro"), ("u2", "free"), ("u3", "free")]


def shop_project(
    root: Path,
    metric_alerts: dict[str, Any] | None = None,
    metrics_override: dict[str, Any] | None = None,
    **top: Any,
) -> Project:
    sources = {"amplitude": amplitude_source()}
    metrics = metrics_override or METRICS
    if metric_alerts:
        metrics = {**metrics, "alerts": metric_alerts}
    return build_project(root, sources=sources, staging=STAGING, metrics=metrics, **top)


def fill_shop(warehouse: Warehouse, project: Project) -> None:
    """The staging tables made empty as a run makes them, then the rows above, load 1."""
    prepare_tables(warehouse, project, "amplitude", "events")
    warehouse.execute(
        "INSERT INTO staging.events (load_id, event_uuid, event_type, event_time, user_id, "
        "device_id, platform, country, amount) SELECT 1, CAST(u AS UUID), ty, "
        "CAST(ti AS TIMESTAMP), us, de, pl, co, am FROM (VALUES "
        + ", ".join("(?, ?, ?, ?, ?, ?, ?, CAST(? AS DOUBLE))" for _ in EVENTS)
        + ") AS v(u, ty, ti, us, de, pl, co, am)",
        [value for row in EVENTS for value in row],
    )
    purchases = [row for row in EVENTS if row[1] == "purchase"]
    warehouse.execute(
        "INSERT INTO staging.purchases (load_id, event_uuid, user_id, event_time, amount, "
        "country) SELECT 1, event_uuid, user_id, event_time, amount, country "
        "FROM staging.events WHERE event_type = 'purchase'"
    )
    assert len(purchases) == 4
    mark_load(warehouse, 1)
    for user, plan in ACCOUNTS:
        warehouse.execute(
            "INSERT INTO staging.accounts (load_id, user_id, plan) VALUES (1, ?, ?)", [user, plan]
        )


def mark_load(warehouse: Warehouse, load_id: int) -> None:
    """Journal the load as typed into the shop's models, as staging would have."""
    for model in STAGING:
        warehouse.execute(
            "INSERT INTO meta.transfers VALUES (?, ?, ?, 1, 0, 0, current_timestamp)",
            [load_id, model, load_id],
        )
