"""Run the Redis bus benchmark: `python -m bench.redis_bus [--events 2000000]`.

(a) and (c) drain all `--events`; (b), a per-item loop about ten times slower, drains the
first `--article-events` of the same list (its rate does not depend on the list's length).
Prints the figures and writes bench/results/redis_bus.json (redis_bus_<N>.json for another
`--events`, e.g. the 10M-event memory run). Targets for (c): at least 150k
events/s, 30% of (a) and 10× (b), and flat memory (the last third's RSS within 10% + 20 MB of
the first third's, for each process).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import redis

from anchorflow.dev.redis_server import LocalRedis
from bench.machine import machine
from bench.redis_bus import anchorflow_run, baselines
from bench.redis_bus.events import check_sample, fill

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
DEFAULT_EVENTS = 2_000_000
KEY = "bus:events"
TARGET = {"per_s": 150_000, "of_ceiling": 0.30, "times_article": 10.0}


def filled(client: redis.Redis, total: int) -> dict[str, Any]:
    started = time.perf_counter()
    pushed = fill(client, KEY, total)
    memory = client.info("memory")["used_memory"]
    return {"bytes": pushed, "fill_s": round(time.perf_counter() - started, 1),
            "redis_used_mb": round(memory / 2**20)}  # fmt: skip


def rate(drained: int, seconds: float) -> dict[str, Any]:
    return {"events": drained, "seconds": round(seconds, 2), "per_s": round(drained / seconds)}


class RedisCPU:
    """The CPU seconds (user + system) redis-server used since the last mark."""

    def __init__(self, server: LocalRedis) -> None:
        assert server.process is not None
        self._process = psutil.Process(server.process.pid)
        self._last = self._seconds()

    def _seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def mark(self) -> float:
        now = self._seconds()
        spent, self._last = now - self._last, now
        return round(spent, 2)


def measure(options: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    check_sample()
    figures: dict[str, Any] = {}
    with LocalRedis() as server:
        client = redis.Redis.from_url(server.url, socket_timeout=60)
        redis_cpu = RedisCPU(server)
        fill_a = filled(client, options.events)
        redis_cpu.mark()
        figures["ceiling"] = rate(*baselines.ceiling(client, KEY))
        figures["ceiling"]["redis_server_cpu_s"] = redis_cpu.mark()
        filled(client, options.article_events)
        figures["article"] = rate(*baselines.article(client, KEY, tmp / "article.json"))
        (tmp / "article.json").unlink()
        fill_c = filled(client, options.events)
        project = tmp / "project"
        project.mkdir()
        anchorflow_run.write_project(
            project, server.url, KEY, options.chunk_timeout, options.chunk_format
        )
        redis_cpu.mark()
        figures["anchorflow"] = anchorflow_run.drain(
            project, server.url, KEY, options.events, options.procs, options.timeout
        )
        # redis-server's own CPU during (c): the take scripts, the processing lists' clean-up
        figures["anchorflow"]["redis_server_cpu_s"] = redis_cpu.mark()
    figures["event_bytes_mean"] = round(fill_a["bytes"] / options.events)
    figures["fill"] = fill_c
    return figures


def verdict(figures: dict[str, Any]) -> dict[str, Any]:
    ours = figures["anchorflow"]["per_s"]
    of_ceiling = ours / figures["ceiling"]["per_s"]
    times_article = ours / figures["article"]["per_s"]
    flat = {
        name: m["last_third_mb"] <= 1.1 * m["first_third_mb"] + 20
        for name, m in figures["anchorflow"]["memory"].items()
    }
    return {
        "of_ceiling": round(of_ceiling, 3),
        "times_article": round(times_article, 1),
        "met": {
            "per_s": ours >= TARGET["per_s"],
            "of_ceiling": of_ceiling >= TARGET["of_ceiling"],
            "times_article": times_article >= TARGET["times_article"],
            "memory_flat": all(flat.values()),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="drained by (a), (c)")
    parser.add_argument("--article-events", type=int, default=200_000, help="drained by (b)")
    parser.add_argument("--procs", type=int, default=2, help="reader processes for (c)")
    parser.add_argument("--chunk-timeout", default="1s", help="the source's chunk_timeout")
    parser.add_argument(
        "--chunk-format",
        choices=["arrow", "ndjson"],
        default="arrow",
        help="how the readers write chunks (the source's chunk_format)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up (c) after (s)")
    options = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="anchorflow-redis-bus-") as tmp:
        figures = measure(options, Path(tmp))
    # The machine may be shared: its load says how much of it the run had.
    figures["load_average_before_after"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    result = verdict(figures)
    report = {
        "machine": machine(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.redis_bus", *sys.argv[1:]]),
        "target": TARGET,
        **result,
        **figures,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=1))
    # The quick run and the long (memory) run are both kept: redis_bus.json, redis_bus_<N>.json.
    suffix = "" if options.events == DEFAULT_EVENTS else f"_{options.events}"
    results = RESULTS / f"redis_bus{suffix}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=2))
    print(f"results: {results.relative_to(ROOT)}")
    if not all(result["met"].values()):
        raise SystemExit("a target was not met (see above)")


if __name__ == "__main__":
    main()
