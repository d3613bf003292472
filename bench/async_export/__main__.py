"""Run the async export benchmark: `python -m bench.async_export [--quick]`.

Starts the MaestroQA emulator on loopback with one day of 166,667 graded tickets (6 answers
each: 1,000,002 answers; --quick: 20,000 tickets), its `individual_answers` export as a CSV in
a ZIP, builds that file once (the emulator caches it, so generation is not timed), then runs
each contender in a fresh process: request → poll → download → raw → staging. Prints answers/s
and peak memory and writes bench/results/async_export.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.table import Table

from anchorflow.dev.emulators.maestroqa import MaestroQAEmulator
from anchorflow.dev.synth.maestroqa import GradingSpec
from bench.amplitude_ingest.__main__ import run_child
from bench.async_export.contenders import COLUMNS
from bench.machine import machine

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "async_export.json"
TOKEN = "bench-token-4c1f"
MODULE = "bench.async_export.contenders"
PANDAS_ROWS = 50_000
console = Console(width=140)


def write_project(target: Path, base_url: str) -> Path:
    project = {
        "name": "async_export_bench",
        "warehouse": {"engine": "duckdb", "path": str(target / "anchorflow.duckdb")},
        "sources": {"qa": {
            "kind": "async_export", "preset": "maestroqa", "base_url": base_url,
            "token": "${MAESTROQA_API_TOKEN}", "start": "2024-03-01",
            "streams": {"individual_answers": {"format": "zip"}},
            "poll": {"interval": "10ms", "max_interval": "10ms"},
        }},
        "staging": {"answers": {
            "source": "qa", "stream": "individual_answers",
            "unique_key": ["gradable_id", "question_id"], "columns": COLUMNS,
        }},
    }  # fmt: skip
    (target / "anchorflow.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    return target


def warm(emulator: MaestroQAEmulator) -> int:
    """Have the emulator build the export file once; its size in bytes."""
    started = time.perf_counter()
    with httpx.Client(base_url=emulator.base_url, headers={"apitoken": TOKEN}, timeout=600) as api:
        body = {"startDate": "2024-03-01T00:00:00Z", "endDate": "2024-03-02T00:00:00Z",
                "singleFileExport": "individual_answers"}  # fmt: skip
        export_id = api.post("/request-raw-export", json=body).json()["exportId"]
        while api.get("/get-export-data", params={"exportId": export_id}).json()["status"] != (
            "complete"
        ):
            time.sleep(0.01)
    size = len(emulator.exports[export_id].data or b"")
    console.print(f"export built: {size / 1e6:,.1f} MB ZIP in {time.perf_counter() - started:.1f}s")
    return size


def contender_args(name: str, work: Path, base_url: str) -> dict[str, Any]:
    target = work / name
    target.mkdir(parents=True)
    args: dict[str, Any] = {"token": TOKEN, "base_url": base_url, "work": str(target),
                            "db": str(target / "out.duckdb")}  # fmt: skip
    if name == "anchorflow":
        args["project"] = str(write_project(target, base_url))
    if name == "pandas":
        args["limit"] = PANDAS_ROWS
    return args


def report(results: dict[str, Any], answers: int) -> None:
    table = Table(title=f"MaestroQA export of {answers:,} answers → warehouse")
    for column in ("contender", "rows", "seconds", "rows/s", "peak MB", "check"):
        table.add_column(column, justify="left" if column == "contender" else "right")
    for name, result in results.items():
        if "error" in result:
            table.add_row(name, "", "", "", "", result["error"][-120:])
            continue
        rate = result["rows"] / result["seconds"]
        table.add_row(name, f"{result['rows']:,}", f"{result['seconds']:.1f}", f"{rate:,.0f}",
                      f"{result['peak_mb']:,.0f}", result.get("check", ""))  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    tickets = 20_000 if options.quick else 166_667
    spec = GradingSpec(seed=42, agents=200, graded_per_day=tickets)
    answers = tickets * 6
    results: dict[str, Any] = {}
    load = [os.getloadavg()[0]]
    with MaestroQAEmulator(TOKEN, spec, polls_to_complete=2, zip_single=True) as emulator:
        size = warm(emulator)
        with tempfile.TemporaryDirectory(dir=ROOT / "bench") as work:
            for name in ("anchorflow", "duckdb_read_csv", "pandas"):
                console.print(f"running {name} ...")
                args = contender_args(name, Path(work), emulator.base_url)
                results[name] = run_child(name, args, MODULE)
                load.append(os.getloadavg()[0])
    expected = {"anchorflow": answers, "duckdb_read_csv": answers,
                "pandas": min(answers, PANDAS_ROWS)}  # fmt: skip
    for name, result in results.items():
        if "error" not in result:
            ok = result["rows"] == expected[name] and result.get("staged", answers) == answers
            result["check"] = "ok" if ok else f"expected {expected[name]:,} rows"
    report(results, answers)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    summary = {"machine": machine(), "answers": answers, "zip_bytes": size,
               "load_average": load, "results": results}  # fmt: skip
    RESULTS.write_text(json.dumps(summary, indent=1))
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
