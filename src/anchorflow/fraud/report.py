"""The fraud report: views in `fraud`, per day × country × campaign × sub-campaign.

- `fraud.report`: clicks, registrations and events, and how many of each are fraud
  (deduplicated across rules; shadow rules count nowhere), and the fraud rate (fraud
  registrations / registrations). Clicks count where they were made; a user's registration
  and events count under the country and campaign they registered with.
- `fraud.report_by_rule`: the same dimensions per rule: users and events it flagged (its
  shadow flags included, marked).

They are views over the inputs as the project maps them, replaced at each fraud run, so
they always count what the inputs hold now. `report_rows` sums a date range for the CLI.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from anchorflow.fraud.inputs import Inputs
from anchorflow.warehouse import Warehouse, table

DIMENSIONS = ("country", "campaign", "sub_campaign")
REPORT = table("fraud", "report")
BY_RULE = table("fraud", "report_by_rule")
COUNTS = (
    "clicks", "fraud_clicks", "registrations", "fraud_registrations", "events", "fraud_events"
)  # fmt: skip


def replace_report_views(warehouse: Warehouse, inputs: Inputs) -> bool:
    """Replace both views; False (and none made) when registrations cannot be read."""
    if "registrations" not in inputs.selects:
        return False
    warehouse.execute(warehouse.sql.replace_view(REPORT, _report_sql(inputs)))
    warehouse.execute(warehouse.sql.replace_view(BY_RULE, _by_rule_sql(inputs)))
    return True


def _report_sql(inputs: Inputs) -> str:
    dims = ", ".join(DIMENSIONS)
    regs = inputs.selects["registrations"]
    flagged_users = "SELECT DISTINCT user_id FROM fraud.fraud_user WHERE NOT shadow"
    flagged = "SELECT DISTINCT event_id FROM fraud.fraud_event WHERE NOT shadow AND event_kind = "
    flagged_clicks, flagged_events = flagged + "'click'", flagged + "'event'"
    parts = [
        f"SELECT CAST(r.time AS DATE) AS day, {_dims('r')}, 0 AS clicks, 0 AS fraud_clicks, "
        "1 AS registrations, CASE WHEN f.user_id IS NULL THEN 0 ELSE 1 END "
        "AS fraud_registrations, 0 AS events, 0 AS fraud_events "
        f"FROM ({regs}) AS r LEFT JOIN ({flagged_users}) AS f ON f.user_id = r.user_id"
    ]
    if "clicks" in inputs.selects:
        parts.append(
            f"SELECT CAST(c.time AS DATE), {_dims('c')}, 1, CASE WHEN f.event_id IS NULL "
            "THEN 0 ELSE 1 END, 0, 0, 0, 0 "
            f"FROM ({inputs.selects['clicks']}) AS c "
            f"LEFT JOIN ({flagged_clicks}) AS f ON f.event_id = c.click_id"
        )
    if "events" in inputs.selects:
        parts.append(
            f"SELECT CAST(e.time AS DATE), {_dims('r')}, 0, 0, 0, 0, 1, CASE WHEN f.event_id "
            "IS NULL THEN 0 ELSE 1 END "
            f"FROM ({inputs.selects['events']}) AS e JOIN ({regs}) AS r ON r.user_id = e.user_id "
            f"LEFT JOIN ({flagged_events}) AS f ON f.event_id = e.event_id"
        )
    sums = ", ".join(f"sum({c}) AS {c}" for c in COUNTS)
    return (
        f"SELECT day, {dims}, {sums}, CASE WHEN sum(registrations) = 0 THEN NULL ELSE "
        "CAST(sum(fraud_registrations) AS DOUBLE) / sum(registrations) END AS fraud_rate "
        f"FROM ({' UNION ALL '.join(parts)}) AS p GROUP BY day, {dims}"
    )


def _by_rule_sql(inputs: Inputs) -> str:
    dims = ", ".join(DIMENSIONS)
    regs = inputs.selects["registrations"]
    users = (
        f"SELECT CAST(r.time AS DATE) AS day, {_dims('r')}, u.rule, u.shadow, "
        "count(*) AS users, 0 AS events "
        f"FROM fraud.fraud_user AS u JOIN ({regs}) AS r ON r.user_id = u.user_id "
        f"GROUP BY CAST(r.time AS DATE), {_dims('r')}, u.rule, u.shadow"
    )
    events = (
        f"SELECT CAST(e.event_time AS DATE), {_dims('r')}, e.rule, e.shadow, 0, count(*) "
        f"FROM fraud.fraud_event AS e JOIN ({regs}) AS r ON r.user_id = e.user_id "
        f"GROUP BY CAST(e.event_time AS DATE), {_dims('r')}, e.rule, e.shadow"
    )
    return (
        f"SELECT day, {dims}, rule, shadow, sum(users) AS users, sum(events) AS events "
        f"FROM ({users} UNION ALL {events}) AS p GROUP BY day, {dims}, rule, shadow"
    )


def _dims(alias: str) -> str:
    return ", ".join(f"{alias}.{d}" for d in DIMENSIONS)


def report_rows(
    warehouse: Warehouse, start: date | None, end: date | None, top: int | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The report summed over [start, end] per country × campaign × sub-campaign, with a
    column per rule (the users it flagged), most fraud registrations first."""
    if not warehouse.table_exists("fraud", "report"):
        return [], []
    where, params = _range(start, end)
    rules = [str(r[0]) for r in warehouse.query(
        f"SELECT DISTINCT rule FROM {BY_RULE} WHERE NOT shadow{where} ORDER BY rule", params
    )]  # fmt: skip
    dims = ", ".join(DIMENSIONS)
    sums = ", ".join(f"sum({c}) AS {c}" for c in COUNTS)
    per_rule = ", ".join(
        f"(SELECT coalesce(sum(b.users), 0) FROM {BY_RULE} AS b WHERE b.rule = ? "
        "AND NOT b.shadow AND b.country IS NOT DISTINCT FROM t.country AND b.campaign IS NOT "
        "DISTINCT FROM t.campaign AND b.sub_campaign IS NOT DISTINCT FROM t.sub_campaign"
        f"{where.replace('day', 'b.day')}) AS rule_{i}"
        for i, _ in enumerate(rules)
    )
    rule_params = [p for rule in rules for p in [rule, *params]]
    sql = (
        f"SELECT t.*{', ' + per_rule if rules else ''} FROM (SELECT {dims}, {sums}, CASE WHEN "
        "sum(registrations) = 0 THEN NULL ELSE round(CAST(sum(fraud_registrations) AS DOUBLE) "
        f"/ sum(registrations), 4) END AS fraud_rate FROM {REPORT} WHERE true{where} "
        f"GROUP BY {dims}) AS t ORDER BY fraud_registrations DESC, registrations DESC, {dims}"
        + (" LIMIT ?" if top else "")
    )
    rows = warehouse.query(sql, [*rule_params, *params, *([top] if top else [])])
    return [*DIMENSIONS, *COUNTS, "fraud_rate", *rules], rows


def _range(start: date | None, end: date | None) -> tuple[str, list[Any]]:
    where, params = "", []
    if start is not None:
        where += " AND day >= ?"
        params.append(start)
    if end is not None:
        where += " AND day <= ?"
        params.append(end)
    return where, params


def report_days(warehouse: Warehouse) -> tuple[date | None, date | None]:
    """The first and last day the report counts (None, None without a report)."""
    if not warehouse.table_exists("fraud", "report"):
        return None, None
    first, last = warehouse.query(f"SELECT min(day), max(day) FROM {REPORT}")[0]
    return first, last
