"""One measurement per invocation, in a fresh process; prints one JSON line.

    python -m bench.anchor.run anchor PROJECT_DIR --parallel N
    python -m bench.anchor.run query PROJECT_DIR --repeat N --as-of ISO

`anchor` opens the project's warehouse, times `load_anchor(wh, plan, parallel=N)` over every
pending load, then the close (DuckDB's checkpoint) apart. Every statement the loader sends is
timed by wrapping the DuckDB adapter's `_run` (nothing in anchorflow is changed) and filed
under the loader's function and the statement's kind, so the step that dominates is named.

`query` builds the wide tables that the anchor model is compared with (from staging, not from
the anchor model, so the comparison also checks the model's contents), then times the query
builder's `run_query` against the same query on the wide table, materialized as Arrow.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from anchorflow import journal
from anchorflow.anchor.ddl import ensure_tables
from anchorflow.anchor.load import load_anchor
from anchorflow.anchor.plan import build_plan
from anchorflow.anchor.query import query_sql, run_query
from anchorflow.anchor.views import create_views
from anchorflow.warehouse import Warehouse, connect
from anchorflow.warehouse.duckdb import DuckDBWarehouse
from bench.anchor.workload import ATTRIBUTES, MODEL, QUERY_PAIRS, open_project

PROFILE: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0])
RSS: dict[str, float] = {}  # the largest resident size seen while a kind of statement ran (MB)
RUNNING: list[str] = [""]  # the kind of statement running now
LOAD_FILE = "anchor/load.py"
SERVING_FILE = "anchor/serving.py"
SERVING_REFRESH = "serving: updates in the tables' transactions"
SERVING_MARKS = "serving: rows of new entities"


def _kind(function: str, sql: str) -> str:
    """A short name for a statement of the loader, the same for every target (the loader is
    edited often: known shapes get a name, any other is its first words, names blanked)."""
    text = " ".join(sql.split())
    if text.startswith("INSERT INTO meta.anchor_dirty"):
        return SERVING_MARKS
    text = re.sub(r'"anchor"\."[^"]+"', "anchor.<t>", text)
    text = re.sub(r"(__[a-z]+)_\d+", r"\1_<n>", text)
    if function == "check_target":
        if "ASOF" in text:
            return "check: observations explained (ASOF join)"
        if "HAVING count(*) > 1" in text:
            return "check: duplicate (key, changed_at)"
        if "first IS NULL" in text or "changed_at <=" in text:
            return "check: scd0 observations explained"
        return "check: orphans"
    if function.startswith("_check_entity"):
        return "check: entity keys"
    if text.startswith("CREATE OR REPLACE TEMP TABLE"):
        name = text.split()[5]
        if '"staging".' in text:
            return f"temp {name}: staging rows, ids resolved"
        if "anchor.<t>" in text:
            return f"temp {name}: joined with the anchor table"
        return f"temp {name}: from temp tables"
    if text.startswith("INSERT INTO anchor.<t>") and function == "load_target":
        if "lag(" in text:
            if '"staging".' in text:  # the late path re-reads staging
                return "insert changes + late re-read of staging"
            return "insert changes"
        return "insert first values (scd0)"
    if text.startswith("INSERT INTO anchor.<t>"):
        return "insert"
    for prefix, name in [
        ("BEGIN", "begin"),
        ("COMMIT", "commit"),
        ("DROP TABLE", "drop temp"),
        ("SELECT min(changed_at)", "earliest changed_at"),
        ("SELECT max(max_changed_at)", "high water"),
        ("SELECT load_id FROM meta.", "pending loads (meta)"),
        ('SELECT count(*) FROM "staging"', "count staged rows"),
        ("SELECT load_id, count(*) FROM anchor.<t>", "inserted per load (anchor table)"),
    ]:
        if text.startswith(prefix):
            return name
    text = re.sub(r"\b\d+\b", "N", text)
    return text[:60]


def instrument() -> None:
    original = DuckDBWarehouse._run

    def _run(self: DuckDBWarehouse, sql: str, params: Any) -> Any:
        frame: FrameType | None = sys._getframe(1)
        function = "?"
        serving_function = ""  # the outermost function of serving.py on the way to load.py
        while frame is not None:
            if frame.f_code.co_filename.endswith(SERVING_FILE):
                serving_function = frame.f_code.co_name
            if frame.f_code.co_filename.endswith(LOAD_FILE):
                function = frame.f_code.co_name
                break
            frame = frame.f_back
        kind = None
        if serving_function:  # a statement of anchor/serving.py, or of what it calls
            kind = SERVING_MARKS if serving_function == "add_entities" else SERVING_REFRESH
        started = time.perf_counter()
        RUNNING[0] = f"{function} | {kind or _kind(function, sql)}"
        try:
            return original(self, sql, params)
        finally:
            RUNNING[0] = ""
            entry = PROFILE[f"{function} | {kind or _kind(function, sql)}"]
            entry[0] += time.perf_counter() - started
            entry[1] += 1

    DuckDBWarehouse._run = _run  # type: ignore[method-assign,unused-ignore]


def sample_rss(stop: threading.Event) -> None:
    """Every 20 ms: the process's resident size, filed under the statement running."""
    page = os.sysconf("SC_PAGE_SIZE") / 2**20
    with open("/proc/self/statm") as statm:
        while not stop.wait(0.02):
            statm.seek(0)
            mb = int(statm.read().split()[1]) * page
            kind = RUNNING[0] or "(between statements)"
            if mb > RSS.get(kind, 0.0):
                RSS[kind] = mb


def anchor(root: Path, parallel: int, verify: str) -> dict[str, Any]:
    project = open_project(root)
    plan = build_plan(project)
    began = time.perf_counter()
    wh = connect(project)
    # What the pipeline does before it loads (untimed): the journal and the anchor tables.
    journal.ensure_journal(wh)
    ensure_tables(wh, plan)
    instrument()
    cpu_before = time.process_time()  # every thread of the process: DuckDB's too
    opened = time.perf_counter()
    pending = wh.query(
        f"SELECT min(load_id), max(load_id), count(*) FROM meta.transfers WHERE model = '{MODEL}' "
        "AND load_id NOT IN (SELECT load_id FROM meta.anchor_transfers WHERE target = 'User')"
    )[0]
    options: dict[str, Any] = {}
    if "verify_history" in inspect.signature(load_anchor).parameters:
        options["verify_history"] = verify == "history"
    elif verify != "history":
        raise SystemExit("this load_anchor has no verify_history")
    if "memory_limit" in inspect.signature(load_anchor).parameters:  # what the step passes
        options["memory_limit"] = project.anchor.memory_limit
    if "group_rows" in inspect.signature(load_anchor).parameters:
        options["group_rows"] = project.anchor.group_rows
    if "group_memory_limit" in inspect.signature(load_anchor).parameters:
        options["group_memory_limit"] = project.anchor.group_memory_limit
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(stop,), daemon=True)
    sampler.start()
    run = load_anchor(wh, plan, parallel=parallel, **options)
    stop.set()
    loaded = time.perf_counter()
    load_cpu = time.process_time() - cpu_before
    stored = {t.table: wh.scalar(f'SELECT count(*) FROM anchor."{t.table}"') for t in run.targets}
    checked = time.perf_counter()
    wh.close()
    closed = time.perf_counter()
    targets = [
        {
            "table": t.table, "kind": t.kind, "loads": t.loads, "observed": t.observed,
            "inserted": t.inserted, "seconds": t.seconds, "problem": t.problem,
            "stored": stored[t.table],
        }
        for t in run.targets
    ]  # fmt: skip
    attributes = [t for t in targets if t["kind"] == "attribute"]
    refresh = getattr(run, "serving_seconds", 0.0)  # inside load_anchor's time
    marks = sum(v[0] for k, v in PROFILE.items() if k.endswith(f"| {SERVING_MARKS}"))
    return {
        "parallel": parallel,
        "verify": verify,
        "loads": [pending[0], pending[1], pending[2]],
        "seconds": loaded - opened,
        "run_seconds": run.seconds,
        "load_cpu_seconds": load_cpu,
        "open_seconds": opened - began,  # with the untimed preparation
        "close_seconds": closed - checked,
        "observed": sum(t["observed"] for t in attributes),
        "inserted": sum(t["inserted"] for t in attributes),
        "inserted_all": run.inserted,
        "serving_refresh_seconds": refresh,
        "serving_marks_seconds": marks,
        "serving_seconds": refresh + marks,
        "serving_share": (refresh + marks) / (loaded - opened),
        "serving_rows": getattr(run, "serving_rows", 0),
        "problems": run.problems,
        "targets": targets,
        "profile": {k: {"seconds": v[0], "count": v[1]} for k, v in PROFILE.items()},
        "rss_mb_by_statement": dict(sorted(RSS.items(), key=lambda kv: -kv[1])[:15]),
    }


# -- query ----------------------------------------------------------------------------------------


def build_wide(wh: Warehouse) -> dict[str, Any]:
    """wide.user_latest (one row per user, 15 columns) and wide.user_scd2 (one row per user and
    version of its scd2 attributes, valid_from/valid_to, all 15 columns: scd1 columns hold the
    latest value in every version, scd0 the first), both from staging.events."""
    latest_exprs, scd2 = [], []
    for name, (_, history, *_rest) in ATTRIBUTES.items():
        aggregate = "arg_min" if history == "scd0" else "arg_max"
        latest_exprs.append(
            f"{aggregate}({name}, event_time) FILTER (WHERE {name} IS NOT NULL) AS {name}"
        )
        if history == "scd2":
            scd2.append(name)
    started = time.perf_counter()
    wh.execute("CREATE SCHEMA IF NOT EXISTS wide")
    wh.execute(
        'CREATE OR REPLACE TABLE wide.user_latest AS SELECT u.id, s.* FROM anchor."User" AS u '
        f"JOIN (SELECT user_id, {', '.join(latest_exprs)} FROM staging.{MODEL} GROUP BY user_id) "
        "AS s USING (user_id)"
    )
    latest_seconds = time.perf_counter() - started
    state = ", ".join(
        f"last_value({c} IGNORE NULLS) OVER (PARTITION BY user_id ORDER BY event_time "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS {c}"
        for c in scd2
    )
    tuple_ = f"struct_pack({', '.join(scd2)})"
    columns = ", ".join(
        f"v.{n}" if n in scd2 else f"l.{n}" for n in ATTRIBUTES
    )  # the declared order
    started = time.perf_counter()
    wh.execute(
        "CREATE OR REPLACE TABLE wide.user_scd2 AS "
        f"WITH state AS (SELECT user_id, event_time, {state} FROM staging.{MODEL}), "
        f"marked AS (SELECT *, {tuple_} IS DISTINCT FROM lag({tuple_}) OVER "
        "(PARTITION BY user_id ORDER BY event_time) AS __new FROM state), "
        "versions AS (SELECT * EXCLUDE (__new), event_time AS valid_from, "
        "coalesce(lead(event_time) OVER (PARTITION BY user_id ORDER BY event_time), "
        "TIMESTAMP '9999-12-31') AS valid_to FROM marked WHERE __new) "
        f"SELECT l.id, v.user_id, v.valid_from, v.valid_to, {columns} "
        "FROM versions AS v JOIN wide.user_latest AS l USING (user_id)"
    )
    return {
        "latest_seconds": latest_seconds,
        "scd2_seconds": time.perf_counter() - started,
        "latest_rows": wh.scalar("SELECT count(*) FROM wide.user_latest"),
        "scd2_rows": wh.scalar("SELECT count(*) FROM wide.user_scd2"),
    }


def _differences(wh: DuckDBWarehouse, left: pa.Table, right: pa.Table) -> tuple[int, int]:
    """Rows only in left, rows only in right."""
    con = wh._con
    con.register("__left", left)
    con.register("__right", right)
    try:
        only_left = con.execute(
            "SELECT count(*) FROM (FROM __left EXCEPT ALL FROM __right)"
        ).fetchall()
        only_right = con.execute(
            "SELECT count(*) FROM (FROM __right EXCEPT ALL FROM __left)"
        ).fetchall()
    finally:
        con.unregister("__left")
        con.unregister("__right")
    return int(only_left[0][0]), int(only_right[0][0])


def query(root: Path, repeat: int, as_of: datetime) -> dict[str, Any]:
    project = open_project(root)
    plan = build_plan(project)
    wh = connect(project)
    assert isinstance(wh, DuckDBWarehouse)
    create_views(wh, plan)  # what the anchor step does before it loads
    built = build_wide(wh)
    results = []
    for pair in QUERY_PAIRS:
        a, b = pair
        wide_latest = f"SELECT id, user_id, {a}, {b} FROM wide.user_latest ORDER BY id"
        wide_as_of = (
            f"SELECT id, user_id, {a}, {b} FROM wide.user_scd2 "
            "WHERE valid_from <= ? AND ? < valid_to ORDER BY id"
        )
        moment = f"TIMESTAMP '{as_of.isoformat(sep=' ')}'"  # our own instant, not user input
        view_latest = f'SELECT id, user_id, {a}, {b} FROM anchor."User_latest" ORDER BY id'
        view_as_of = f'SELECT id, user_id, {a}, {b} FROM anchor."User_as_of"({moment}) ORDER BY id'
        cases: list[tuple[str, str, Callable[[], pa.Table], Callable[[], pa.Table], str]] = [
            ("latest", "query builder", partial(run_query, wh, plan, "User", pair),
             partial(wh.query_arrow, wide_latest), "wide.user_latest"),
            ("latest", "view User_latest", partial(wh.query_arrow, view_latest),
             partial(wh.query_arrow, wide_latest), "wide.user_latest"),
            ("as_of", "query builder", partial(run_query, wh, plan, "User", pair, as_of=as_of),
             partial(wh.query_arrow, wide_as_of, [as_of, as_of]), "wide.user_scd2"),
            ("as_of", "macro User_as_of", partial(wh.query_arrow, view_as_of),
             partial(wh.query_arrow, wide_as_of, [as_of, as_of]), "wide.user_scd2"),
        ]  # fmt: skip
        for kind, via, anchored, wide, table_name in cases:
            anchored()  # one untimed run each: both read from DuckDB's cache afterwards
            wide()
            # interleaved, so a change of the machine's speed hits both alike
            anchor_s: list[float] = []
            wide_s: list[float] = []
            anchor_result = wide_result = None
            for _ in range(repeat):
                started = time.perf_counter()
                anchor_result = anchored()
                anchor_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                wide_result = wide()
                wide_s.append(time.perf_counter() - started)
            assert anchor_result is not None and wide_result is not None
            only_anchor, only_wide = _differences(
                wh, anchor_result.rename_columns(["id", "user_id", a, b]), wide_result
            )
            nulls = pc.sum(
                pc.and_(pc.is_null(anchor_result.column(2)), pc.is_null(anchor_result.column(3)))
            ).as_py()
            results.append(
                {
                    "attributes": pair,
                    "kind": kind,
                    "via": via,
                    "sql": None
                    if via == "query builder"
                    else (view_latest if kind == "latest" else view_as_of),
                    "wide_table": table_name,
                    "anchor_seconds": statistics.median(anchor_s),
                    "wide_seconds": statistics.median(wide_s),
                    "anchor_all": anchor_s,
                    "wide_all": wide_s,
                    "ratio": statistics.median(anchor_s) / statistics.median(wide_s),
                    "anchor_rows": anchor_result.num_rows,
                    "wide_rows": wide_result.num_rows,
                    "only_anchor": only_anchor,
                    "only_wide": only_wide,
                    "anchor_rows_both_null": nulls,
                    "builder_sql": query_sql(
                        plan, "User", pair, as_of=as_of if kind == "as_of" else None
                    )[0]
                    if via == "query builder"
                    else None,
                }
            )
    wh.execute("DROP SCHEMA wide CASCADE")  # the warehouse goes on as a history
    wh.close()
    return {"as_of": as_of.isoformat(), "repeat": repeat, "wide": built, "queries": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["anchor", "query"])
    parser.add_argument("root", type=Path)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--verify", choices=["history", "counts"], default="history")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--as-of", type=datetime.fromisoformat, default=None)
    options = parser.parse_args()
    if options.action == "anchor":
        result = anchor(options.root, options.parallel, options.verify)
    else:
        result = query(options.root, options.repeat, options.as_of)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
