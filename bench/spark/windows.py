"""Where a window's seconds go on Spark: `python -m bench.spark.windows [--events N] [--hours H]`.

The ingest of bench.spark (the same Amplitude export files, served by the emulator) on Spark
`local[2]` alone, in this process, for the first H hourly windows: prints each window's
seconds (`meta.loads`: started → finished) and the statements that took the most time, with
their share (a timer around the adapter's statement path). The JVM is started before the
clock; the first window still pays Spark's first plans and code generation.
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from anchorflow.config import load_project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore
from anchorflow.run import Pipeline
from anchorflow.warehouse.spark import adapter
from anchorflow.warehouse.spark.session import spark_session
from bench.amplitude_ingest.__main__ import START
from bench.engines.__main__ import HOURS, export_files, projects
from bench.spark.__main__ import warehouse, without_fraud

Timings = dict[str, list[float]]


def timed_statements() -> Timings:
    """Time every statement the Spark adapter runs (outermost calls only), by its first words."""
    timings: Timings = collections.defaultdict(lambda: [0.0, 0.0])
    run = adapter.SparkWarehouse._run
    depth = [0]

    def timed(self: Any, sql: str, params: Sequence[Any] | None) -> Any:
        depth[0] += 1
        started = time.perf_counter()
        try:
            return run(self, sql, params)
        finally:
            depth[0] -= 1
            if not depth[0]:
                key = " ".join(sql.split())[:90]
                timings[key][0] += 1
                timings[key][1] += time.perf_counter() - started

    adapter.SparkWarehouse._run = timed  # type: ignore[method-assign]
    return timings


def ingest(events: int, hours: int, work: Path) -> tuple[list[tuple[Any, ...]], float]:
    directory, _, _ = export_files(events)
    store = ExportStore.from_directory(directory, START, START + timedelta(hours=HOURS))
    plain, _ = projects(work, warehouse("spark", work))
    without_fraud(plain / "anchorflow.yml")
    with AmplitudeEmulator(store, "bench", "bench") as emulator:
        os.environ.update(AMPLITUDE_BASE_URL=emulator.base_url, AMPLITUDE_API_KEY="bench",
                          AMPLITUDE_SECRET_KEY="bench")  # fmt: skip
        project = load_project(plain)
        spark_session("local[2]")  # the JVM, before the clock
        started = time.perf_counter()
        with Pipeline(project, now=START + timedelta(hours=hours + 2)) as pipeline:
            pipeline.run(marts=False)
            seconds = time.perf_counter() - started
            loads = pipeline.warehouse.query(
                "SELECT load_id, rows, epoch(finished_at) - epoch(started_at) "
                "FROM meta.loads ORDER BY load_id"
            )
    return loads, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000, help="events over 20 hours")
    parser.add_argument("--hours", type=int, default=3, help="windows to ingest")
    parser.add_argument("--top", type=int, default=8, help="statements to list")
    options = parser.parse_args()
    timings = timed_statements()
    with tempfile.TemporaryDirectory(prefix="anchorflow-bench-spark-") as tmp:
        loads, seconds = ingest(options.events, options.hours, Path(tmp))
    for load_id, rows, window in loads:
        print(f"window {load_id}: {rows:,} events in {window:.1f} s")
    later = [w for _, _, w in loads[1:]]
    if later:
        print(f"windows after the first: {sum(later) / len(later):.1f} s each (mean)")
    print(f"total {seconds:.1f} s; the statements that took longest:")
    for key, (count, spent) in sorted(timings.items(), key=lambda kv: -kv[1][1])[: options.top]:
        print(f"{spent:8.1f} s {100 * spent / seconds:5.1f}% {int(count):4d}x  {key}")


if __name__ == "__main__":
    main()
