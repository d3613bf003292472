"""Run the files ingest benchmark: `python -m bench.files_ingest [--quick]`.

Builds once, in bench/data/files_1m, one NDJSON.gz file and one Parquet file per hour of the
Amplitude export that bench/amplitude_ingest uses (seed 42, 50,000 events per hour on average,
20 hours, about 1M events); --quick uses the first 4 hours. Runs each contender in a child process
over the same files, checks what anchorflow landed and typed, prints a table with events/s, MB/s
(the events' NDJSON text), peak memory and anchorflow's rate over DuckDB's on the same format,
and writes bench/results/files_ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import yaml
from isal.igzip import decompress
from rich.console import Console
from rich.table import Table

from anchorflow.dev.emulators.amplitude import write_export_files
from anchorflow.dev.synth.amplitude import SynthSpec
from bench.machine import machine

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "bench" / "data" / "amplitude_50k"  # shared with bench/amplitude_ingest
DATA = ROOT / "bench" / "data" / "files_1m"
MANIFEST = DATA / "manifest.json"
RESULTS = ROOT / "bench" / "results" / "files_ingest.json"
DEMO = ROOT / "examples" / "product_analytics" / "anchorflow.yml"
START = datetime(2024, 3, 1)
SPEC = SynthSpec(seed=42, events_per_hour=50_000)
HOURS = 20
QUICK_HOURS = 4
FORMATS = {"ndjson": ".json.gz", "parquet": ".parquet"}  # format: extension of its files
CONTENDERS = {  # name: the format of the files it reads
    "anchorflow_ndjson": "ndjson",
    "anchorflow_parquet": "parquet",
    "duckdb_read_json": "ndjson",
    "duckdb_read_parquet": "parquet",
}
RATIOS = {"anchorflow_ndjson": "duckdb_read_json", "anchorflow_parquet": "duckdb_read_parquet"}
console = Console(width=140)

Manifest = dict[str, Any]
Row = dict[str, Any]

# -- data -----------------------------------------------------------------------------------------


def hour_key(export_name: str) -> str:
    """`187520_2024-03-01_7#2.json.gz` (Amplitude's part name) → `2024-03-01T07`."""
    _, day, hour = export_name.rpartition("#")[0].split("_")
    return f"{day}T{int(hour):02d}"


def export_hours() -> dict[str, list[Path]]:
    """The Amplitude export's gzip parts (generated once, cached), grouped by hour, in order."""
    parts = write_export_files(SPEC, START, START + timedelta(hours=HOURS), EXPORT, workers=2)
    hours: dict[str, list[Path]] = {}
    for part in parts:
        hours.setdefault(hour_key(part.name), []).append(part)
    return hours


def data_file(hour: str, fmt: str) -> Path:
    return DATA / fmt / f"{hour}{FORMATS[fmt]}"


def write_atomically(target: Path, data: bytes) -> None:
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, target)


def write_ndjson(hour: str, parts: list[Path]) -> Path:
    """The hour's gzip members, as they are, one after the other: one multi-member gzip file."""
    target = data_file(hour, "ndjson")
    write_atomically(target, b"".join(part.read_bytes() for part in parts))
    return target


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def inferred_columns(con: duckdb.DuckDBPyConnection, files: list[Path]) -> str:
    """read_json's `columns` for every hour: DuckDB's inference over every event of every hour,
    so that the Parquet files share one schema (nested objects as the structs DuckDB infers)."""
    described = con.execute(
        "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
        "read_json(?, format = 'newline_delimited', sample_size = -1))",
        [[str(f) for f in files]],
    ).fetchall()
    return "{" + ", ".join(f"{sql_text(n)}: {sql_text(t)}" for n, t in described) + "}"


def write_parquet(con: duckdb.DuckDBPyConnection, hour: str, columns: str) -> Path:
    target = data_file(hour, "parquet")
    temp = target.with_name(f".{target.name}.tmp")
    source = sql_text(str(data_file(hour, "ndjson")))
    con.execute(
        f"COPY (SELECT * FROM read_json({source}, format = 'newline_delimited', "
        f"columns = {columns})) TO {sql_text(str(temp))} (FORMAT parquet)"
    )
    os.replace(temp, target)
    return target


def describe_hour(con: duckdb.DuckDBPyConnection, hour: str) -> dict[str, int]:
    """Events (lines) and bytes of the hour's NDJSON text; rows and sizes of both files."""
    ndjson, parquet = data_file(hour, "ndjson"), data_file(hour, "parquet")
    text: bytes = decompress(ndjson.read_bytes())  # type: ignore[no-untyped-call]
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [str(parquet)]).fetchone()
    return {
        "events": text.count(b"\n"),
        "json_bytes": len(text),
        "parquet_rows": rows[0] if rows else -1,
        "ndjson_gz_bytes": ndjson.stat().st_size,
        "parquet_bytes": parquet.stat().st_size,
    }


def build_data() -> Manifest:
    """Both formats of every hour and their counts, written once (the manifest comes last)."""
    if MANIFEST.exists():
        manifest: Manifest = json.loads(MANIFEST.read_text())
        if all(data_file(h, f).exists() for h in manifest["hours"] for f in FORMATS):
            return manifest
    hours = export_hours()
    for fmt in FORMATS:
        (DATA / fmt).mkdir(parents=True, exist_ok=True)
    console.print(f"writing {len(hours)} hours as NDJSON.gz and Parquet into {DATA} ...")
    ndjson = [write_ndjson(hour, parts) for hour, parts in hours.items()]
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    columns = inferred_columns(con, ndjson)
    for hour in hours:
        write_parquet(con, hour, columns)
    files = {hour: describe_hour(con, hour) for hour in hours}
    con.close()
    wrong = [h for h, f in files.items() if f["events"] != f["parquet_rows"]]
    if wrong:
        raise SystemExit(f"Parquet rows differ from NDJSON lines in hours {wrong}")
    manifest = {"hours": list(hours), "files": files}
    MANIFEST.write_text(json.dumps(manifest, indent=1))
    return manifest


# -- contenders -----------------------------------------------------------------------------------


def demo_events_model() -> dict[str, Any]:
    """The demo project's `events` model (every event, 20 columns, dedupe on event_uuid)."""
    model: dict[str, Any] = yaml.safe_load(DEMO.read_text())["staging"]["events"]
    return model | {"source": "exports"}


def scalar_columns(model: dict[str, Any]) -> list[str]:
    """The model's columns but the JSON ones: their text differs by format (a Parquet struct has
    every key of its type, null where an event had none), their typed values must not."""
    types = {n: c if isinstance(c, str) else c.get("type") for n, c in model["columns"].items()}
    return [name for name, kind in types.items() if kind != "JSON"]


def write_project(target: Path, fmt: str, files: list[Path]) -> Path:
    """A fresh project: one `files` source on links to the chosen files, the demo's mapping."""
    linked = target / "files"
    linked.mkdir(parents=True)
    for file in files:
        (linked / file.name).symlink_to(file)
    project = {
        "name": "files_ingest_bench",
        "warehouse": {"engine": "duckdb", "path": str(target / "anchorflow.duckdb")},
        "sources": {
            "exports": {"kind": "files", "path": str(linked / f"*{FORMATS[fmt]}"), "format": fmt}
        },
        "staging": {"events": demo_events_model()},
        "pii_salt": "files-ingest-bench",  # ip_address is `pii: hash`
    }
    (target / "anchorflow.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    return target


def arguments(name: str, files: list[Path], target: Path) -> dict[str, Any]:
    target.mkdir(parents=True)
    if name.startswith("anchorflow"):
        project = write_project(target, CONTENDERS[name], files)
        return {
            "project": str(project),
            "db": str(project / "anchorflow.duckdb"),
            "fingerprint_columns": scalar_columns(demo_events_model()),
        }
    return {"files": [str(f) for f in files], "db": str(target / "bench.duckdb")}


def run_child(name: str, args: dict[str, Any]) -> Row:
    """Run one contender in a fresh process; add its peak resident memory (wait4)."""
    command = [sys.executable, "-m", "bench.files_ingest.contenders", name, json.dumps(args)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if code != 0:
            return {"error": f"exit {code}: {err.read().decode(errors='replace')[-2000:]}"}
        result: Row = json.loads(out.read().decode().strip().splitlines()[-1])
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def problems(row: Row, events: int, files: int) -> list[str]:
    """What is wrong with a contender's result: every event loaded (and, for anchorflow, every
    event in raw, typed once in staging, nothing set aside, one load per file)."""
    if "error" in row:
        return ["failed"]
    expected = {"events": events}
    if row["contender"].startswith("anchorflow"):
        every = {"raw": events, "staged": events, "unique_uuids": events}
        expected |= every | {"quarantined": 0, "type_errors": 0, "loads": files, "raw_files": files}
    wrong = {key: value for key, value in expected.items() if row.get(key) != value}
    return [f"{key} {row.get(key)} != {value}" for key, value in wrong.items()]


def same_staging(rows: list[Row]) -> bool | None:
    """Whether both anchorflow runs typed the same values (the fingerprint of their columns)."""
    prints = {r["contender"]: r.get("fingerprint") for r in rows}
    ndjson, parquet = prints.get("anchorflow_ndjson"), prints.get("anchorflow_parquet")
    return None if ndjson is None or parquet is None else ndjson == parquet


def measure(hours: list[str], manifest: Manifest, work: Path) -> list[Row]:
    events = sum(manifest["files"][h]["events"] for h in hours)
    json_bytes = sum(manifest["files"][h]["json_bytes"] for h in hours)
    rows = []
    for name, fmt in CONTENDERS.items():
        console.print(f"{name} ({len(hours)} files, {events:,} events) ...")
        files = [data_file(h, fmt) for h in hours]
        row = run_child(name, arguments(name, files, work / name))
        row |= {"contender": name, "format": fmt, "files": len(files)}
        if "seconds" in row:
            row["events_per_s"] = row["events"] / row["seconds"]
            row["mb_per_s"] = row["events_per_s"] * json_bytes / events / 1e6
        row["problems"] = problems(row, events, len(files))
        rows.append(row)
    for name, peer in RATIOS.items():
        ours, theirs = (next(r for r in rows if r["contender"] == n) for n in (name, peer))
        if "events_per_s" in ours and "events_per_s" in theirs:
            ours["vs_duckdb"] = ours["events_per_s"] / theirs["events_per_s"]
    return rows


# -- report ---------------------------------------------------------------------------------------


def show(rows: list[Row], title: str) -> None:
    table = Table(title=title)
    headers = ["contender", "files", "events", "seconds", "events/s", "MB/s", "peak MB",
               "÷ duckdb", "checks"]  # fmt: skip
    for header in headers:
        table.add_column(header, justify="left" if header in ("contender", "checks") else "right")
    for r in rows:
        if "error" in r:
            table.add_row(r["contender"], str(r["files"]), "", "", "", "", "", "", r["error"][-80:])
            continue
        ratio = f"{r['vs_duckdb']:.2f}" if "vs_duckdb" in r else ""
        table.add_row(
            r["contender"],
            str(r["files"]),
            f"{r['events']:,}",
            f"{r['seconds']:.1f}",
            f"{r['events_per_s']:,.0f}",
            f"{r['mb_per_s']:.1f}",
            f"{r['peak_mb']:,.0f}",
            ratio,
            "; ".join(r["problems"]) or "ok",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_HOURS} hours")
    options = parser.parse_args()
    manifest = build_data()
    hours = manifest["hours"][: QUICK_HOURS if options.quick else HOURS]
    with tempfile.TemporaryDirectory(prefix="anchorflow-files-bench-") as tmp:
        rows = measure(hours, manifest, Path(tmp))
    events = sum(manifest["files"][h]["events"] for h in hours)
    same = same_staging(rows)
    show(rows, f"{len(hours)} hourly files, {events:,} events → DuckDB")
    console.print(f"anchorflow typed the same values from both formats: {same}")
    report = {
        "machine": machine(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.files_ingest", *sys.argv[1:]]),
        "hours": len(hours),
        "events": events,
        "json_bytes": sum(manifest["files"][h]["json_bytes"] for h in hours),
        "ndjson_gz_bytes": sum(manifest["files"][h]["ndjson_gz_bytes"] for h in hours),
        "parquet_bytes": sum(manifest["files"][h]["parquet_bytes"] for h in hours),
        "same_staging_both_formats": same,
        "ratios": {f"{n} / {p}": _ratio(rows, n) for n, p in RATIOS.items()},
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    console.print(f"results: {RESULTS.relative_to(ROOT)}")
    if any(r["problems"] for r in rows) or same is False:
        raise SystemExit("some checks failed (see the table)")


def _ratio(rows: list[Row], name: str) -> float | None:
    value = next(r for r in rows if r["contender"] == name).get("vs_duckdb")
    return float(value) if value is not None else None


if __name__ == "__main__":
    main()
