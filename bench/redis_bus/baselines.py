"""The two contenders without anchorflow: the ceiling and the reference article's loop.

(a) `ceiling`: one client drains the list with `LPOP key 5000` (redis-py with hiredis) and
writes each batch to /dev/null: what one connection can take out of Redis at all.
(b) `article`: the reference article's reader (its pseudocode: `row = redis.lpop('Model')`,
then `f.write(row)`, item by item) writing a JSON-lines file. Its per-row statistics
(`save_statistics`) are left out, which only flatters it.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis

CEILING_BATCH = 5000


def ceiling(client: redis.Redis, key: str) -> tuple[int, float]:
    """Events drained and seconds taken."""
    drained = 0
    started = time.perf_counter()
    with open("/dev/null", "wb") as sink:
        while True:
            items = client.lpop(key, CEILING_BATCH)
            if not items:
                break
            sink.write(b"\n".join(items))  # type: ignore[arg-type]
            drained += len(items)  # type: ignore[arg-type]
    return drained, time.perf_counter() - started


def article(client: redis.Redis, key: str, path: Path) -> tuple[int, float]:
    """Events drained and seconds taken (the file flushed and closed)."""
    drained = 0
    started = time.perf_counter()
    with open(path, "wb") as file:
        while True:
            row = client.lpop(key)
            if row is None:
                break
            file.write(row)  # type: ignore[arg-type]
            file.write(b"\n")
            drained += 1
    return drained, time.perf_counter() - started
