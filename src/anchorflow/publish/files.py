"""Files published for other tools: whole or not at all, and the previous one until then.

A file is written under a temporary name beside its target, fsynced, renamed over the target
(atomic within one directory), and the directory fsynced, so a reader opens the old file or the
new one, never half of one, and a crash at any instruction leaves the old one in place. A crash
leaves the temporary file behind; the next publication of the same target removes it, once the
process named in its name (its PID) is gone: two publications of one target at once (two
`export`s, or `export` beside `query -o`, all readers) each write their own temporary file and
leave the other's alone; the last rename wins, and each file is whole.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from anchorflow.crashpoints import crash_point
from anchorflow.durable import fsync, fsync_directory

T = TypeVar("T")
TEMPORARY = ".{name}.{pid}.tmp"  # hidden: a reader's glob (`*.parquet`) never matches it


def temporary_path(target: Path) -> Path:
    return target.with_name(TEMPORARY.format(name=target.name, pid=os.getpid()))


def leftovers(target: Path) -> list[Path]:
    """Temporary files that a cut-off publication of `target` left behind: those of processes
    that are gone (a live one is writing its file now)."""
    found = target.parent.glob(TEMPORARY.format(name=target.name, pid="*"))
    return sorted(path for path in found if not _alive(_pid_of(path, target.name)))


def _pid_of(path: Path, name: str) -> int | None:
    digits = path.name[len(name) + 2 : -len(".tmp")]  # `.{name}.{pid}.tmp`
    return int(digits) if digits.isdigit() else None


def _alive(pid: int | None) -> bool:
    """Whether process `pid` exists (a PID reused since is taken for alive: its file stays
    until that process is gone too, which costs disk space, never a reader's file)."""
    if pid is None:
        return False
    if pid == os.getpid():
        return False  # ours, left by an earlier publication of this process that failed
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OverflowError, OSError):
        return False
    return True


def publish_file(target: Path, write: Callable[[Path], T]) -> T:
    """Call `write(path)` to write the file at a temporary path, then put it at `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in leftovers(target):
        stale.unlink(missing_ok=True)
    temporary = temporary_path(target)
    try:
        result = write(temporary)
        fsync(temporary)
        crash_point("publish_before_rename")
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    fsync_directory(target.parent)
    return result
