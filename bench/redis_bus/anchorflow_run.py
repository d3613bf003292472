"""(c) anchorflow: 2 reader processes (`ReaderPool`, as `anchorflow read SOURCE --procs 2`) and
the loader (`bench.redis_bus.loader`, as `anchorflow load SOURCE --every 1s`), list → raw
committed in the DuckDB warehouse of a throwaway project.

The clock starts before the processes do (their start-up is counted: `per_s`) and stops at the
wall time the loader reports for the run that brought raw to every event; `after_start_up_per_s`
counts from the start of the loader's first run instead (its imports done, about 1 s on a quiet
machine, more on a busy one). Meanwhile the RSS of each
reader and of the loader is sampled (psutil), and the list's length is polled to see when
the readers had taken everything (LLEN only: it costs Redis nothing measurable).
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import duckdb
import psutil
import redis
import yaml

from anchorflow.config import load_project
from anchorflow.sources.redis.supervise import ReaderPool

SOURCE, QUEUE = "backend", "events"
SAMPLE_EVERY = 0.25


def write_project(
    root: Path, url: str, key: str, chunk_timeout: str, chunk_format: str = "arrow"
) -> None:
    source = {"kind": "redis", "url": url, "model_field": "type", "queues": {QUEUE: {"list": key}},
              "chunk_timeout": chunk_timeout, "chunk_format": chunk_format}  # fmt: skip
    project = {"name": "bench_redis_bus", "warehouse": {"path": "warehouse.duckdb"},
               "sources": {SOURCE: source}, "staging": {}}  # fmt: skip
    (root / "anchorflow.yml").write_text(yaml.safe_dump(project, sort_keys=False))


@dataclass
class Memory:
    """RSS samples (MB) of named processes. Those taken before the first commit (imports,
    the first chunks filling up) are kept apart: the trend is over the steady drain."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    warm_up: dict[str, list[float]] = field(default_factory=dict)

    cpu: dict[str, float] = field(default_factory=dict)  # user + system seconds, last seen

    def sample(self, processes: dict[str, psutil.Process], steady: bool) -> None:
        into = self.samples if steady else self.warm_up
        for name, process in processes.items():
            try:
                rss = process.memory_info().rss / 2**20
                times = process.cpu_times()
            except psutil.Error:
                continue
            into.setdefault(name, []).append(rss)
            self.cpu[name] = times.user + times.system

    def summary(self) -> dict[str, dict[str, float]]:
        """Per process: peak (warm-up included), and the mean of the first and the last third
        of the steady samples (flat memory: last ≈ first)."""
        out = {}
        for name, values in self.samples.items():
            third = max(1, len(values) // 3)
            out[name] = {
                "peak_mb": round(max(values + self.warm_up.get(name, [])), 1),
                "first_third_mb": round(sum(values[:third]) / third, 1),
                "last_third_mb": round(sum(values[-third:]) / third, 1),
                "samples": len(values),
            }
        return out


def _lines(stream: IO[bytes], into: queue.Queue[dict[str, Any]]) -> None:
    for line in stream:
        into.put(json.loads(line))


def drain(root: Path, url: str, key: str, total: int, procs: int, timeout: float) -> dict[str, Any]:
    """Start the readers and the loader, wait until the loader has committed `total` rows."""
    client = redis.Redis.from_url(url, socket_timeout=30)
    project = load_project(root)
    pool = ReaderPool(project, SOURCE, [QUEUE], procs)
    command = [sys.executable, "-m", "bench.redis_bus.loader", str(root), SOURCE, "1"]
    memory, runs, reports = Memory(), [], queue.Queue()  # type: ignore[var-annotated]
    started = time.time()
    loader = subprocess.Popen(command, stdout=subprocess.PIPE)
    pool.start()
    assert loader.stdout is not None
    threading.Thread(target=_lines, args=(loader.stdout, reports), daemon=True).start()
    watched = {f"reader_{i + 1}": psutil.Process(pid) for i, pid in enumerate(pool.pids)}
    watched["loader"] = psutil.Process(loader.pid)
    committed, taken_at, done_at = 0, None, None
    try:
        while committed < total:
            if time.time() - started > timeout:
                raise RuntimeError(f"only {committed} of {total} rows in raw after {timeout} s")
            if loader.poll() is not None or pool.alive() < procs:
                raise RuntimeError("the loader or a reader exited during the drain")
            memory.sample(watched, steady=committed > 0)
            if taken_at is None and client.llen(key) == 0:
                taken_at = time.time()
            try:
                while True:
                    run = reports.get(timeout=SAMPLE_EVERY)
                    runs.append(run)
                    committed += run["rows"]
                    done_at = run["at"]
                    if committed >= total:
                        break
            except queue.Empty:
                pass
    finally:
        pool.stop()
        loader.send_signal(signal.SIGTERM)
        loader.wait(120)
    assert done_at is not None
    seconds = done_at - started
    # From the loader's first run (empty or not: its imports done) to the end.
    first_run = runs[0]["at"] - runs[0]["seconds"]
    return {
        "events": committed,
        "seconds": round(seconds, 2),
        "per_s": round(committed / seconds),
        "start_up_s": round(first_run - started, 2),
        "after_start_up_per_s": round(committed / (done_at - first_run)),
        "readers_took_all_s": round(taken_at - started, 2) if taken_at else None,
        "loader_runs": sum(1 for r in runs if r["rows"]),
        "chunks": sum(r["windows"] for r in runs),
        "loader_busy_s": round(sum(r["seconds"] for r in runs), 2),
        "loader_rows_per_busy_s": round(committed / max(1e-9, sum(r["seconds"] for r in runs))),
        "memory": memory.summary(),
        # CPU seconds each process had used by the last sample (start-up included): what a
        # run costs whatever share of a busy machine it got.
        "cpu_s": {name: round(seconds, 2) for name, seconds in memory.cpu.items()},
        "cpu_us_per_event": round(1e6 * sum(memory.cpu.values()) / committed, 2),
        **check_raw(root, total),
    }


def check_raw(root: Path, total: int) -> dict[str, int]:
    """Each event exactly once in raw (read after the loader stopped)."""
    table = f"raw.{SOURCE}_{QUEUE}"
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as db:
        row = db.execute(f"SELECT count(*), count(DISTINCT json_extract_string(record, '$.id')) "
                     f"FROM {table}").fetchone()  # fmt: skip
    assert row is not None
    rows, distinct = int(row[0]), int(row[1])
    if rows != total or distinct != total:
        raise RuntimeError(f"raw holds {rows} rows, {distinct} distinct ids; expected {total}")
    return {"raw_rows": rows, "raw_distinct_ids": distinct}
