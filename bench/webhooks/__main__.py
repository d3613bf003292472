"""Run the webhook benchmark: `python -m bench.webhooks [--rate 2000] [--seconds 30]`.

Starts `anchorflow serve` for a throwaway project (one Intercom-preset source) in its own
process, runs the load generator in another, stops the server with SIGTERM (graceful: the open
chunk is published), then counts the records in the published chunks against the deliveries
answered 2xx. Prints the figures and writes bench/results/webhooks.json. Targets: 0 lost, p99 at
most 50 ms, the scheduled rate achieved.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from anchorflow.sources.chunks import SEALED, TEMPORARY
from bench.machine import machine

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "webhooks.json"
ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
TARGET_P99_MS = 50.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_project(root: Path) -> None:
    source = {"kind": "webhook", "preset": "intercom", "secret": "${BENCH_HOOK_SECRET}"}
    project = {"name": "bench_webhooks", "sources": {"intercom": source}}
    (root / "anchorflow.yml").write_text(yaml.safe_dump(project, sort_keys=False))


def start_server(root: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [str(ANCHORFLOW), "serve", "--project", str(root), "--port", str(port)]
    server = subprocess.Popen(command, env=env)
    until = time.monotonic() + 60
    while time.monotonic() < until:
        if server.poll() is not None:
            raise SystemExit(f"anchorflow serve exited with {server.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("anchorflow serve did not answer /health within 60 s")


def stored_ids(directory: Path) -> tuple[list[str], int]:
    """The ids in the published chunks, and how many .tmp chunks are left (0 after a clean
    stop)."""
    ids: list[str] = []
    for path in sorted(directory.glob(f"*{SEALED}")):
        ids += [json.loads(line)["id"] for line in path.read_bytes().splitlines()]
    return ids, len(list(directory.glob(f"*{TEMPORARY}")))


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def measure(options: argparse.Namespace, root: Path) -> dict[str, Any]:
    write_project(root)
    secret = secrets.token_hex(16)
    env = {**os.environ, "BENCH_HOOK_SECRET": secret}
    port = free_port()
    server = start_server(root, port, env)
    spec = {
        "run": secrets.token_hex(4),
        "secret": secret,
        "host": "127.0.0.1",
        "port": port,
        "path": "/hooks/intercom",
        "rate": options.rate,
        "seconds": options.seconds,
        "connections": options.connections,
        "timeout": 10.0,
        "drain": 15.0,
        "acknowledged_file": str(root / "acknowledged.txt"),
    }
    cpu_before = cpu_seconds(server.pid)
    try:
        load = subprocess.run(
            [sys.executable, "-m", "bench.webhooks.load", json.dumps(spec)],
            env=env,
            capture_output=True,
            text=True,
            timeout=options.seconds + 120,
            check=True,
        )
        cpu_after = cpu_seconds(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=90)
    report: dict[str, Any] = json.loads(load.stdout)
    acknowledged = set((root / "acknowledged.txt").read_text().split())
    stored, leftover = stored_ids(root / ".anchorflow" / "landing" / "intercom" / "events")
    report.update({
        "server_exit": server.returncode,
        "server_user_cpu_s": round(cpu_after[0] - cpu_before[0], 2),
        "server_system_cpu_s": round(cpu_after[1] - cpu_before[1], 2),
        "server_cpu_us_per_request": round(
            (sum(cpu_after) - sum(cpu_before)) / max(1, report["answered"]) * 1e6, 1
        ),
        "stored": len(stored),
        "stored_twice": len(stored) - len(set(stored)),
        "lost": len(acknowledged - set(stored)),
        "leftover_chunks": leftover,
    })  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the load lasts")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="anchorflow-webhooks-bench-") as tmp:
        figures = measure(options, Path(tmp))
    met = (
        figures["lost"] == 0
        and figures["p99_ms"] is not None
        and figures["p99_ms"] <= TARGET_P99_MS
        and figures["achieved_per_s"] >= 0.97 * options.rate
    )
    report = {
        "machine": machine(),
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.webhooks", *sys.argv[1:]]),
        "scheduled_per_s": options.rate,
        "target": {"lost": 0, "p99_ms": TARGET_P99_MS},
        "met": met,
        **figures,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"results: {RESULTS.relative_to(ROOT)}")
    if not met:
        raise SystemExit("a target was not met (see above)")


if __name__ == "__main__":
    main()
