"""The chunk loader alone: landing chunks → raw committed on DuckDB.

`python -m bench.chunk_loader [--records 1000000] [--chunk 100000] [--format arrow|ndjson]`
writes the chunks as the readers do (`chunks.ChunkFile`: ~300-byte backend events, one launch;
Arrow chunks as the readers write by default, or the line format), then times one
`anchorflow run` of the source (land and commit, no staging model: the loader's own cost), and
prints records/s and MB/s. Redis is not involved: the readers' side is bench/redis_bus.

To time the loader's process alone from outside (its start-up included, the writing of the
chunks left out): `--prepare DIR` writes the project and its chunks once, then each
`--load DIR` loads a fresh copy of them (the copy is not timed by the printed figure).
"""

from __future__ import annotations

import argparse
import json
import shutil
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


def write_chunks(landing: Path, records: int, size: int, fmt: str = "arrow") -> int:
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


def write_project(root: Path) -> None:
    source = {"kind": "redis", "url": "redis://127.0.0.1:9/0",
              "queues": {"events": {"list": "bus:events"}}}  # fmt: skip
    project_file = {"name": "bench", "warehouse": {"path": "warehouse.duckdb"},
                    "sources": {"backend": source}, "staging": {}}  # fmt: skip
    (root / "anchorflow.yml").write_text(yaml.safe_dump(project_file))


def load(root: Path, records: int, size: int, fmt: str) -> None:
    """One `anchorflow run` of the source over the chunks landed under `root`, timed."""
    started = time.perf_counter()
    with Pipeline(load_project(root)) as pipeline:
        summary = pipeline.run(["backend"])
    seconds = time.perf_counter() - started
    assert summary.rows == records, summary.rows
    print(
        f"{records:,} records ({size / 1e6:,.0f} MB, {size / records:.0f} B each) "
        f"in {len(summary.windows)} {fmt} chunks → raw committed on DuckDB in "
        f"{seconds:.2f} s: {records / seconds:,.0f} records/s, {size / 1e6 / seconds:,.0f} MB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--format", choices=["arrow", "ndjson"], default="arrow")
    parser.add_argument(
        "--prepare",
        type=Path,
        metavar="DIR",
        help="only write the project and its chunks into DIR (kept)",
    )
    parser.add_argument("--load", type=Path, metavar="DIR",
                        help="only load a copy of the chunks --prepare wrote into DIR: the "
                        "process is the loader alone, its start-up included")  # fmt: skip
    args = parser.parse_args()
    if args.load:
        root = args.load / "project"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(args.load / "prepared", root)
        info = json.loads((root / "chunks.json").read_text())
        load(root, info["records"], info["bytes"], info["format"])
        return
    if args.prepare:
        root = args.prepare / "prepared"
        shutil.rmtree(args.prepare, ignore_errors=True)
        root.mkdir(parents=True)
        write_project(root)
        size = write_chunks(
            chunks.landing_dir(root, "backend"), args.records, args.chunk, args.format
        )
        info = {"records": args.records, "bytes": size, "format": args.format}
        (root / "chunks.json").write_text(json.dumps(info))
        return
    with tempfile.TemporaryDirectory(prefix="chunk-loader-") as directory:
        root = Path(directory)
        write_project(root)
        size = write_chunks(
            chunks.landing_dir(root, "backend"), args.records, args.chunk, args.format
        )
        load(root, args.records, size, args.format)


if __name__ == "__main__":
    main()
