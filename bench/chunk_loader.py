"""The chunk loader alone: landing chunks → raw committed on DuckDB.

`python -m bench.chunk_loader [--records 1000000] [--chunk 100000] [--format arrow|ndjson]`
writes the chunks as the readers do (`chunks.ChunkFile`: ~300-byte backend events, one launch;
Arrow chunks as the readers write by default, or the line format), then times one
`anchorflow run` of the source (land and commit, no staging model: the loader's own cost), and
prints records/s and MB/s. Redis is not involved: the readers' side is bench/redis_bus.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

from anchorflow.config import load_project
from anchorflow.run import Pipeline
from anchorflow.sources import chunks

PAD = "p" * 170  # brings an event to about 300 bytes


def event(n: int) -> bytes:
    return json.dumps({
        "type": "order_paid", "id": n, "user_id": f"u{n % 50_000:06d}",
        "at": f"2026-11-30T12:{n // 60 % 60:02d}:{n % 60:02d}.123456Z",
        "amount": n % 997 / 10, "currency": "EUR", "meta": PAD,
    }).encode()  # fmt: skip


def write_chunks(landing: Path, records: int, size: int, fmt: str = chunks.ARROW) -> int:
    launch = chunks.new_launch_id()
    chunks.write_launch(landing, launch, kind="reader", source="backend", queue="events")
    written = 0
    for seq, start in enumerate(range(0, records, size), 1):
        file = chunks.ChunkFile(landing / "events", chunks.chunk_id(launch, seq), fmt)
        file.append([event(n) for n in range(start, min(records, start + size))])
        file.seal()
        file.publish()
        written += file.bytes
    return written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--format", choices=chunks.FORMATS, default=chunks.ARROW)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chunk-loader-") as directory:
        root = Path(directory)
        source = {"kind": "redis", "url": "redis://127.0.0.1:9/0",
                  "queues": {"events": {"list": "bus:events"}}}  # fmt: skip
        project_file = {"name": "bench", "warehouse": {"path": "warehouse.duckdb"},
                        "sources": {"backend": source}, "staging": {}}  # fmt: skip
        (root / "anchorflow.yml").write_text(yaml.safe_dump(project_file))
        project = load_project(root)
        size = write_chunks(
            chunks.landing_dir(root, "backend"), args.records, args.chunk, args.format
        )
        started = time.perf_counter()
        with Pipeline(project) as pipeline:
            summary = pipeline.run(["backend"])
        seconds = time.perf_counter() - started
        assert summary.rows == args.records, summary.rows
        print(
            f"{args.records:,} records ({size / 1e6:,.0f} MB, {size / args.records:.0f} B each) "
            f"in {len(summary.windows)} {args.format} chunks → raw committed on DuckDB in "
            f"{seconds:.2f} s: "
            f"{args.records / seconds:,.0f} records/s, {size / 1e6 / seconds:,.0f} MB/s"
        )


if __name__ == "__main__":
    main()
