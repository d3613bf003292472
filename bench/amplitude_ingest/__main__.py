"""Run the Amplitude ingest benchmark: `python -m bench.amplitude_ingest [--quick]`.

Generates (once, cached in bench/data) Amplitude export files of 50,000 events per hour, serves
them from the emulator in this process, and runs each contender in a child process over the same
files. Prints a table with events/s, MB/s (uncompressed JSON), peak memory and the ratio of
anchorflow's rate to each, and writes bench/results/amplitude_ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import yaml
from isal.igzip import decompress
from rich.console import Console
from rich.table import Table

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, write_export_files
from anchorflow.dev.synth.amplitude import SynthSpec
from bench.machine import machine

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "bench" / "data" / "amplitude_50k"
RESULTS = ROOT / "bench" / "results" / "amplitude_ingest.json"
START = datetime(2024, 3, 1)
SPEC = SynthSpec(seed=42, events_per_hour=50_000)
SIZES = {"1M": 20, "5M": 100}  # hours of 50k events on average (a daily curve around it)
# The slow peers run on the first N events of the same files; their rate is per event anyway.
SUBSETS = {"pandas": 20_000, "dlt_dicts": 3_000, "dlt_parquet": 20_000}
console = Console(width=120)
# Floors by hand in DuckDB (`--only` names them): the mapped columns read with their types given,
# and the same with each line's text kept as a column.
BY_HAND = ("duckdb_read_json_mapped", "duckdb_read_json_mapped_raw")
MEDIANS = ("seconds", "peak_mb", "cpu_seconds")  # a contender's figures over its rounds


def manifest(files: list[Path], directory: Path = DATA) -> dict[str, dict[str, int]]:
    """Lines and uncompressed bytes of every file, computed once and cached next to the data."""
    path = directory / "manifest.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    for file in files:
        if file.name not in known:
            text = decompress(file.read_bytes())
            known[file.name] = {"lines": text.count(b"\n"), "bytes": len(text)}
    path.write_text(json.dumps(known))
    return known


def run_child(
    name: str, args: dict[str, Any], module: str = "bench.amplitude_ingest.contenders"
) -> dict[str, Any]:
    """Run one contender (`python -m MODULE NAME ARGS_JSON`) in a fresh process; add its peak
    resident memory and CPU time (wait4)."""
    command = [sys.executable, "-m", module, name, json.dumps(args)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            tail = err.read().decode(errors="replace")[-4000:]
            return {"error": f"exit {child.returncode}: {tail}"}
        result: dict[str, Any] = json.loads(out.read().decode().strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return result


def anchorflow_project(
    work: Path, memory_limit: str | None, anchor: bool = False, max_part_bytes: str | None = None
) -> Path:
    """The demo project's source and its `events` model (every event, 20 columns, the mapping
    the peers are compared on), with its own warehouse in `work`; with `anchor`, also the demo's
    entities of `staging.events` (for `bench.engines` and `bench.spark`, which time that step)."""
    demo = yaml.safe_load((ROOT / "examples/product_analytics/anchorflow.yml").read_text())
    demo["staging"] = {"events": demo["staging"]["events"]}
    demo["sources"] = {"amplitude": demo["sources"]["amplitude"]}  # not the demo's cost files
    # Export → raw + staging is what the peers do: no anchor model (`bench.anchor` measures it).
    model = demo.pop("anchor")
    if anchor:  # the entities of staging.events (not the users table's)
        entities = model["entities"]
        model["entities"] = {n: e for n, e in entities.items() if e["sources"] == ["events"]}
        demo["anchor"] = model
    demo["sources"]["amplitude"]["start"] = START.strftime("%Y%m%dT%H")
    if max_part_bytes:
        demo["sources"]["amplitude"]["max_part_bytes"] = max_part_bytes
    demo["warehouse"] = {"path": str(work / "anchorflow.duckdb")}
    if memory_limit:
        demo["warehouse"]["memory_limit"] = memory_limit
    demo.pop("marts", None)
    for section in ("exports", "fraud", "metrics", "alerts"):  # they name marts and models
        demo.pop(section, None)  # that are not built here
    (work / "anchorflow.yml").write_text(yaml.safe_dump(demo))
    return work


def contenders(size: str, hours: int, files: list[Path], base_url: str, work: Path) -> list[str]:
    names = ["anchorflow", "anchorflow_512mb", "anchorflow_raw_free", "duckdb_read_json"]
    names += ["dlt_arrow", "dlt_arrow_raw"]
    if size == "1M":
        names += ["dlt_parquet", "dlt_dicts", "pandas"]
    return names


def arguments(
    name: str, hours: int, files: list[Path], base_url: str, work: Path
) -> dict[str, Any]:
    target = work / name
    target.mkdir(parents=True, exist_ok=True)
    common = {"files": [str(f) for f in files], "db": str(target / "bench.duckdb")}
    if name.startswith("anchorflow"):
        # anchorflow_512mb: the same with DuckDB's memory_limit at 512 MB instead of 80% of RAM, to
        # show that what grows with the data is only DuckDB's cache of written blocks.
        # anchorflow_raw_free: an upper bound, every hour typed in flight (no hour in parts).
        project = anchorflow_project(
            target,
            "512MB" if name == "anchorflow_512mb" else None,
            max_part_bytes="1GB" if name == "anchorflow_raw_free" else None,
        )
        return {
            "project": str(project),
            "base_url": base_url,
            "start": "20240301T00",
            "hours": hours,
        }
    if name.startswith("dlt"):
        common |= {"name": f"bench_{name}", "work": str(target / "dlt")}
        if name == "dlt_parquet":
            common["format"] = "parquet"
    if name == "duckdb_read_json_mapped_raw":
        common["raw"] = True
    if name in SUBSETS:
        common["limit"] = SUBSETS[name]
    return common


def measure(
    size: str, hours: int, base_url: str, work: Path, rounds: int = 1, only: set[str] | None = None
) -> list[dict[str, Any]]:
    """Each contender over the same hours, `rounds` times in turn (A B C A B C ...), so that a
    drift of the machine's speed falls on every contender alike. A contender's row gives the
    median of its runs; `anchorflow_x` is the median of the ratios taken round by round."""
    files = write_export_files(SPEC, START, START + timedelta(hours=hours), DATA, workers=2)
    sizes = manifest(files)
    total_events = sum(sizes[f.name]["lines"] for f in files)
    bytes_per_event = sum(sizes[f.name]["bytes"] for f in files) / total_events
    names = [n for n in contenders(size, hours, files, base_url, work) if not only or n in only]
    names += [n for n in BY_HAND if only and n in only]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_ in range(1, rounds + 1):
        for name in names:
            console.print(
                f"[{size}] {name} ..." + (f" (round {round_} of {rounds})" if rounds > 1 else "")
            )
            result = run_child(name, arguments(name, hours, files, base_url, work))
            if "events" in result:
                result["events_per_s"] = result["events"] / result["seconds"]
            runs[name].append(result)
            shutil.rmtree(work / name, ignore_errors=True)
    rows = []
    for name, results in runs.items():
        good = [r for r in results if "events_per_s" in r]
        row: dict[str, Any] = {"size": size, "contender": name, "bytes_per_event": bytes_per_event}
        failed = [r["error"] for r in results if "error" in r]
        if failed:  # shown as the row's error when no run finished, else counted
            row |= {"error": failed[0], "failed_runs": len(failed)}
        if good:
            row |= {key: median([r[key] for r in good]) for key in MEDIANS}
            row |= {"events": good[0]["events"], "runs": len(good)}
            row["events_per_s"] = row["events"] / row["seconds"]
            row["mb_per_s"] = row["events_per_s"] * bytes_per_event / 1e6
        if rounds > 1:
            row["each_run"] = results
        rows.append(row)
    base = runs.get("anchorflow", [])
    for row in rows:
        pairs = [
            a["events_per_s"] / b["events_per_s"]
            for a, b in zip(base, runs[row["contender"]], strict=False)
            if "events_per_s" in a and "events_per_s" in b
        ]
        if pairs:
            row["anchorflow_x"] = median(pairs)
            row["anchorflow_x_range"] = [min(pairs), max(pairs)]
    return rows


def show(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Amplitude export → raw + staging (DuckDB)")
    for column in [
        "size",
        "contender",
        "events",
        "seconds",
        "events/s",
        "MB/s",
        "peak MB",
        "anchorflow ×",
    ]:
        table.add_column(column, justify="right")
    for r in rows:
        if "events_per_s" not in r:
            table.add_row(r["size"], r["contender"], "error", r["error"][:60], "", "", "", "")
            continue
        table.add_row(
            r["size"],
            r["contender"],
            f"{r['events']:,}",
            f"{r['seconds']:.1f}",
            f"{r['events_per_s']:,.0f}",
            f"{r['mb_per_s']:.1f}",
            f"{r['peak_mb']:,.0f}",
            _ratio(r),
        )
    console.print(table)


def _ratio(row: dict[str, Any]) -> str:
    """anchorflow × (its median over the rounds, and their range when there were several)."""
    low, high = row.get("anchorflow_x_range", [None, None])
    spread = f" ({low:.2f}–{high:.2f})" if low is not None and row.get("runs", 1) > 1 else ""
    failed = f", {row['failed_runs']} failed" if row.get("failed_runs") else ""
    if "anchorflow_x" not in row:  # anchorflow did not run (`--only`)
        return "–"
    return f"{row['anchorflow_x']:.2f}{spread}{failed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 1M size")
    parser.add_argument(
        "--rounds", type=int, default=1, metavar="N",
        help="run every contender N times in turn and report medians (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--only", metavar="NAMES", help="comma-separated contenders to run (default: all)"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, metavar="PATH",
        help=f"where the results go (default {RESULTS.relative_to(ROOT)})",
    )  # fmt: skip
    options = parser.parse_args()
    only = set(options.only.split(",")) if options.only else None
    # (every size's contenders are among them; the floors by hand run only when named)
    known = set(contenders("1M", 0, [], "", Path())) | set(BY_HAND)
    if only and only - known:
        unknown, names = ", ".join(sorted(only - known)), ", ".join(sorted(known))
        parser.error(f"--only: no contender {unknown}; there are {names}")
    sizes = {"1M": SIZES["1M"]} if options.quick else SIZES
    last = START + timedelta(hours=max(sizes.values()))
    write_export_files(SPEC, START, last, DATA, workers=2)
    store = ExportStore.from_directory(DATA, START, last)
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="anchorflow-bench-") as tmp,
        AmplitudeEmulator(store, "bench", "bench") as emulator,
    ):
        for size, hours in sizes.items():
            rows += measure(size, hours, emulator.base_url, Path(tmp), options.rounds, only)
    show(rows)
    out: Path = options.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "rounds": options.rounds,
        "rows": rows,
    }
    out.write_text(json.dumps(report, indent=2))
    console.print(f"results: {out}")


if __name__ == "__main__":
    main()
