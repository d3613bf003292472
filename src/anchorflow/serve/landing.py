"""What a webhook intake does with its landing directory before it takes a request: hold it
alone, publish what a killed server acknowledged, and remember the ids it recently stored.

Why a leftover is published, trimmed at its last line feed: the intake acknowledges a request
only after the fsync that covers its records, and it writes whole records ending in a line feed
(`chunks.join_items`). So a killed server's `.tmp` holds, up to its last fsync, whole lines of
records that were acknowledged or were about to be; past it, at most the part of a batch whose
fsync never finished (none of its requests was answered 2xx). Cutting after the last line feed
keeps every acknowledged record and drops only a torn, unacknowledged tail; whole lines of an
unanswered batch may stay, and load: their sender retries, and the retry is dropped as a
duplicate (here, by id) or by staging's `unique_key`. Nothing acknowledged is lost, nothing is
loaded twice once deduplicated.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import duckdb

from anchorflow.errors import SourceError
from anchorflow.sources.chunks import (
    NDJSON,
    SEALED,
    TEMPORARY,
    discard_leftover,
    leftover_temporaries,
    publish_leftover,
    sealed_chunks,
)
from anchorflow.warehouse.dialect import json_path

LOCK_FILE = "intake.lock"
BLOCK = 1 << 16


def hold(landing: Path, source: str) -> IO[bytes]:
    """Lock the landing directory for this process (released when the file is closed, or the
    process dies): two servers appending to one source's chunks would publish each other's
    open chunk as a leftover."""
    landing.mkdir(parents=True, exist_ok=True)
    lock = open(landing / LOCK_FILE, "ab")  # noqa: SIM115 - held for the server's life
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise SourceError(
            f"sources.{source}: another `anchorflow serve` receives this source's webhooks "
            f"(it holds {landing / LOCK_FILE}); stop it first"
        ) from None
    return lock


def whole_lines_length(path: Path) -> int:
    """The length of `path` up to and including its last line feed (0 when it has none)."""
    with open(path, "rb") as data:
        end = data.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - BLOCK)
            data.seek(start)
            found = data.read(end - start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
    return 0


def publish_leftovers(directory: Path) -> list[str]:
    """Publish every chunk a killed server left, trimmed to its whole lines (see above)."""
    published = []
    for chunk in leftover_temporaries(directory, formats=[NDJSON]):
        path = directory / f"{chunk}{TEMPORARY}"
        keep = whole_lines_length(path)
        if keep == 0:
            discard_leftover(directory, chunk)
            continue
        with open(path, "r+b") as data:
            data.truncate(keep)
            data.flush()
            os.fsync(data.fileno())
        if publish_leftover(directory, chunk):
            published.append(chunk)
    return published


def _recent_files(directory: Path, wanted: int) -> list[Path]:
    """The newest published chunks that hold at least `wanted` records, oldest first."""
    files: list[Path] = []
    count = 0
    for chunk in reversed(sealed_chunks(directory, formats=[NDJSON])):
        if count >= wanted:
            break
        path = directory / f"{chunk}{SEALED}"
        with open(path, "rb") as data:
            count += sum(block.count(b"\n") for block in iter(lambda: data.read(BLOCK), b""))
        files.append(path)
    return files[::-1]


def recent_ids(directory: Path, path: str, wanted: int, max_line: int) -> Iterator[str]:
    """The sender ids (at `path` in each record) of about the `wanted` newest records stored,
    oldest first: read by DuckDB's JSON reader, not line by line in Python."""
    files = _recent_files(directory, wanted) if wanted else []
    if not files:
        return iter(())
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute(
            f"SELECT json_extract_string(json, {json_path(path.split('.'))}) AS id "
            "FROM read_json_objects(?, format = 'newline_delimited', ignore_errors = true, "
            "maximum_object_size = ?) WHERE id IS NOT NULL",
            [[str(f) for f in files], max(max_line, 16 << 20)],
        ).fetchall()
    finally:
        con.close()
    return (row[0] for row in rows[-wanted:])
