"""Spark (local mode) against DuckDB, in one run: `python -m bench.spark [--events N]`.

The same Amplitude export files as bench.engines (N events over 20 hours, generated once and
cached in bench/data), served by the emulator in this process. Each contender is a child
process (bench.engines.contenders / bench.amplitude_ingest.contenders):

1. the ingest (HTTP → raw + typed staging, the demo's source and `events` model) into DuckDB
   and into Spark (`local[2]`, the lake and its journal file in the work directory);
2. the anchor step (the demo's anchor model) on what each ingest left.

Prints events/s (observations/s for the anchor step) and Spark / DuckDB, and writes
bench/results/spark.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore
from bench.amplitude_ingest.__main__ import START, run_child
from bench.engines.__main__ import HOURS, export_files, one_line, projects
from bench.machine import machine

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "spark.json"
ENGINES = ("duckdb", "spark")


def warehouse(engine: str, work: Path) -> dict[str, Any]:
    if engine == "spark":
        return {"engine": "spark", "master": "local[2]", "lake": str(work / "lake"),
                "journal": str(work / "journal.duckdb")}  # fmt: skip
    return {"path": str(work / "anchorflow.duckdb")}


def without_fraud(path: Path) -> None:
    """The demo's fraud rules read models this project does not have: not what is measured."""
    data = yaml.safe_load(path.read_text())
    for key in ("fraud", "metrics"):
        data.pop(key, None)
    path.write_text(yaml.safe_dump(data))


def measure(
    engine: str, step: str, child: str, module: str, args: dict[str, Any]
) -> dict[str, Any]:
    row: dict[str, Any] = {"engine": engine, "step": step}
    print(f"{step} on {engine} ...", flush=True)
    started = time.perf_counter()
    result = run_child(child, args, module)
    row |= result | {"wall_seconds": time.perf_counter() - started}
    if "error" in row:
        row["error"] = one_line(row["error"])
        print(f"  failed: {row['error']}", flush=True)
        return row
    seconds = row["seconds"]
    row["events_per_s"] = row["events"] / seconds if seconds else 0.0
    if "observations" in row:
        row["observations_per_s"] = row["observations"] / seconds if seconds else 0.0
    # Each row as it is measured: a long run stopped later keeps what it measured.
    observed = f", {row['observations']:,} observations" if "observations" in row else ""
    print(f"  {row['events']:,} events{observed} in {seconds:.1f} s", flush=True)
    return row


def run(events: int, work: Path) -> dict[str, Any]:
    directory, files, sizes = export_files(events)
    total = sum(sizes[f.name]["lines"] for f in files)
    print(f"{total:,} events in {len(files)} files")
    store = ExportStore.from_directory(directory, START, START + timedelta(hours=HOURS))
    rows = []
    with AmplitudeEmulator(store, "bench", "bench") as emulator:
        ingest = {"base_url": emulator.base_url, "start": START.strftime("%Y%m%dT%H"),
                  "hours": HOURS}  # fmt: skip
        for engine in ENGINES:
            plain, anchored = projects(work / engine, warehouse(engine, work / engine))
            for project in (plain, anchored):
                without_fraud(project / "anchorflow.yml")
            rows.append(measure(engine, "ingest", "anchorflow",
                                "bench.amplitude_ingest.contenders",
                                ingest | {"project": str(plain)}))  # fmt: skip
            if "error" not in rows[-1]:
                rows.append(measure(engine, "anchor", "anchor", "bench.engines.contenders",
                                    {"project": str(anchored)}))  # fmt: skip
    for step in ("ingest", "anchor"):
        by_engine = {r["engine"]: r for r in rows if r["step"] == step}
        key = "observations_per_s" if step == "anchor" else "events_per_s"
        spark, duck = by_engine.get("spark", {}).get(key), by_engine.get("duckdb", {}).get(key)
        if spark and duck:
            by_engine["spark"]["spark_over_duckdb"] = spark / duck
    return {"machine": machine(), "date": datetime.now().isoformat(timespec="seconds"),
            "events": total, "files": len(files), "rows": rows}  # fmt: skip


def show(report: dict[str, Any]) -> None:
    print(f"{report['events']:,} events, {report['files']} hourly files")
    heads = ("seconds", "events/s", "obs/s", "Spark/DuckDB")
    print(f"{'step':8} {'engine':8} " + " ".join(f"{h:>12}" for h in heads))
    for row in report["rows"]:
        if "error" in row:
            print(f"{row['step']:8} {row['engine']:8} {row['error']}")
            continue
        ratio = row.get("spark_over_duckdb")
        print(
            f"{row['step']:8} {row['engine']:8} {row['seconds']:12.1f} "
            f"{row['events_per_s']:12,.0f} {row.get('observations_per_s', 0):12,.0f} "
            f"{'' if ratio is None else format(ratio, '12.3f')}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events (about)")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    options = parser.parse_args()
    if options.keep:
        shutil.rmtree(options.keep, ignore_errors=True)
        report = run(options.events, options.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="anchorflow-bench-spark-") as tmp:
            report = run(options.events, Path(tmp))
    show(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str))
    print(f"results: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
