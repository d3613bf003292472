"""The demo's users table in DynamoDB: moto's server mode on a free loopback port (a thread of
the demo), a table of a few thousand users, a first full scan by the project's `dynamodb` source
(`accounts`), a few users moved to another city or plan, then the demo's run scans again. The
anchor model keeps each attribute's changes only (scd2, `scanned_at` as changed_at), so the
history between the two scans is exactly the items changed.

moto keeps its tables in the demo's memory: a second demo builds the same table again, and the
source scans nothing new, its last scan being as recent as the demo's clock.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console

from anchorflow.config import Project
from anchorflow.config.exports import Exports
from anchorflow.errors import AnchorflowError
from anchorflow.run import Pipeline
from anchorflow.sources.dynamodb.config import DynamoDBConfig
from anchorflow.warehouse import Warehouse

SOURCE = "accounts"
USERS = 3_000
CITIES = ("Berlin", "Lisbon", "Paris", "Warsaw", "Madrid", "Oslo")
PLANS = ("free", "plus", "pro")
MOVED = range(7, USERS, 100)  # these users move to the next city: 30
UPGRADED = range(11, USERS, 150)  # these change to the next plan: 20 (none of them moved)
BATCH = 25  # BatchWriteItem's limit
FIRST_SCAN_BEFORE = timedelta(hours=1)  # the first scan, before the demo's run scans again
URL_ENV = "DYNAMODB_ENDPOINT_URL"
KEY_ENV, SECRET_ENV = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"  # botocore's chain
DEMO_KEY, DEMO_SECRET = "demo-dynamodb-key", "demo-dynamodb-secret"


@dataclass(frozen=True)
class LocalTable:
    url: str
    client: Any  # boto3's DynamoDB client (untyped)
    table: str


def accounts_config(project: Project) -> DynamoDBConfig | None:
    config = project.sources.get(SOURCE)
    return config if isinstance(config, DynamoDBConfig) else None


def user_item(index: int, city: str | None = None, plan: str | None = None) -> dict[str, Any]:
    """One small item in DynamoDB's AttributeValue form (moto re-reads the table per page)."""
    return {
        "id": {"S": f"user_{index}"},
        "email": {"S": f"user{index}@example.com"},
        "city": {"S": city or CITIES[index % len(CITIES)]},
        "plan": {"S": plan or PLANS[index % len(PLANS)]},
    }


def changed_items() -> list[dict[str, Any]]:
    """The users changed between the two scans: a new city, or a new plan."""
    moved = [user_item(i, city=CITIES[(i + 1) % len(CITIES)]) for i in MOVED]
    upgraded = [user_item(i, plan=PLANS[(i + 1) % len(PLANS)]) for i in UPGRADED]
    return moved + upgraded


@contextmanager
def local_dynamodb(console: Console, project: Project) -> Iterator[LocalTable | None]:
    """moto's DynamoDB on 127.0.0.1 while the block runs, holding the users table, its URL in
    the variable the project file reads (restored after); None without an `accounts` source."""
    config = accounts_config(project)
    if config is None:
        yield None
        return
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise AnchorflowError(
            "accounts: the demo's local DynamoDB needs moto[server] (`pip install "
            "'anchorflow[demo]'`; `make demo` installs it)"
        ) from None
    os.environ.setdefault(KEY_ENV, DEMO_KEY)
    os.environ.setdefault(SECRET_ENV, DEMO_SECRET)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs each request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    previous = os.environ.get(URL_ENV)
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        os.environ[URL_ENV] = url
        client = boto3.client(
            "dynamodb", endpoint_url=url, region_name=config.region,
            aws_access_key_id=os.environ[KEY_ENV], aws_secret_access_key=os.environ[SECRET_ENV],
        )  # fmt: skip
        local = LocalTable(url, client, config.table)
        started = time.perf_counter()
        with console.status(f"creating the DynamoDB table {config.table} ({USERS:,} users)"):
            _create(local, [user_item(i) for i in range(USERS)])
        console.print(
            f"DynamoDB (moto's server): {url}, table {config.table}, {USERS:,} users written in "
            f"{time.perf_counter() - started:.1f}s"
        )
        yield local
    finally:
        server.stop()
        if previous is None:
            os.environ.pop(URL_ENV, None)
        else:
            os.environ[URL_ENV] = previous


def _create(local: LocalTable, items: list[dict[str, Any]]) -> None:
    local.client.create_table(
        TableName=local.table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    _put(local, items)


def _put(local: LocalTable, items: list[dict[str, Any]]) -> None:
    for first in range(0, len(items), BATCH):
        requests = [{"PutRequest": {"Item": item}} for item in items[first : first + BATCH]]
        left = {local.table: requests}
        while left:  # a local server may leave some unprocessed, as DynamoDB does
            left = local.client.batch_write_item(RequestItems=left).get("UnprocessedItems") or {}


def first_scan(console: Console, project: Project, local: LocalTable | None, at: datetime) -> None:
    """Scan the table once at `at` (in a run of its own), then change some of its users; the
    demo's run scans it again."""
    if local is None:
        return
    alone = project.model_copy(update={"exports": Exports()})  # no marts to export yet
    started = time.perf_counter()
    with Pipeline(alone, now=at) as pipeline, console.status("scanning the users table"):
        summary = pipeline.run([SOURCE], marts=False)
    seconds = time.perf_counter() - started
    _put(local, changed_items())
    if not summary.windows:
        console.print("accounts: both scans were loaded by an earlier demo")
        return
    console.print(
        f"accounts: the users table scanned at {at:%Y-%m-%d %H:%M} in {seconds:.1f}s; then "
        f"{len(MOVED)} users moved to another city and {len(UPGRADED)} changed plan"
    )


def accounts_history(warehouse: Warehouse, since: datetime) -> list[tuple[Any, ...]]:
    """Every change the scans after `since` found: user, attribute, before, after, when."""
    return warehouse.query(
        "SELECT user_id, attribute, before, after, changed_at FROM ("
        "SELECT a.user_id, h.attribute, h.value AS after, h.changed_at, "
        "lag(h.value) OVER (PARTITION BY h.id, h.attribute ORDER BY h.changed_at) AS before "
        'FROM anchor."Account_history" AS h JOIN anchor."Account" AS a ON a.id = h.id) AS c '
        "WHERE changed_at > ? ORDER BY user_id, attribute",
        [since],
    )


def accounts_line(warehouse: Warehouse, project: Project, changes: int) -> str | None:
    config = accounts_config(project)
    if config is None:
        return None
    raw = f"raw.{SOURCE}_{config.stream}"
    scans = warehouse.scalar(f"SELECT count(DISTINCT load_id) FROM {raw}")
    records = warehouse.scalar(f"SELECT count(*) FROM {raw}")
    return (
        f"accounts (DynamoDB scans → raw → staging → anchor.Account): {scans} scans, {raw} "
        f"{records:,} records, {changes} changes between the scans (anchor.Account_history)"
    )
