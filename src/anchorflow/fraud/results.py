"""The fraud schema's tables, and the insert-only merges that fill them.

- `fraud.rule_<slug>`: what a rule found (its output columns, the `rule_run_id` that first
  found each row, `whitelisted`); a row is added once per key (the columns the rule flags).
- `fraud.fraud_user`: one row per (user, rule), from the first run that flagged the user.
- `fraud.fraud_event`: one row per (event, kind, rule): the events a rule flagged itself, and
  each flagged user's events and registration click from `event_lookback` before the flag on.
- `fraud.whitelist_users`, `fraud.whitelist_ips`, `fraud.whitelist_campaigns`, and the
  catalogue's data tables (`dc_ranges`, `bot_agents`): replaced at each run from the project
  file and the package.

Every merge is `INSERT ... SELECT ... WHERE NOT EXISTS`: a re-run of the same window adds
nothing, and a run killed half-way rolls back whole, so its re-run is the clean run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

import pyarrow as pa

from anchorflow.config.fraud import FraudSettings
from anchorflow.errors import WarehouseError
from anchorflow.fraud.inputs import Inputs
from anchorflow.warehouse import Warehouse, ident, table
from anchorflow.warehouse.dialect import Dialect

KEY_COLUMNS = ("user_id", "event_id", "event_kind", "ip", "device_id")
FRAUD_DDL = [
    """CREATE TABLE IF NOT EXISTS fraud.fraud_user (
        user_id VARCHAR NOT NULL,
        rule VARCHAR NOT NULL,
        rule_run_id VARCHAR NOT NULL,
        severity VARCHAR NOT NULL,
        shadow BOOLEAN NOT NULL,
        flagged_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS fraud.fraud_event (
        event_id VARCHAR NOT NULL,
        event_kind VARCHAR NOT NULL,
        user_id VARCHAR,
        rule VARCHAR NOT NULL,
        rule_run_id VARCHAR NOT NULL,
        shadow BOOLEAN NOT NULL,
        event_time TIMESTAMP)""",
]
FOUND = table("fraud", "af__found")
# Tables the fraud step replaces from the project file and the package at each run.
REFERENCE = ("whitelist_users", "whitelist_ips", "whitelist_campaigns", "dc_ranges", "bot_agents")


def ensure_fraud_tables(warehouse: Warehouse) -> None:
    warehouse.create_schema("fraud")
    for ddl in FRAUD_DDL:
        warehouse.execute(ddl)


def replace_reference_tables(
    warehouse: Warehouse, settings: FraudSettings, data: dict[str, pa.Table]
) -> None:
    """The whitelists of the project file and the catalogue's data files, as tables."""
    whitelist = settings.whitelist
    ranges = whitelist.ip_ranges()
    tables = {
        "whitelist_users": pa.table({"user_id": pa.array(whitelist.users, pa.string())}),
        "whitelist_ips": pa.table(
            {
                "first_ip": pa.array([r[0] for r in ranges], pa.int64()),
                "last_ip": pa.array([r[1] for r in ranges], pa.int64()),
            }
        ),
        "whitelist_campaigns": pa.table({"campaign": pa.array(whitelist.campaigns, pa.string())}),
        **data,
    }
    for name, rows in tables.items():
        with warehouse.registered(f"af_{name}", rows) as view:
            warehouse.execute(
                warehouse.sql.create_or_replace_table(table("fraud", name), f"SELECT * FROM {view}")
            )


def ip_number(column: str, dialect: Dialect) -> str:
    """An IPv4 address's text as a number (NULL when it is not one), for range tests."""
    parts = [dialect.try_cast(f"split_part({column}, '.', {i})", "BIGINT") for i in range(1, 5)]
    return f"({parts[0]} * 16777216 + {parts[1]} * 65536 + {parts[2]} * 256 + {parts[3]})"


def fraud_columns(warehouse: Warehouse, name: str) -> list[str]:
    """The columns of the table `fraud.<name>`, in order (none when it is not there)."""
    rows = warehouse.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'fraud' "
        "AND table_name = ? ORDER BY ordinal_position",
        [name],
    )
    return [str(row[0]) for row in rows]


def fraud_tables(warehouse: Warehouse) -> list[str]:
    """The base tables of the fraud schema, by name."""
    rows = warehouse.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'fraud' "
        "AND table_type = 'BASE TABLE' ORDER BY table_name"
    )
    return [str(row[0]) for row in rows]


def found_columns(warehouse: Warehouse) -> list[str]:
    return fraud_columns(warehouse, "af__found")


def ensure_rule_table(warehouse: Warehouse, slug: str, columns: list[str]) -> str:
    """`fraud.rule_<slug>` with the rule's columns; one from an earlier version of the rule
    with other columns is an error that says what to do."""
    target = table("fraud", f"rule_{slug}")
    if not warehouse.table_exists("fraud", f"rule_{slug}"):
        warehouse.execute(
            f"CREATE TABLE {target} AS SELECT CAST(NULL AS VARCHAR) AS rule_run_id, f.*, "
            f"false AS whitelisted FROM {FOUND} AS f LIMIT 0"
        )
        return target
    have = fraud_columns(warehouse, f"rule_{slug}")
    if have != ["rule_run_id", *columns, "whitelisted"]:
        raise WarehouseError(
            f"fraud.rule_{slug} has the columns of another version of the rule "
            f"({', '.join(have[1:-1])}; now {', '.join(columns)}): rename or drop that table "
            "to keep or discard its results, then run again"
        )
    return target


def add_found(
    warehouse: Warehouse, target: str, run_id: str, columns: list[str], inputs: Inputs
) -> int:
    """The rows found that the rule table lacks (by the keys it flags), marked whitelisted
    where they name a whitelisted user, IP or campaign; how many were added. A key the rule
    returned twice (two days' evidence) is added once: its earliest row."""
    keys = [c for c in KEY_COLUMNS if c in columns] or columns
    same = " AND ".join(f"o.{ident(k)} IS NOT DISTINCT FROM f.{ident(k)}" for k in keys)
    shown = ", ".join(f"f.{ident(c)}" for c in columns)
    first = ", ".join(ident(c) for c in ("flagged_at", *(c for c in columns if c != "flagged_at")))
    once = (
        f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY "
        f"{', '.join(ident(k) for k in keys)} ORDER BY {first}) AS af__n FROM {FOUND}) AS d "
        "WHERE af__n = 1"
    )
    return warehouse.insert(
        f"INSERT INTO {target} SELECT ?, {shown}, {_whitelisted(columns, inputs, warehouse.sql)} "
        f"FROM ({once}) AS f WHERE NOT EXISTS (SELECT 1 FROM {target} AS o WHERE {same})",
        [run_id],
    )


def _whitelisted(columns: Sequence[str], inputs: Inputs, dialect: Dialect) -> str:
    tests = []
    ips = table("fraud", "whitelist_ips")
    campaigns = table("fraud", "whitelist_campaigns")
    if "user_id" in columns:
        tests.append(f"f.user_id IN (SELECT user_id FROM {table('fraud', 'whitelist_users')})")
        if "registrations" in inputs.selects:
            number = ip_number("r.ip", dialect)
            tests.append(
                f"f.user_id IN (SELECT r.user_id FROM ({inputs.selects['registrations']}) AS r "
                f"WHERE r.campaign IN (SELECT campaign FROM {campaigns}) OR EXISTS (SELECT 1 "
                f"FROM {ips} AS w WHERE {number} BETWEEN w.first_ip AND w.last_ip))"
            )
    if "ip" in columns:
        tests.append(
            f"EXISTS (SELECT 1 FROM {ips} AS w WHERE {ip_number('f.ip', dialect)} "
            "BETWEEN w.first_ip AND w.last_ip)"
        )
    if "campaign" in columns:
        tests.append(f"f.campaign IN (SELECT campaign FROM {campaigns})")
    if "event_id" in columns and "clicks" in inputs.selects:
        tests.append(
            f"(f.event_kind = 'click' AND f.event_id IN (SELECT c.click_id FROM "
            f"({inputs.selects['clicks']}) AS c WHERE c.campaign IN (SELECT campaign FROM "
            f"{campaigns}) OR EXISTS (SELECT 1 FROM {ips} AS w WHERE {ip_number('c.ip', dialect)} "
            "BETWEEN w.first_ip AND w.last_ip)))"
        )
    return f"coalesce({' OR '.join(tests)}, false)" if tests else "false"


def merge_users(
    warehouse: Warehouse, target: str, slug: str, run_id: str, severity: str, shadow: bool
) -> int:
    """The users the rule flagged (not whitelisted) that `fraud_user` lacks for this rule."""
    if "user_id" not in _table_columns(warehouse, target):
        return 0
    return warehouse.insert(
        "INSERT INTO fraud.fraud_user (user_id, rule, rule_run_id, severity, shadow, "
        f"flagged_at) SELECT f.user_id, ?, ?, ?, ?, min(f.flagged_at) FROM {target} AS f "
        "WHERE NOT f.whitelisted AND f.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
        "fraud.fraud_user AS u WHERE u.user_id = f.user_id AND u.rule = ?) GROUP BY f.user_id",
        [slug, run_id, severity, shadow, slug],
    )


def merge_events(
    warehouse: Warehouse,
    target: str,
    slug: str,
    run_id: str,
    shadow: bool,
    inputs: Inputs,
    lookback: timedelta,
    window_end: datetime,
) -> int:
    """The events the rule flagged itself, then its flagged users' events (from `lookback`
    before their flag to the window's end) and registration clicks; each once per rule."""
    added = 0
    absent = (
        "NOT EXISTS (SELECT 1 FROM fraud.fraud_event AS o WHERE o.event_id = n.event_id "
        "AND o.event_kind = n.event_kind AND o.rule = ?)"
    )
    insert = (
        "INSERT INTO fraud.fraud_event (event_id, event_kind, user_id, rule, rule_run_id, "
        "shadow, event_time) SELECT n.event_id, n.event_kind, min(n.user_id), ?, ?, ?, "
        "min(n.event_time) FROM ({}) AS n WHERE " + absent + " GROUP BY n.event_id, n.event_kind"
    )
    columns = _table_columns(warehouse, target)
    if {"event_id", "event_kind"} <= set(columns):
        user = "f.user_id" if "user_id" in columns else "CAST(NULL AS VARCHAR)"
        direct = (
            f"SELECT f.event_id, f.event_kind, {user} AS user_id, f.flagged_at AS event_time "
            f"FROM {target} AS f WHERE NOT f.whitelisted AND f.event_id IS NOT NULL"
        )
        added += warehouse.insert(insert.format(direct), [slug, run_id, shadow, slug])
    users = "SELECT user_id, flagged_at FROM fraud.fraud_user WHERE rule = ?"
    if "events" in inputs.selects:
        own = (
            f"SELECT e.event_id, 'event' AS event_kind, e.user_id, e.time AS event_time "
            f"FROM ({inputs.selects['events']}) AS e JOIN ({users}) AS u "
            f"ON e.user_id = u.user_id WHERE e.time >= u.flagged_at - ? AND e.time < ?"
        )
        added += warehouse.insert(
            insert.format(own), [slug, run_id, shadow, slug, lookback, window_end, slug]
        )
    if "clicks" in inputs.selects and "registrations" in inputs.selects:
        clicks = (
            f"SELECT c.click_id AS event_id, 'click' AS event_kind, r.user_id, "
            f"c.time AS event_time FROM ({inputs.selects['clicks']}) AS c "
            f"JOIN ({inputs.selects['registrations']}) AS r ON r.click_id = c.click_id "
            f"JOIN ({users}) AS u ON r.user_id = u.user_id"
        )
        added += warehouse.insert(insert.format(clicks), [slug, run_id, shadow, slug, slug])
    return added


def _table_columns(warehouse: Warehouse, target: str) -> list[str]:
    return fraud_columns(warehouse, target.split(".")[-1].strip('"'))


def fraud_checksum(warehouse: Warehouse) -> str:
    """SHA-256 over every result table of `fraud` (rows in a fixed order, Arrow IPC bytes)."""
    names = [
        name for name in fraud_tables(warehouse)
        if name not in REFERENCE and not name.startswith("af__")
    ]  # fmt: skip
    digest = hashlib.sha256()
    for name in names:
        order = ", ".join(ident(c) for c in fraud_columns(warehouse, name))
        rows = warehouse.query_arrow(f"SELECT * FROM {table('fraud', name)} ORDER BY {order}")
        rows = rows.combine_chunks()
        digest.update(name.encode())
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, rows.schema) as writer:
            writer.write_table(rows)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()
