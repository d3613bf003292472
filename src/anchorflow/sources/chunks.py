"""Landing chunks: the durable files that continuously running intake (Redis readers, the
webhook server) writes, and that one loader moves into `raw`.

Intake never touches the warehouse (one writer holds it); it writes chunk files under the
source's landing directory (default `<project>/.anchorflow/landing/<source>`):

    <queue>/<chunk_id>.ndjson        sealed: durable, ready to load, loaded exactly once
    <queue>/<chunk_id>.ndjson.tmp    being written, or left by a killed writer
    <queue>/<chunk_id>.arrow(.tmp)   the same, in Arrow's IPC file format (`chunk_arrow`)
    launches/<launch_id>.json        who wrote: kind, source, queue, host, pid, started_at

A launch id names one start of a writer (`20261130T221500123456Z-a1b2c3`); a chunk id is
`<launch_id>-<seq>` (seq from 1, six digits), so sorting ids sorts chunks by launch, then order.
A chunk holds its records in one of two formats, told apart by the file's suffix: one record
per line (`ndjson`: the webhook intake, which appends and fsyncs requests as they come, and
chunks of earlier versions), or Arrow (`arrow`: the Redis readers; the loader takes its column
as it is instead of splitting lines, and a record keeps its line breaks). The loader's window
key is the chunk id and a record's position in the chunk is its `line_no`. In a line chunk, a
record holding a line break cannot be one line as it is: `one_line` makes it one (see there).

Making a chunk durable is `ChunkFile`: append to the temporary file, `seal()` (flush + fsync),
then whatever the writer must do before the chunk counts (remove the items from Redis), then
`publish()` (rename + fsync of the directory). A writer killed between seal and publish leaves a
`.tmp` whose fate its own protocol decides (`publish_leftover` or `discard_leftover`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anchorflow.config.project import STATE_DIR
from anchorflow.durable import fsync_directory
from anchorflow.sources.chunk_arrow import ArrowWriter, chunk_items, count_items

NDJSON = "ndjson"
ARROW = "arrow"
FORMATS = (NDJSON, ARROW)
SEALED = ".ndjson"  # the line format's suffixes
TEMPORARY = ".ndjson.tmp"
LAUNCHES = "launches"
LAUNCH_ID = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{6}$")
CHUNK_ID = re.compile(r"^(\d{8}T\d{12}Z-[0-9a-f]{6})-(\d{6,})$")


def landing_dir(root: Path, source: str, configured: str | None = None) -> Path:
    """Where a source's chunks land: `configured` (relative to the project) or the default."""
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else root / path
    return root / STATE_DIR / "landing" / source


def new_launch_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(3)}"


def chunk_id(launch_id: str, seq: int) -> str:
    return f"{launch_id}-{seq:06d}"


def launch_of(chunk: str) -> str | None:
    """The launch id a chunk id starts with, or None when `chunk` is not a chunk id."""
    match = CHUNK_ID.match(chunk)
    return match.group(1) if match else None


def write_launch(landing: Path, launch_id: str, **info: Any) -> dict[str, Any]:
    """Record who a launch is (atomically: a reader never sees half a file)."""
    record = {
        "launch_id": launch_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        **info,
    }
    directory = landing / LAUNCHES
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{launch_id}.json"
    temporary = target.with_suffix(".json.tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(record, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
    fsync_directory(directory)
    return record


def read_launch(landing: Path, launch_id: str) -> dict[str, Any] | None:
    try:
        with open(landing / LAUNCHES / f"{launch_id}.json", encoding="utf-8") as source:
            value = json.load(source)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def one_line(item: bytes) -> bytes:
    """`item` on one line. JSON allows a line break only between tokens, where a space means
    the same: a record that parses as JSON has its CR and LF bytes turned into spaces (the same
    value, key order and text otherwise kept). One that does not parse is quarantined by the
    loader anyway; its breaks are written as the two characters `\\n` / `\\r`, so the
    quarantined text shows where they were."""
    try:
        json.loads(item)
    except ValueError:
        return item.replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    return item.replace(b"\r", b" ").replace(b"\n", b" ")


def join_items(items: Sequence[bytes]) -> bytes:
    """The chunk text of `items`: one per line, each ending in a line feed. Items with a line
    break are rare; they are found without a Python loop over the others (a count of line feeds
    in the joined text)."""
    if not items:
        return b""
    data = b"\n".join(items)
    if data.count(b"\n") == len(items) - 1 and b"\r" not in data:
        return data + b"\n"
    return b"\n".join(one_line(i) if b"\n" in i or b"\r" in i else i for i in items) + b"\n"


def sealed_suffix(fmt: str) -> str:
    return f".{fmt}"


def temporary_suffix(fmt: str) -> str:
    return f".{fmt}.tmp"


class ChunkFile:
    """One chunk being written to `<directory>/<chunk_id>.<fmt>.tmp` (`fmt`: one of
    `FORMATS`)."""

    def __init__(self, directory: Path, chunk: str, fmt: str = NDJSON) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown chunk format {fmt!r}")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.chunk_id = chunk
        self.format = fmt
        self.temporary = directory / f"{chunk}{temporary_suffix(fmt)}"
        self.sealed = directory / f"{chunk}{sealed_suffix(fmt)}"
        self.items = 0
        self.bytes = 0
        self._out = open(self.temporary, "wb")  # noqa: SIM115 - closed by seal/discard
        self._arrow = ArrowWriter(self._out) if fmt == ARROW else None

    def append(self, items: Sequence[bytes]) -> None:
        if self._arrow is not None:
            self.bytes += self._arrow.append(items)
            self.items += len(items)
            return
        data = join_items(items)
        self._out.write(data)
        self.items += len(items)
        self.bytes += len(data)

    def append_text(self, data: bytes, count: int) -> None:
        """Append `count` records already joined by `join_items` (the line format)."""
        if self._arrow is not None:
            raise ValueError("append_text writes lines: an Arrow chunk takes items")
        self._out.write(data)
        self.items += count
        self.bytes += len(data)

    def sync(self) -> None:
        """Make what was appended durable and keep writing (a webhook intake's group commit:
        each fsync covers the requests it answers)."""
        self._out.flush()
        os.fsync(self._out.fileno())

    def seal(self) -> None:
        """Make the temporary file durable (it is not visible to the loader yet)."""
        if self._arrow is not None:
            self._arrow.close()
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()

    def publish(self) -> Path:
        """Rename the sealed file into place, durably: from now on the loader sees it."""
        os.replace(self.temporary, self.sealed)
        fsync_directory(self.directory)
        return self.sealed

    def discard(self) -> None:
        if not self._out.closed:
            self._out.close()
        self.temporary.unlink(missing_ok=True)


def _ids(directory: Path, suffixes: Sequence[str]) -> list[str]:
    if not directory.is_dir():
        return []
    found = {
        p.name[: -len(suffix)]
        for p in directory.iterdir()
        for suffix in suffixes
        if p.name.endswith(suffix)
    }
    return sorted(c for c in found if CHUNK_ID.match(c))


def sealed_chunks(directory: Path, formats: Sequence[str] = FORMATS) -> list[str]:
    """The ids of the sealed chunks in `directory` (of any of `formats`), in order."""
    return _ids(directory, [sealed_suffix(f) for f in formats])


def leftover_temporaries(
    directory: Path, launch_id: str | None = None, formats: Sequence[str] = FORMATS
) -> list[str]:
    """The ids of chunks whose temporary file is there (all, or one launch's)."""
    found = _ids(directory, [temporary_suffix(f) for f in formats])
    return [c for c in found if launch_id is None or launch_of(c) == launch_id]


def publish_leftover(directory: Path, chunk: str) -> bool:
    """Publish a dead writer's sealed temporary (its items already left the queue). False when
    another process published it first."""
    for fmt in FORMATS:
        try:
            os.replace(
                directory / f"{chunk}{temporary_suffix(fmt)}",
                directory / f"{chunk}{sealed_suffix(fmt)}",
            )
        except FileNotFoundError:
            continue
        fsync_directory(directory)
        return True
    return False


def discard_leftover(directory: Path, chunk: str) -> None:
    """Remove a dead writer's temporary whose items are still in the queue (requeued)."""
    for fmt in FORMATS:
        (directory / f"{chunk}{temporary_suffix(fmt)}").unlink(missing_ok=True)


def chunk_paths(directory: Path, chunk: str) -> list[Path]:
    """Where a sealed chunk may be: one path per format (one of them at most exists)."""
    return [directory / f"{chunk}{sealed_suffix(fmt)}" for fmt in FORMATS]


def chunk_path(directory: Path, chunk: str) -> Path:
    """The sealed chunk's file (the line format's path when there is none)."""
    paths = chunk_paths(directory, chunk)
    return next((p for p in paths if p.exists()), paths[0])


def chunk_format(path: Path) -> str:
    """The format of a chunk file, from its suffix."""
    return ARROW if path.name.endswith(sealed_suffix(ARROW)) else NDJSON


def chunk_records(path: Path) -> list[bytes]:
    """The records of a sealed chunk file, in order (for tools and tests: the loader reads a
    chunk in bulk)."""
    data = path.read_bytes()
    return chunk_items(data) if chunk_format(path) == ARROW else data.splitlines()


def record_count(path: Path) -> int:
    """How many records a sealed chunk file holds."""
    if chunk_format(path) == ARROW:
        return count_items(path)
    with open(path, "rb") as data:
        return sum(block.count(b"\n") for block in iter(lambda: data.read(1 << 20), b""))
