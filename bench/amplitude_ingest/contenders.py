"""One contender per invocation: `python -m bench.amplitude_ingest.contenders NAME ARGS_JSON`.

Prints one JSON line: events, seconds. The parent measures peak memory with wait4.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

# The columns the reference article maps, and that the demo project types into staging.
COLUMNS = [
    "uuid",
    "$insert_id",
    "event_type",
    "event_time",
    "server_upload_time",
    "user_id",
    "device_id",
    "amplitude_id",
    "session_id",
    "platform",
    "os_name",
    "device_model",
    "country",
    "city",
    "ip_address",
    "version_name",
    "paying",
    "event_properties",
    "user_properties",
]


def lines_of(files: list[str], limit: int | None) -> Iterator[bytes]:
    count = 0
    for path in files:
        with gzip.open(path, "rb") as stream:
            for line in stream:
                if limit is not None and count >= limit:
                    return
                count += 1
                yield line


def anchorflow(args: dict[str, Any]) -> dict[str, Any]:
    from anchorflow.config import load_project
    from anchorflow.run import Pipeline

    os.environ.update(
        AMPLITUDE_BASE_URL=args["base_url"], AMPLITUDE_API_KEY="bench", AMPLITUDE_SECRET_KEY="bench"
    )
    project = load_project(args["project"])
    start = datetime.strptime(args["start"], "%Y%m%dT%H")
    now = start + timedelta(hours=args["hours"] + 2)
    started = time.perf_counter()
    with Pipeline(project, now=now) as pipeline:
        summary = pipeline.run(marts=False)
        staged = pipeline.warehouse.scalar("SELECT count(*) FROM staging.events")
    seconds = time.perf_counter() - started  # includes the checkpoint at close
    return {"events": summary.rows, "staged": staged, "seconds": seconds}


def anchorflow_raw_free(args: dict[str, Any]) -> dict[str, Any]:
    """An upper bound, not a product: anchorflow as if keeping raw cost nothing. Nothing is
    inserted into raw and no line is checked (every record counts as landed), and every hour is
    typed in flight (the project's `max_part_bytes` is set above any hour). The rest (download,
    typing, staging with dedup, field statistics, a commit per hour) runs as usual."""
    import anchorflow.run.window as window
    from anchorflow.land import Landed

    def land_nothing(wh: Any, batch: Any, load_id: int, view: str, suppressed: int = 0) -> Landed:
        return Landed(batch.rows - suppressed, 0)

    window.land_batch = land_nothing
    return anchorflow(args)


def _duckdb_timed(db: str, statements: list[tuple[str, list[Any]]]) -> dict[str, Any]:
    """Run `statements` in a fresh DuckDB database, timed with the close; count `events`."""
    import duckdb

    con = duckdb.connect(db)
    started = time.perf_counter()
    for sql, params in statements:
        con.execute(sql, params)
    con.close()
    seconds = time.perf_counter() - started
    events = duckdb.connect(db, read_only=True).execute("SELECT count(*) FROM events")
    return {"events": events.fetchone()[0], "seconds": seconds}  # type: ignore[index]


def duckdb_read_json(args: dict[str, Any]) -> dict[str, Any]:
    return _duckdb_timed(
        args["db"],
        [
            (
                "CREATE TABLE events AS SELECT * FROM read_json(?, format = 'newline_delimited')",
                [args["files"]],
            )
        ],
    )


# The staging model's types of the mapped columns, for DuckDB's reader by hand.
MAPPED_TYPES = {"uuid": "UUID", "event_time": "TIMESTAMP", "server_upload_time": "TIMESTAMP",
                "amplitude_id": "BIGINT", "session_id": "BIGINT", "paying": "BOOLEAN",
                "event_properties": "JSON", "user_properties": "JSON"}  # fmt: skip


def duckdb_read_json_mapped(args: dict[str, Any]) -> dict[str, Any]:
    """A floor, by hand: `read_json` with the 19 mapped columns and their types given (nothing
    inferred), into one table in one statement; with `raw`, each line's text and its file too,
    read again as lines (`read_csv` of one column) into a zstd column. No line numbers, no
    dedupe, no statistics, no per-value type errors (a value that does not fit fails the read),
    no HTTP, one transaction: what the guarantees are measured against."""
    columns = {c: MAPPED_TYPES.get(c, "VARCHAR") for c in COLUMNS}
    statements: list[tuple[str, list[Any]]] = [
        (
            "CREATE TABLE events AS SELECT * FROM read_json(?, format = 'newline_delimited', "
            "columns = ?)",
            [args["files"], columns],
        )
    ]
    if args.get("raw"):
        statements += [
            ("CREATE TABLE raw (origin VARCHAR, record VARCHAR USING COMPRESSION zstd)", []),
            # chr(30) (record separator) cannot occur unescaped in JSON text: a line per row.
            (
                "INSERT INTO raw SELECT filename, record FROM read_csv(?, columns = {'record': "
                "'VARCHAR'}, delim = chr(30), quote = '', escape = '', header = false, "
                "auto_detect = false, filename = true, max_line_size = 100000000)",
                [args["files"]],
            ),
        ]
    return _duckdb_timed(args["db"], statements)


def dlt_run(
    args: dict[str, Any],
    resource: Callable[[], Iterator[Any]],
    fmt: str | None,
    columns: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`resource` into the table `events` of dlt's postgres destination (args["dsn"]) or its
    duckdb one (args["db"]); with the file format dlt loaded the events with."""
    import dlt

    destination = (
        dlt.destinations.postgres(args["dsn"])
        if args.get("dsn")
        else dlt.destinations.duckdb(args["db"])
    )
    pipeline = dlt.pipeline(
        pipeline_name=args["name"],
        destination=destination,
        dataset_name="raw",
        pipelines_dir=args["work"],
    )
    started = time.perf_counter()
    kwargs = {"loader_file_format": fmt} if fmt else {}
    info = pipeline.run(dlt.resource(resource, name="events", columns=columns), **kwargs)
    seconds = time.perf_counter() - started
    with pipeline.sql_client() as client:
        events = client.execute_sql("SELECT count(*) FROM events")[0][0]
    formats = {
        job.job_file_info.file_format
        for package in info.load_packages
        for job in package.jobs["completed_jobs"]
        if job.job_file_info.table_name == "events"
    }
    return {"events": events, "seconds": seconds, "file_format": ",".join(sorted(formats))}


def dlt_dicts(args: dict[str, Any]) -> dict[str, Any]:
    def events() -> Iterator[dict[str, Any]]:
        for line in lines_of(args["files"], args.get("limit")):
            yield json.loads(line)

    return dlt_run(args, events, args.get("format"))


def _arrow_schema() -> Any:
    """What a dlt user writes for pyarrow: each file infers its own nested structs (field order
    differs per file), so the Arrow path needs an explicit schema of the mapped columns."""
    import pyarrow as pa

    text, number = pa.string(), pa.int64()
    event_properties = pa.struct(
        [("amount", pa.float64()), ("currency", text), ("items", pa.list_(number)),
         ("method", text), ("stake", pa.float64()), ("odds", pa.float64()), ("market", text),
         ("query", text), ("results", number), ("path", text), ("referrer", text),
         ("screen", text), ("source", text), ("experiment_arm", text)]
    )  # fmt: skip
    user_properties = pa.struct(
        [(k, text) for k in ("cohort", "utm_source", "utm_campaign", "utm_medium",
                             "initial_referrer", "plan", "language", "favourite_sport",
                             "first_seen")] + [("notifications", pa.bool_())]
    )  # fmt: skip
    types = {"amplitude_id": number, "session_id": number, "paying": pa.bool_(),
             "event_properties": event_properties, "user_properties": user_properties}  # fmt: skip
    return pa.schema([(c, types.get(c, text)) for c in COLUMNS])


def arrow_tables(files: list[str]) -> Iterator[Any]:
    """One Arrow table per file, with the explicit schema."""
    import pyarrow.json as pj

    options = pj.ParseOptions(explicit_schema=_arrow_schema(), unexpected_field_behavior="ignore")
    for path in files:
        with gzip.open(path, "rb") as stream:
            yield pj.read_json(io.BytesIO(stream.read()), parse_options=options)


def dlt_arrow(args: dict[str, Any]) -> dict[str, Any]:
    return dlt_run(args, lambda: arrow_tables(args["files"]), args.get("format"))


def arrow_tables_with_raw(files: list[str]) -> Iterator[Any]:
    """One Arrow table per file, with the explicit schema and each event's text as it arrived
    (`raw`, the line without its newline): what a dlt user would write to keep raw."""
    import pyarrow as pa
    import pyarrow.json as pj

    options = pj.ParseOptions(explicit_schema=_arrow_schema(), unexpected_field_behavior="ignore")
    for path in files:
        with gzip.open(path, "rb") as stream:
            data = stream.read()
        typed = pj.read_json(io.BytesIO(data), parse_options=options)
        lines = data.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        yield typed.append_column("raw", pa.array(lines, pa.large_binary()).cast(pa.large_string()))


def dlt_arrow_raw(args: dict[str, Any]) -> dict[str, Any]:
    return dlt_run(args, lambda: arrow_tables_with_raw(args["files"]), args.get("format"))


def pandas(args: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"duckdb:///{args['db']}")
    started = time.perf_counter()
    frame = pd.DataFrame()
    limit = args.get("limit")
    for path in args["files"]:
        chunk = pd.read_json(path, lines=True, compression="gzip", nrows=limit)
        frame = pd.concat([frame, chunk[COLUMNS]], ignore_index=True)
        if limit is not None and len(frame) >= limit:
            frame = frame.head(limit)
            break
    for column in ("event_properties", "user_properties"):  # dicts do not fit a SQL column
        frame[column] = frame[column].map(json.dumps)
    frame.to_sql("events", engine, if_exists="append", index=False)
    seconds = time.perf_counter() - started
    return {"events": len(frame), "seconds": seconds}


CONTENDERS = {
    "anchorflow": anchorflow,
    "anchorflow_512mb": anchorflow,
    "anchorflow_raw_free": anchorflow_raw_free,
    "duckdb_read_json": duckdb_read_json,
    "duckdb_read_json_mapped": duckdb_read_json_mapped,
    "duckdb_read_json_mapped_raw": duckdb_read_json_mapped,
    "dlt_dicts": dlt_dicts,
    "dlt_parquet": dlt_dicts,
    "dlt_arrow": dlt_arrow,
    "dlt_arrow_raw": dlt_arrow_raw,
    "pandas": pandas,
}

if __name__ == "__main__":
    name, raw_args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(CONTENDERS[name](raw_args)))
