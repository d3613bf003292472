"""One contender per invocation: `python -m bench.engines.contenders NAME ARGS_JSON`.

Prints one JSON line. The ingest and dlt contenders are bench.amplitude_ingest's (the warehouse or
destination comes from the arguments); `anchor` is `anchorflow anchor` on a warehouse that the
ingest left: every typed load into the demo's anchor model, timed from the call to the close.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench.amplitude_ingest import contenders as ingest


def anchor(args: dict[str, Any]) -> dict[str, Any]:
    from anchorflow.config import load_project
    from anchorflow.run import Pipeline

    os.environ.update(AMPLITUDE_API_KEY="bench", AMPLITUDE_SECRET_KEY="bench")
    project = load_project(args["project"])
    started = time.perf_counter()
    with Pipeline(project) as pipeline:
        run = pipeline.anchor()
        counted = time.perf_counter()
        staged = pipeline.warehouse.scalar("SELECT count(*) FROM staging.events")
        idle = time.perf_counter() - counted  # the count is not the anchor step's
    seconds = time.perf_counter() - started - idle  # with the close (DuckDB's checkpoint)
    if run.problems:
        raise RuntimeError("; ".join(run.problems))
    targets = [
        {"table": t.table, "kind": t.kind, "observed": t.observed, "inserted": t.inserted,
         "seconds": t.seconds}
        for t in run.targets
    ]  # fmt: skip
    return {
        "events": staged,
        "observations": run.inserted,  # rows written to the anchor tables
        "observed": sum(t.observed for t in run.targets),  # staging values read
        "seconds": seconds,
        "run_seconds": run.seconds,
        "targets": sorted(targets, key=lambda t: -t["seconds"]),
    }


NESTED = ["event_properties", "user_properties"]


def dlt_arrow_postgres(args: dict[str, Any]) -> dict[str, Any]:
    """bench.amplitude_ingest's dlt_arrow for dlt's postgres destination. dlt loads Arrow tables
    into PostgreSQL as CSV (COPY), which has no nested types: it refuses the two struct columns
    and says to "convert them to json strings". That is done here the vectorized way (DuckDB's
    to_json over each Arrow table, no Python per row), and the columns are hinted `json` (jsonb),
    as dlt's duckdb destination stores them."""
    import duckdb

    con = duckdb.connect()

    def tables() -> Iterator[Any]:
        for table in ingest.arrow_tables(args["files"]):
            con.register("t", table)
            columns = ", ".join(
                f"to_json({c})::VARCHAR AS {c}" if c in NESTED else f'"{c}"'
                for c in table.column_names
            )
            yield con.sql(f"SELECT {columns} FROM t").to_arrow_table()
            con.unregister("t")

    hints = {c: {"data_type": "json"} for c in NESTED}
    return ingest.dlt_run(args, tables, args.get("format"), hints)


CONTENDERS = {
    "anchorflow": ingest.anchorflow,
    "anchor": anchor,
    "dlt_arrow": ingest.dlt_arrow,
    "dlt_arrow_postgres": dlt_arrow_postgres,
}

if __name__ == "__main__":
    name, raw_args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(CONTENDERS[name](raw_args)))
