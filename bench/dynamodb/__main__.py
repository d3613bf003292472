"""DynamoDB scan → raw against the reference article's method: `python -m bench.dynamodb`.

Two measurements, written to bench/results/dynamodb.json:

- **end to end** (`--items`, default 10,000): a table in moto's server on loopback, scanned into
  raw by an anchorflow project with 1 and with 4 segments, against the article's method
  (boto3's `scan` in a loop over `LastEvaluatedKey`, each item through boto3's
  `TypeDeserializer`, a pandas DataFrame, `to_csv`, then the CSV loaded into DuckDB). moto's
  Scan re-reads the table from its start for every page, so its cost grows with the square of
  the table and it, not either client, is the bottleneck: 200,000 items would take hours.
- **conversion alone** (`--convert-items`, default 200,000): the pages of AttributeValue JSON
  that moto sent for that table, repeated up to the count, turned into raw records by
  anchorflow's `PageReader` (one Arrow table per page) against `json.loads` +
  `TypeDeserializer` + pandas (+ `to_csv`), the article's per-item conversion.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from tests.builders import build_project
from tests.sources.dynamodb.server import ACCESS_KEY, REGION, SECRET, MotoDynamo

from anchorflow.run import Pipeline
from anchorflow.sources.dynamodb.client import ScanClient
from anchorflow.sources.dynamodb.config import DynamoDBConfig, PiiPolicy
from anchorflow.sources.dynamodb.items import PageReader
from bench.machine import machine

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "dynamodb.json"
TABLE = "bench_users"


def item(i: int) -> dict[str, Any]:
    """A user as a product team keeps one: strings, numbers, a flag, a set, a nested map."""
    return {
        "id": {"S": f"user-{i:07d}"}, "email": {"S": f"user{i}@example.com"},
        "name": {"S": f"User number {i}"}, "balance": {"N": f"{i * 7 % 100000}.{i % 100:02d}"},
        "visits": {"N": str(i % 977)}, "active": {"BOOL": i % 3 != 0},
        "plan": {"S": ("free", "pro", "team")[i % 3]}, "tags": {"SS": ["beta", f"t{i % 7}"]},
        "profile": {"M": {"city": {"S": ("Lyon", "Oslo", "Kyoto")[i % 3]},
                          "zip": {"N": str(10000 + i % 89999)},
                          "langs": {"L": [{"S": "en"}, {"S": "fr"}]}}},
        "created_at": {"S": f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"},
    }  # fmt: skip


def timed(run: Callable[[], int]) -> dict[str, float]:
    started = time.perf_counter()
    count = run()
    seconds = time.perf_counter() - started
    return {"items": count, "seconds": round(seconds, 2), "items_per_s": round(count / seconds)}


def anchorflow_scan(server: MotoDynamo, work: Path, segments: int) -> int:
    source = {
        "kind": "dynamodb", "table": TABLE, "region": REGION, "endpoint_url": server.url,
        "access_key_id": ACCESS_KEY, "secret_access_key": SECRET, "segments": segments,
        "timeout": "10m", "deadline": "20m",  # moto takes long over a page of a large table
    }  # fmt: skip
    project = build_project(work / f"segments{segments}", sources={"users": source}, staging={})
    with Pipeline(project) as pipeline:
        summary = pipeline.run()
    with duckdb.connect(str(project.warehouse_path), read_only=True) as con:
        (count,) = con.execute("SELECT count(*) FROM raw.users_items").fetchone() or (0,)
    assert count == sum(w.rows for w in summary.windows)
    return int(count)


def reference_scan(server: MotoDynamo, work: Path) -> int:
    """The article's way: scan pages with boto3, each item to a dict, pandas, CSV, load."""
    client = server.client(config=Config(read_timeout=600, retries={"max_attempts": 1}))
    deserializer = TypeDeserializer()
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": TABLE}
    while True:
        page = client.scan(**kwargs)
        rows += [{k: deserializer.deserialize(v) for k, v in it.items()} for it in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    path = work / "reference.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with duckdb.connect(str(work / "reference.duckdb")) as con:
        con.execute("CREATE OR REPLACE TABLE users AS SELECT * FROM read_csv(?)", [str(path)])
        (count,) = con.execute("SELECT count(*) FROM users").fetchone() or (0,)
    return int(count)


def raw_pages(server: MotoDynamo) -> list[bytes]:
    """The Scan answers for the whole table, as they came over the wire."""
    config = DynamoDBConfig(
        kind="dynamodb", table=TABLE, region=REGION, endpoint_url=server.url,
        access_key_id=ACCESS_KEY, secret_access_key=SECRET,
        timeout=timedelta(minutes=10), deadline=timedelta(minutes=20),
    )  # fmt: skip
    client, stop, pages = ScanClient("bench", config), threading.Event(), []
    start_key = None
    while True:
        body = client.scan_page(client.request(0, start_key), stop)
        pages.append(body)
        start_key = json.loads(body).get("LastEvaluatedKey")
        if start_key is None:
            client.close()
            return pages


def convert_anchorflow(pages: list[bytes]) -> int:
    reader = PageReader(PiiPolicy())
    tables = [reader.read(f"page={n}", body).records for n, body in enumerate(pages)]
    return int(pa.concat_tables(tables).num_rows)


def convert_reference(pages: list[bytes], work: Path | None) -> int:
    deserializer, rows = TypeDeserializer(), []
    for body in pages:
        items = json.loads(body)["Items"]
        rows += [{k: deserializer.deserialize(v) for k, v in it.items()} for it in items]
    frame = pd.DataFrame(rows)
    if work is not None:
        frame.to_csv(work / "converted.csv", index=False)
    return len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dynamodb")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--convert-items", type=int, default=200_000)
    options = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "items": options.items}
    with MotoDynamo() as server, tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        started = time.perf_counter()
        server.create_table(TABLE, [item(i) for i in range(options.items)])
        results["put_seconds"] = round(time.perf_counter() - started, 1)
        end_to_end = {
            "anchorflow_1_segment": timed(lambda: anchorflow_scan(server, work, 1)),
            "anchorflow_4_segments": timed(lambda: anchorflow_scan(server, work, 4)),
            "reference_boto3_pandas_csv": timed(lambda: reference_scan(server, work)),
        }
        pages = raw_pages(server)
        repeat = -(-options.convert_items // options.items)
        many = (pages * repeat)[: len(pages) * repeat]
        conversion = {
            "anchorflow_pages_to_raw": timed(lambda: convert_anchorflow(many)),
            "reference_typedeserializer_pandas": timed(lambda: convert_reference(many, None)),
            "reference_typedeserializer_pandas_csv": timed(lambda: convert_reference(many, work)),
        }
    results |= {"end_to_end": end_to_end, "pages": len(pages), "conversion": conversion}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for section in ("end_to_end", "conversion"):
        for name, figures in results[section].items():
            print(f"{section:10} {name:40} {figures['items']:>9,} items "
                  f"{figures['seconds']:>7.2f} s {figures['items_per_s']:>9,} items/s")  # fmt: skip
    print(f"results: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
