"""One contender per invocation: `python -m bench.files_ingest.contenders NAME ARGS_JSON`.

Prints one JSON line: events, seconds and what the parent checks. The parent measures peak
memory with wait4. Only the load is timed; the checks read the database afterwards.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import duckdb

Result = dict[str, Any]


def anchorflow(args: dict[str, Any]) -> Result:
    """`Pipeline(load_project(dir)).run()` on a project with one `files` source, timed with the
    checkpoint at close."""
    from anchorflow.config import load_project
    from anchorflow.run import Pipeline

    project = load_project(args["project"])
    started = time.perf_counter()
    with Pipeline(project) as pipeline:
        summary = pipeline.run()
    seconds = time.perf_counter() - started
    checks = anchorflow_checks(args["db"], args["fingerprint_columns"])
    return {"events": summary.rows, "seconds": seconds, "loads": len(summary.windows), **checks}


def anchorflow_checks(db: str, columns: list[str]) -> Result:
    """What landed in raw and staging, what was set aside, and a fingerprint of the typed
    scalar columns (equal for both formats when they type to the same values)."""
    fingerprint = f"sum(hash({', '.join(columns)}))::VARCHAR"
    queries = {
        "raw": "SELECT count(*) FROM raw.exports_records",
        "raw_files": "SELECT count(DISTINCT origin) FROM raw.exports_records",
        "staged": "SELECT count(*) FROM staging.events",
        "unique_uuids": "SELECT count(DISTINCT event_uuid) FROM staging.events",
        "quarantined": "SELECT count(*) FROM meta.quarantine",
        "type_errors": "SELECT count(*) FROM meta.type_errors",
        "fingerprint": f"SELECT {fingerprint} FROM staging.events",
    }
    con = duckdb.connect(db, read_only=True)
    try:
        return {name: con.execute(sql).fetchone()[0] for name, sql in queries.items()}  # type: ignore[index]
    finally:
        con.close()


def duckdb_table(args: dict[str, Any], reader: str) -> Result:
    """`CREATE TABLE t AS SELECT * FROM <reader>(files)` into a DuckDB file, timed with close."""
    con = duckdb.connect(args["db"])
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}", [args["files"]])
    con.close()
    seconds = time.perf_counter() - started
    check = duckdb.connect(args["db"], read_only=True)
    events = check.execute("SELECT count(*) FROM t").fetchone()[0]  # type: ignore[index]
    check.close()
    return {"events": events, "seconds": seconds}


def duckdb_read_json(args: dict[str, Any]) -> Result:
    return duckdb_table(args, "read_json(?, format = 'newline_delimited')")


def duckdb_read_parquet(args: dict[str, Any]) -> Result:
    return duckdb_table(args, "read_parquet(?)")


CONTENDERS: dict[str, Callable[[dict[str, Any]], Result]] = {
    "anchorflow_ndjson": anchorflow,
    "anchorflow_parquet": anchorflow,
    "duckdb_read_json": duckdb_read_json,
    "duckdb_read_parquet": duckdb_read_parquet,
}

if __name__ == "__main__":
    name, raw_args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(CONTENDERS[name](raw_args)))
