"""Run the staging benchmark: `python -m bench.staging [--rows N]`.

Generates N mixed "backend bus" events of five kinds into the raw table of a fresh project
warehouse (50 committed loads, see `workload.py`), then types them into five staging models, one
per kind (a selector on `model`, 9–10 typed columns each, a third of them nested, dedupe on
`event_id`). Each configuration runs in its own process on its own copy of the same raw
warehouse: sample_percent 0 (typing alone), 10 and 100 (typing plus field statistics and drift).
Prints a table with rows/s and the ratio to typing alone, and writes bench/results/staging.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

from bench.staging.workload import generate, write_project

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "staging.json"
SAMPLES = [0.0, 10.0, 100.0]
console = Console(width=120)


def run_child(root: Path) -> dict[str, Any]:
    """Stage in a fresh process; add its peak resident memory (wait4)."""
    command = [sys.executable, "-m", "bench.staging.run", str(root)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code != 0:
            raise SystemExit(f"staging run failed (exit {code}):\n{err.read().decode()[-3000:]}")
        result: dict[str, Any] = json.loads(out.read().decode().strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def machine() -> dict[str, Any]:
    cpu = ""
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "system": platform.platform(),
    }


def measure(options: argparse.Namespace, work: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    batch_rows = max(1, options.rows // options.batches)
    base = work / "raw.duckdb"
    started = time.perf_counter()
    project = write_project(work / "generate", base, 0, batch_rows)
    data = generate(project, options.rows, options.loads)
    data["seconds"] = time.perf_counter() - started
    data["file_mb"] = base.stat().st_size / 2**20
    console.print(
        f"generated {data['rows']:,} events in {data['loads']} loads "
        f"({data['bytes_per_event']:.0f} bytes each, {data['file_mb']:,.0f} MB file) "
        f"in {data['seconds']:.1f} s"
    )
    rows = []
    for percent in SAMPLES:
        attempts = []
        for attempt in range(options.repeat):
            root = work / f"sample_{percent:g}_{attempt}"
            copy = root / "warehouse.duckdb"
            root.mkdir()
            shutil.copyfile(base, copy)
            write_project(root, copy, percent, batch_rows, options.threads)
            result = run_child(root)
            if result["staged"] != data["rows"]:
                raise SystemExit(f"staged {result['staged']:,} of {data['rows']:,} rows: {result}")
            console.print(
                f"sample {percent:g}%: {result['seconds']:.2f} s "
                f"({data['rows'] / result['seconds']:,.0f} rows/s), "
                f"close {result['close_seconds']:.2f} s, peak {result['peak_mb']:,.0f} MB"
            )
            attempts.append(result)
            shutil.rmtree(root)
        seconds = [a["seconds"] for a in attempts]
        median = statistics.median(seconds)
        chosen = min(attempts, key=lambda a: abs(a["seconds"] - median))
        rows.append(
            {
                "sample_percent": percent,
                "rows": data["rows"],
                "seconds": median,
                "all_seconds": seconds,
                "rows_per_s": data["rows"] / median,
                "close_seconds": chosen["close_seconds"],
                "rows_per_s_with_close": data["rows"] / (median + chosen["close_seconds"]),
                "batches": sum(m["batches"] for m in chosen["models"].values()),
                "peak_mb": max(a["peak_mb"] for a in attempts),
                "models": chosen["models"],
                "checks": chosen["checks"],
                "steps": chosen["steps"],
            }
        )
    typing = rows[0]["seconds"]
    for row in rows:
        row["x_typing"] = row["seconds"] / typing
    return data | {"batch_rows": batch_rows}, rows


def markdown(data: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        "| statistics | rows | seconds | rows/s | × typing alone | with close: rows/s | peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        percent = r["sample_percent"]
        what = f"{percent:g}% sample" if percent else "none (typing alone)"
        lines.append(
            f"| {what} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} | "
            f"{r['x_typing']:.2f} | {r['rows_per_s_with_close']:,.0f} | {r['peak_mb']:,.0f} |"
        )
    return "\n".join(lines)


def show(rows: list[dict[str, Any]]) -> None:
    table = Table(title="raw → typed staging, 5 models (DuckDB)")
    for column in ["statistics", "rows", "seconds", "rows/s", "× typing", "close s", "peak MB"]:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            f"{r['sample_percent']:g}%",
            f"{r['rows']:,}",
            f"{r['seconds']:.2f}",
            f"{r['rows_per_s']:,.0f}",
            f"{r['x_typing']:.2f}",
            f"{r['close_seconds']:.2f}",
            f"{r['peak_mb']:,.0f}",
        )
    console.print(table)
    steps = sorted({s for r in rows for s in r["steps"]})
    table = Table(title="seconds per step (summed over the batches of all models)")
    table.add_column("step")
    for r in rows:
        table.add_column(f"{r['sample_percent']:g}%", justify="right")
    for step in steps:
        table.add_row(step, *(f"{r['steps'].get(step, 0):.2f}" for r in rows))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="events in raw (5,000,000)")
    parser.add_argument("--loads", type=int, default=50, help="committed loads they arrive in")
    parser.add_argument(
        "--batches", type=int, default=5, help="batches per model (sets thresholds.batch_rows)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (median)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (all cores)")
    parser.add_argument("--work", type=Path, default=None, help="directory for the warehouses")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results JSON")
    options = parser.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="anchorflow-bench-staging-", dir=options.work) as tmp:
        data, rows = measure(options, Path(tmp))
    show(rows)
    report = {
        "machine": machine(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.staging", *sys.argv[1:]]),
        "data": data,
        "wall_seconds": time.perf_counter() - began,
        "rows": rows,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=2))
    console.print(markdown(data, rows), markup=False, highlight=False)
    console.print(f"results: {options.output}  (wall {report['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
