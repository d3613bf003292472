"""The dashboards benchmark: `python -m bench.dashboards [--sizes demo,50m] [--reps 20]`.

For each size, a DuckDB warehouse with the tables the demo's metrics and dashboard read
(`staging.events`, `staging.purchases`, and the marts built by the demo's own models: user_days,
funnel_events and user_first_days), generated set-based inside DuckDB from `range(n)`: events
in sessions of 20 of one user, hashed users (new users join over the period, so weekly cohorts
return), countries, platforms, event types with the demo's weights, times in order over the period.
`demo`: the demo's size (1M events over 3 days, 60,000 users, like `make demo`'s 72 hours);
`50m`: 50M events over 90 days, 300,000 users. Generated once and kept under --work (default
/tmp/anchorflow-bench-dashboards; 50M takes about 2 minutes).

Measured over the demo project (examples/product_analytics, its `metrics:` and
`dashboards/overview.yml`) pointed at each warehouse:
- per tile: `run_tile` --reps times, each with another date range (the default one shifted by
  0..N days) and another country (none, or each of the choices in turn), p50/p95 seconds;
- per page: `GET /dashboards/overview?from=..&to=..&country=..` rendered by the Starlette app
  in-process (httpx's ASGITransport), the same variations, p50/p95.
Writes bench/results/dashboards.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import yaml

from anchorflow.config import Project, load_project
from anchorflow.dashboards import find, run_tile
from anchorflow.dashboards.tiles import (
    Selection,
    default_selection,
    metric_dimensions,
    segment_choices,
)
from anchorflow.warehouse import Warehouse, connect
from bench.machine import machine

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "product_analytics"
RESULTS = ROOT / "bench" / "results" / "dashboards.json"
START = date(2024, 1, 1)
SIZES = {  # events, days, users
    "demo": (1_000_000, 3, 60_000),
    "50m": (50_000_000, 90, 300_000),
}
SESSION = 20  # events in a row of one user
TYPES = [  # the demo's Amplitude event types and weights (percent)
    ("session_start", 8), ("page_view", 30), ("screen_view", 20), ("search", 8),
    ("add_to_cart", 6), ("checkout_started", 3), ("purchase", 2), ("sign_up", 1), ("login", 5),
    ("bet_placed", 9), ("deposit", 2), ("session_end", 6),
]  # fmt: skip
COUNTRIES = ["Russia", "Germany", "United States", "Brazil", "India", "Kazakhstan"]
PLATFORMS = ["Web", "iOS", "Android"]
MARTS = ["user_days", "funnel_events", "user_first_days"]  # the demo's models the dashboard reads


def _pick(values: list[str], hashed: str) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"([{listed}])[(({hashed}) % {len(values)})::BIGINT + 1]"


def generate(path: Path, events: int, days: int, users: int) -> float:
    """The warehouse file at `path`, made set-based by DuckDB; seconds it took."""
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial))
    con.execute("SET enable_progress_bar = false")
    cases, total = [], 0
    for name, weight in TYPES:
        total += weight
        cases.append(f"WHEN r < {total} THEN '{name}'")
    period = days * 86_400
    # Event i happens at i/n of the period (times in order, as loads append them). Events come
    # in sessions of SESSION consecutive events of one user; a session's user is one of those
    # who have joined by then, newer ones more likely (sqrt), so weekly cohorts return.
    con.execute(f"""
        CREATE SCHEMA staging;
        CREATE SCHEMA marts;
        CREATE TABLE staging.events AS
        WITH base AS (
            SELECT i, i / {events}::DOUBLE AS frac, hash(i, 'r') % 100 AS r,
                   hash(i // {SESSION}, 'u') % 1000000 / 1000000.0 AS ru
            FROM range({events}) t(i)
        ), who AS (
            SELECT *, floor(greatest(1000, {users} * frac) * sqrt(ru))::BIGINT AS u FROM base
        )
        SELECT
            TIMESTAMP '{START}' + to_microseconds((frac * {period} * 1e6)::BIGINT) AS event_time,
            CASE {" ".join(cases)} END AS event_type,
            CASE WHEN hash(u, 's') % 10 < 3 THEN NULL ELSE 'u' || u END AS user_id,
            'd' || u AS device_id,
            {_pick(PLATFORMS, "hash(u, 'p')")} AS platform,
            {_pick(COUNTRIES, "hash(u, 'c')")} AS country,
            {_pick(["free", "plus", "pro"], "hash(u, 'plan')")} AS plan,
            {_pick(["spring_promo", "brand", "organic"], "hash(u, 'cmp')")} AS utm_campaign,
            round((hash(i, 'a') % 20000) / 100.0, 2) AS amount
        FROM who;
        CREATE TABLE staging.purchases AS
        SELECT event_time, user_id, amount, 'EUR' AS currency, country
        FROM staging.events WHERE event_type = 'purchase' AND user_id IS NOT NULL;
    """)
    build_marts(con)
    con.close()
    partial.rename(path)
    return time.perf_counter() - started


def build_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The marts of MARTS the warehouse lacks, each from the demo's models/<name>.sql (so a
    warehouse generated before a mart was added gets it without generating the events again)."""
    have = {row[0] for row in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
    ).fetchall()}  # fmt: skip
    made = [name for name in MARTS if name not in have]
    for name in made:
        sql = (DEMO / "models" / f"{name}.sql").read_text()
        con.execute(f"CREATE TABLE marts.{name} AS {sql}")
    con.execute("CHECKPOINT")
    return made


def bench_project(work: Path, warehouse: Path) -> Project:
    """The demo project (its metrics and dashboard) over the generated warehouse."""
    root = work / "project"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns("*.duckdb*", ".data", ".anchorflow"))
    data = yaml.safe_load((root / "anchorflow.yml").read_text())
    data["warehouse"] = {"path": str(warehouse)}
    (root / "anchorflow.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return load_project(root, defer_source_env=True)


def variations(warehouse: Warehouse, project: Project, reps: int, days: int) -> list[Selection]:
    """`reps` selections: the default range shifted back 0..days-1 days, a country in turn."""
    board = find(project, "overview")
    default = default_selection(warehouse, board)
    countries = [None, *segment_choices(warehouse, project, board).get("country", [])]
    shifts = max(1, days)
    found = []
    for k in range(reps):
        back = timedelta(days=(k * 7) % shifts)
        country = countries[k % len(countries)]
        found.append(Selection(default.start - back, default.end - back,
                               {"country": country} if country else {}))  # fmt: skip
    return found


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 1), "p95_ms": round(p95 * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1), "n": len(ordered)}  # fmt: skip


def bench_tiles(project: Project, selections: list[Selection]) -> list[dict[str, Any]]:
    board = find(project, "overview")
    results = []
    with connect(project, read_only=True) as warehouse:
        warehouse.execute("SET enable_progress_bar = false")
        dimensions = metric_dimensions(project)
        for index in range(len(board.tiles)):
            timings = []
            for selection in selections:
                result = run_tile(warehouse, project, board, index, selection, dimensions)
                if result.error:
                    raise SystemExit(f"tile {index}: {result.error}")
                timings.append(result.seconds)
            results.append({"tile": index, "kind": board.tiles[index].kind,
                            "title": board.tile_title(index), **percentiles(timings)})  # fmt: skip
    return results


def bench_page(project: Project, selections: list[Selection]) -> dict[str, Any]:
    from anchorflow.serve.app import create_app
    from anchorflow.serve.web import WebContext

    async def run() -> list[float]:
        with connect(project, read_only=True) as warehouse:
            web = WebContext(project, warehouse, readers=1)
            app = create_app(project, web=web)
            transport = httpx.ASGITransport(app=app)
            timings = []
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for selection in selections:
                    params = {"from": selection.start.isoformat(),
                              "to": (selection.end - timedelta(days=1)).isoformat(),
                              **selection.segments}  # fmt: skip
                    started = time.perf_counter()
                    answer = await client.get("/dashboards/overview", params=params)
                    timings.append(time.perf_counter() - started)
                    if answer.status_code != 200 or "tile-error" in answer.text:
                        raise SystemExit(f"page: {answer.status_code} {answer.text[:500]}")
            web.close()
            return timings

    return percentiles(asyncio.run(run()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="demo,50m")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--work", type=Path, default=Path("/tmp/anchorflow-bench-dashboards"))
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": machine(), "reps": args.reps, "sizes": {}}
    for size in args.sizes.split(","):
        events, days, users = SIZES[size]
        path = args.work / f"{size}.duckdb"
        generated = None if path.exists() else generate(path, events, days, users)
        if generated is None:
            with duckdb.connect(str(path)) as con:
                made = build_marts(con)
            if made:
                print(f"{size}: built {', '.join(made)} into {path}")
        project = bench_project(args.work / size, path)
        with connect(project, read_only=True) as warehouse:
            selections = variations(warehouse, project, args.reps, days)
        load_before = os.getloadavg()
        tiles = bench_tiles(project, selections)
        page = bench_page(project, selections)
        load_after = os.getloadavg()
        report["sizes"][size] = {
            "events": events, "days": days, "users": users,
            "generate_seconds": round(generated, 1) if generated else None,
            "file_mb": round(path.stat().st_size / 2**20),
            "tiles": tiles, "page": page,
            "loadavg_before": load_before, "loadavg_after": load_after,
        }  # fmt: skip
        print(f"\n{size}: {events:,} events, {days} days, {users:,} users"
              + (f", generated in {generated:.0f} s" if generated else ""))  # fmt: skip
        for tile in tiles:
            print(f"  tile {tile['tile']} {tile['kind']:<9} {tile['title'][:40]:<40} "
                  f"p50 {tile['p50_ms']:>7.1f} ms  p95 {tile['p95_ms']:>7.1f} ms")  # fmt: skip
        label = "page /dashboards/overview"
        print(f"  {label:<57} p50 {page['p50_ms']:>7.1f} ms  p95 {page['p95_ms']:>7.1f} ms")
        print(f"  load average before {load_before}, after {load_after}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.setdefault("sizes", {}).update(report["sizes"])
    RESULTS.write_text(json.dumps({**previous, "machine": report["machine"], "reps": args.reps},
                                  indent=2, default=str) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
