"""Run the engines benchmark: `python -m bench.engines [--events N]` (default 1,000,000).

One run, the same Amplitude export files (N events over 20 hours, generated once and cached in
bench/data; 1M is bench.amplitude_ingest's data), served by the emulator in this process, and a
throwaway PostgreSQL cluster (`LocalPostgres`) started here. Every contender is a child process
(bench.engines.contenders); one that fails is reported with its error, and the run goes on.

1. anchorflow ingest (HTTP → raw + typed staging, bench.amplitude_ingest's project: the demo's
   source and `events` model) into DuckDB and into PostgreSQL (a database of its own).
2. The anchor step (`anchorflow anchor`, the demo's anchor model) on each warehouse the ingest
   left: observations are the rows written to the anchor tables.
3. dlt, one Arrow table per file (bench.amplitude_ingest's explicit schema), into dlt's
   `postgres` destination (it loads Arrow as CSV through COPY; the two nested columns go as JSON
   text, see contenders.dlt_arrow_postgres) and into its `duckdb` one for reference.

Prints a table (events/s, observations/s, PostgreSQL / DuckDB, anchorflow-PG / dlt-PG) and writes
bench/results/engines.json. For PostgreSQL, "server cpu s" is the server's CPU time during the
contender (its backends parse, write heap pages, indexes and WAL); "MB" is the database's size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, write_export_files
from anchorflow.dev.postgres import LocalPostgres, PostgresMissing
from anchorflow.dev.synth.amplitude import SynthSpec
from bench.amplitude_ingest.__main__ import DATA, START, anchorflow_project, manifest, run_child
from bench.anchor.__main__ import cpu_ticks
from bench.engines.report import ratios, show
from bench.engines.server import ServerCPU, database_mb
from bench.machine import machine

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "engines.json"
MODULE = "bench.engines.contenders"
HOURS = 20  # the events of a run spread over 20 hours, as bench.amplitude_ingest's 1M
SEED = 42
TICKS = os.sysconf("SC_CLK_TCK")
ENGINES = ["duckdb", "postgres"]


@dataclass
class Contender:
    name: str
    child: str  # the function in bench.engines.contenders
    engine: str  # duckdb or postgres
    step: str  # ingest or anchor
    args: dict[str, Any] = field(default_factory=dict)
    needs: str | None = None  # a contender that must have succeeded first
    size: Callable[[], float] | None = None  # the warehouse's size in MB afterwards


def export_files(events: int) -> tuple[Path, list[Path], dict[str, dict[str, int]]]:
    """`events` events (about: a daily curve) in hourly export files, written once."""
    per_hour = max(1, events // HOURS)
    spec = SynthSpec(seed=SEED, events_per_hour=per_hour)
    directory = DATA if per_hour == 50_000 else DATA.parent / f"amplitude_{per_hour}"
    files = write_export_files(spec, START, START + timedelta(hours=HOURS), directory, workers=2)
    return directory, files, manifest(files, directory)


def projects(work: Path, warehouse: dict[str, Any]) -> tuple[Path, Path]:
    """bench.amplitude_ingest's project on this warehouse, twice: without the anchor model (the
    ingest: raw + staging) and with the demo's (the anchor step, on the same warehouse)."""
    work.mkdir(parents=True, exist_ok=True)
    anchorflow_project(work, None, anchor=True)
    data = yaml.safe_load((work / "anchorflow.yml").read_text())
    data["warehouse"] = warehouse
    anchored = work / "anchored"
    anchored.mkdir()
    (anchored / "anchorflow.yml").write_text(yaml.safe_dump(data))
    data.pop("anchor")
    (work / "anchorflow.yml").write_text(yaml.safe_dump(data))
    return work, anchored


class Cluster:
    """The throwaway PostgreSQL cluster, or why it could not start (its contenders fail then)."""

    def __init__(self, directory: Path) -> None:
        self.pg: LocalPostgres | None = None
        self.error: str | None = None
        self.server: ServerCPU | None = None
        try:
            self.pg = LocalPostgres(directory).start()
            self.server = ServerCPU(self.pg)
        except (PostgresMissing, RuntimeError, OSError) as error:
            self.error = f"PostgreSQL did not start: {error}"

    def database(self, name: str) -> str:
        """A fresh database's DSN; '' without a cluster."""
        return self.pg.create_database(name) if self.pg else ""

    def server_seconds(self) -> float:
        return self.server.seconds() if self.server else 0.0

    def settings(self) -> dict[str, Any]:
        if not self.pg:
            return {"error": self.error}
        return database_settings(self.pg.dsn())

    def stop(self) -> None:
        if self.pg:
            self.pg.stop()


def warehouse_of(
    engine: str, work: Path, cluster: Cluster, name: str
) -> tuple[dict[str, Any], Callable[[], float]]:
    """The project's warehouse setting on this engine, and how to tell its size in MB."""
    if engine == "duckdb":
        path = work / "anchorflow.duckdb"
        return {"path": str(path)}, lambda: path.stat().st_size / 2**20
    dsn = cluster.database(name)
    return {"engine": "postgres", "dsn": dsn}, lambda: database_mb(dsn)


def contenders(work: Path, cluster: Cluster, base_url: str, files: list[Path]) -> list[Contender]:
    found: list[Contender] = []
    ingest = {"base_url": base_url, "start": START.strftime("%Y%m%dT%H"), "hours": HOURS}
    for engine in ENGINES:
        name = f"anchorflow_{engine}"
        warehouse, size = warehouse_of(engine, work / name, cluster, name)
        plain, anchored = projects(work / name, warehouse)
        found += [
            Contender(name, "anchorflow", engine, "ingest", ingest | {"project": str(plain)},
                      size=size),
            Contender(f"anchor_{engine}", "anchor", engine, "anchor",
                      {"project": str(anchored)}, needs=name, size=size),
        ]  # fmt: skip
    for engine in ENGINES:
        name = f"dlt_arrow_{engine}"
        (work / name).mkdir(parents=True)
        args: dict[str, Any] = {"files": [str(f) for f in files], "name": f"bench_{name}",
                                "work": str(work / name)}  # fmt: skip
        warehouse, size = warehouse_of(engine, work / name, cluster, name)
        if engine == "postgres":
            # dlt insists on a password; the throwaway cluster trusts any (initdb -A trust)
            args["dsn"] = warehouse["dsn"].replace("postgres@", "postgres:bench@", 1)
        else:
            args["db"] = warehouse["path"]
        child = "dlt_arrow_postgres" if engine == "postgres" else "dlt_arrow"
        found.append(Contender(name, child, engine, "ingest", args, size=size))
    return found


EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\w*: ")


def one_line(error: str) -> str:
    """The error's exception line (the last line that names one, else the last line) with its
    exit code, for the table and the JSON."""
    code, _, text = error.partition(": ")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line for line in lines if EXCEPTION.match(line)]
    return f"{code}: {(named or lines or [''])[-1]}"[:400]


def measure(
    contender: Contender, cluster: Cluster, done: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    row: dict[str, Any] = {"contender": contender.name, "engine": contender.engine,
                           "step": contender.step}  # fmt: skip
    if contender.engine == "postgres" and cluster.error:
        return row | {"error": cluster.error}
    if contender.needs and "error" in done.get(contender.needs, {"error": ""}):
        return row | {"error": f"not run: {contender.needs} failed"}
    print(f"{contender.name} ...", flush=True)
    server_before, (_, busy_before) = cluster.server_seconds(), cpu_ticks()
    started = time.perf_counter()
    result = run_child(contender.child, contender.args, MODULE)
    wall = time.perf_counter() - started
    server_after, (_, busy_after) = cluster.server_seconds(), cpu_ticks()
    row |= result | {"wall_seconds": wall}
    if "error" in row:
        row["error_detail"] = row["error"]  # the tail of its stderr
        row["error"] = one_line(row["error"])
        print(f"  failed: {row['error']}", flush=True)
        return row
    if contender.engine == "postgres":
        row["server_cpu_seconds"] = server_after - server_before
    row["machine_cpu_seconds"] = (busy_after - busy_before) / TICKS
    if contender.size:
        row["stored_mb"] = contender.size()
    seconds = row["seconds"]
    row["events_per_s"] = row["events"] / seconds if seconds else 0.0
    if "observations" in row:
        row["observations_per_s"] = row["observations"] / seconds if seconds else 0.0
    return row


def run(events: int, work: Path) -> dict[str, Any]:
    directory, files, sizes = export_files(events)
    total = sum(sizes[f.name]["lines"] for f in files)
    total_bytes = sum(sizes[f.name]["bytes"] for f in files)
    print(f"{total:,} events in {len(files)} files ({total_bytes / 1e6:,.0f} MB of JSON)")
    store = ExportStore.from_directory(directory, START, START + timedelta(hours=HOURS))
    rows: list[dict[str, Any]] = []
    done: dict[str, dict[str, Any]] = {}
    cluster = Cluster(work / "pg")
    try:
        settings = cluster.settings()
        with AmplitudeEmulator(store, "bench", "bench") as emulator:
            for contender in contenders(work, cluster, emulator.base_url, files):
                row = measure(contender, cluster, done)
                if contender.step == "ingest" and "events_per_s" in row:
                    row["mb_per_s"] = row["events_per_s"] * total_bytes / total / 1e6
                done[contender.name] = row
                rows.append(row)
    finally:
        cluster.stop()
    ratios(rows)
    return {
        "machine": machine(),
        "postgres": settings,
        "date": datetime.now().isoformat(timespec="seconds"),
        "events": total,
        "json_mb": total_bytes / 1e6,
        "files": len(files),
        "rows": rows,
    }


# The settings a PostgreSQL figure depends on (LocalPostgres turns durability off: a throwaway).
SETTINGS = ["server_version", "fsync", "synchronous_commit", "full_page_writes", "shared_buffers",
            "work_mem", "maintenance_work_mem", "max_wal_size",
            "max_parallel_workers_per_gather"]  # fmt: skip


def database_settings(dsn: str) -> dict[str, str]:
    import psycopg

    found = {}
    with psycopg.connect(dsn) as con:
        for name in SETTINGS:  # names of ours, not values: SHOW takes no parameter
            row = con.execute(f"SHOW {name}").fetchone()
            found[name] = str(row[0]) if row else ""
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events (about)")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    options = parser.parse_args()
    if options.keep:
        shutil.rmtree(options.keep, ignore_errors=True)
        report = run(options.events, options.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="anchorflow-bench-engines-") as tmp:
            report = run(options.events, Path(tmp))
    show(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"results: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
