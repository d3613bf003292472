"""Files published for other tools: whole or not at all, and the previous one until then.

A file is written under a temporary name beside its target, fsynced, renamed over the target
(atomic within one directory), and the directory fsynced, so a reader opens the old file or the
new one, never half of one, and a crash at any instruction leaves the old one in place. A crash
leaves the temporary file behind; the next publication of the same target removes it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from anchorflow.crashpoints import crash_point

T = TypeVar("T")
TEMPORARY = ".{name}.{pid}.tmp"  # hidden: a reader's glob (`*.parquet`) never matches it


def temporary_path(target: Path) -> Path:
    return target.with_name(TEMPORARY.format(name=target.name, pid=os.getpid()))


def leftovers(target: Path) -> list[Path]:
    """Temporary files that a cut-off publication of `target` left behind."""
    return sorted(target.parent.glob(TEMPORARY.format(name=target.name, pid="*")))


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


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable (where the platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
