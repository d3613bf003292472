"""The load generator: `python -m bench.webhooks.load SPEC_JSON`, prints a JSON report.

Raw HTTP/1.1 over asyncio streams with keep-alive (the client must not be the bottleneck):
requests are built and signed up front, and connection k sends requests k, k+C, k+2C, ... each
at its scheduled time (or at once when it is late). Every read has a deadline; the whole run
stops at `seconds` + `drain` whatever the server does.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from anchorflow.serve.signatures import sign
from anchorflow.sources.webhook.config import WebhookConfig

PADDING = "x" * 400  # a notification of about 600 bytes


def build_requests(spec: dict[str, Any]) -> tuple[list[bytes], list[str]]:
    config = WebhookConfig(kind="webhook", preset="intercom", secret=SecretStr(spec["secret"]))
    total = int(spec["rate"] * spec["seconds"])
    requests, ids = [], []
    for n in range(total):
        notification = f"notif_{spec['run']}_{n}"
        body = json.dumps({
            "type": "notification_event",
            "id": notification,
            "topic": "conversation.user.created",
            "data": {"item": {"type": "conversation", "id": str(n), "body": PADDING}},
        }).encode()  # fmt: skip
        headers = {"Content-Type": "application/json", **sign(config, body, time.time())}
        head = f"POST {spec['path']} HTTP/1.1\r\nHost: {spec['host']}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        requests.append(head.encode() + body)
        ids.append(notification)
    return requests, ids


async def read_response(reader: asyncio.StreamReader, timeout: float) -> int:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await asyncio.wait_for(reader.readexactly(length), timeout)
    return status


async def connection(
    k: int, spec: dict[str, Any], requests: list[bytes], start: float, out: dict[str, Any]
) -> None:
    count, rate, stop_at = len(requests), spec["rate"], start + spec["seconds"] + spec["drain"]
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    for n in range(k, count, spec["connections"]):
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.monotonic() > stop_at:
            out["not_sent"] += 1
            continue
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(spec["host"], spec["port"]), spec["timeout"]
                )
            assert reader is not None
            writer.write(requests[n])
            status = await read_response(reader, spec["timeout"])
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            out["errors"][type(error).__name__] = out["errors"].get(type(error).__name__, 0) + 1
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        out["latencies"].append(time.monotonic() - due)
        out["status"][status] = out["status"].get(status, 0) + 1
        if 200 <= status < 300:
            out["acknowledged"].append(n)
    if writer is not None:
        writer.close()


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    requests, ids = build_requests(spec)
    out: dict[str, Any] = {"latencies": [], "status": {}, "errors": {}, "acknowledged": [],
                           "not_sent": 0}  # fmt: skip
    start = time.monotonic() + 0.5
    await asyncio.gather(
        *(connection(k, spec, requests, start, out) for k in range(spec["connections"]))
    )
    elapsed = time.monotonic() - start
    latencies = sorted(out["latencies"])

    def quantile(q: float) -> float | None:
        return (
            round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)
            if latencies
            else None
        )

    Path(spec["acknowledged_file"]).write_text("\n".join(ids[n] for n in out["acknowledged"]))
    return {
        "requests": len(requests),
        "answered": len(latencies),
        "acknowledged": len(out["acknowledged"]),
        "status": out["status"],
        "errors": out["errors"],
        "not_sent": out["not_sent"],
        "seconds": round(elapsed, 2),
        "achieved_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": quantile(0.50),
        "p99_ms": quantile(0.99),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
