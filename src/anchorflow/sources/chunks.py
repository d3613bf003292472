"""Landing chunks: the durable files that continuously running intake (Redis readers, the
webhook server) writes, and that one loader moves into `raw`.

Intake never touches the warehouse (one writer holds it); it writes chunk files under the
source's landing directory (default `<project>/.anchorflow/landing/<source>`):

    <queue>/<chunk_id>.ndjson        sealed: durable, ready to load, loaded exactly once
    <queue>/<chunk_id>.ndjson.tmp    being written, or left by a killed writer
    launches/<launch_id>.json        who wrote: kind, source, queue, host, pid, started_at

A launch id names one start of a writer (`20261130T221500123456Z-a1b2c3`); a chunk id is
`<launch_id>-<seq>` (seq from 1, six digits), so sorting ids sorts chunks by launch, then order.
A chunk holds one record per line, as it arrived; the loader's window key is the chunk id and a
record's position in the chunk is its `line_no`. A record holding a line break cannot be one
line as it is: `one_line` makes it one (see there).

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

SEALED = ".ndjson"
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


class ChunkFile:
    """One chunk being written to `<directory>/<chunk_id>.ndjson.tmp`."""

    def __init__(self, directory: Path, chunk: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.chunk_id = chunk
        self.temporary = directory / f"{chunk}{TEMPORARY}"
        self.sealed = directory / f"{chunk}{SEALED}"
        self.items = 0
        self.bytes = 0
        self._out = open(self.temporary, "wb")  # noqa: SIM115 - closed by seal/discard

    def append(self, items: Sequence[bytes]) -> None:
        data = join_items(items)
        self._out.write(data)
        self.items += len(items)
        self.bytes += len(data)

    def append_text(self, data: bytes, count: int) -> None:
        """Append `count` records already joined by `join_items`."""
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


def sealed_chunks(directory: Path) -> list[str]:
    """The ids of the sealed chunks in `directory`, in order."""
    if not directory.is_dir():
        return []
    found = [p.name[: -len(SEALED)] for p in directory.iterdir() if p.name.endswith(SEALED)]
    return sorted(c for c in found if CHUNK_ID.match(c))


def leftover_temporaries(directory: Path, launch_id: str | None = None) -> list[str]:
    """The ids of chunks whose temporary file is there (all, or one launch's)."""
    if not directory.is_dir():
        return []
    found = [p.name[: -len(TEMPORARY)] for p in directory.iterdir() if p.name.endswith(TEMPORARY)]
    return sorted(
        c for c in found if CHUNK_ID.match(c) and (launch_id is None or launch_of(c) == launch_id)
    )


def publish_leftover(directory: Path, chunk: str) -> bool:
    """Publish a dead writer's sealed temporary (its items already left the queue). False when
    another process published it first."""
    try:
        os.replace(directory / f"{chunk}{TEMPORARY}", directory / f"{chunk}{SEALED}")
    except FileNotFoundError:
        return False
    fsync_directory(directory)
    return True


def discard_leftover(directory: Path, chunk: str) -> None:
    """Remove a dead writer's temporary whose items are still in the queue (requeued)."""
    (directory / f"{chunk}{TEMPORARY}").unlink(missing_ok=True)


def chunk_path(directory: Path, chunk: str) -> Path:
    return directory / f"{chunk}{SEALED}"
