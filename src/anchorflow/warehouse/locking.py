"""Who may open the warehouse file, and waiting for them to let go.

An embedded DuckDB file has one writer and no readers while it is open for writing, or any number
of read-only readers (see docs/concurrency.md). A command that meets a held lock waits for it,
retrying with a bounded backoff, up to `warehouse.lock_timeout`, then fails with one line
naming the process that holds it (its PID and program, from /proc where readable).

A writer also holds a *writer claim* for as long as it is open, including while it has let go
of the file during a network wait: a flock on `<file>.writer.lock`. It keeps a second anchorflow
writer (another `run`) from slipping into that gap, where it would fetch the same windows and
clear the first one's downloads in flight; readers never take it, so they can come and go.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from anchorflow.deadline import describe
from anchorflow.errors import WarehouseError, WarehouseLocked
from anchorflow.redact import shorten

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_RETRY = 0.05  # seconds; doubled after every failed try, up to LONGEST_RETRY
LONGEST_RETRY = 2.0
QUIET_WAIT = 1.0  # a wait shorter than this is not worth a log line
COMMAND_CHARS = 120
# DuckDB's words for a file another process holds (an OS lock), or one this process has open
# already through another database instance.
_CONFLICT = re.compile(r"Could not set lock on file|Conflicting lock is held|file handle conflict")
_HOLDER = re.compile(r"\(PID (\d+)\)")
_PYTHON = re.compile(r"python[\d.]*[dmu]*")
_PYTHON_TAKES_VALUE = {"-W", "-X", "--check-hash-based-pycs"}


class Held(Exception):
    """One try met a held lock; `holder` is the holding process's PID when known."""

    def __init__(self, holder: int | None) -> None:
        super().__init__(f"held by PID {holder}")
        self.holder = holder


def held_by(message: str) -> Held | None:
    """The lock conflict an engine's error message describes, or None when it is another error.
    A conflict within this process (a second open of the same file) is held by this process."""
    if not _CONFLICT.search(message):
        return None
    found = _HOLDER.search(message)
    if found:
        return Held(int(found[1]))
    return Held(os.getpid() if "file handle conflict" in message else None)


def describe_process(pid: int | None) -> str:
    """`PID 1234 (python -m jupyter)`: the program when /proc shows it, else the PID alone;
    `this process (PID 1234)` when it is this one. Only the program is named, never its other
    arguments: they may hold a token, a password or a URL with credentials."""
    if pid is None:
        return "another process"
    if pid == os.getpid():  # a second open in this process (a notebook that opened it itself)
        return f"this process (PID {pid})"
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"PID {pid}"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    program = _program(words)
    return f"PID {pid} ({shorten(program, COMMAND_CHARS)})" if program else f"PID {pid}"


def _program(argv: list[str]) -> str:
    """The program a command line runs: argv[0]'s name, and for Python the module (`-m`), the
    script's name or `-c`."""
    if not argv:
        return ""
    name = " ".join(Path(argv[0]).name.split())
    if not _PYTHON.fullmatch(name):
        return name
    words = iter(argv[1:])
    for word in words:
        if word in _PYTHON_TAKES_VALUE:
            next(words, None)
        elif word == "-" or not word.startswith("-"):
            return f"{name} {' '.join(Path(word).name.split())}"
        elif word.startswith(("--", "-W", "-X")):
            continue
        else:  # a cluster of one-letter flags ends at -c (code follows) or -m (the module)
            ends = [i for i, letter in enumerate(word) if letter in "cm"]
            if ends and word[ends[0]] == "c":
                return f"{name} -c"
            if ends:
                module = word[ends[0] + 1 :] or next(words, "")
                return f"{name} -m {' '.join(module.split())}".rstrip()
    return name


def wait_for_lock(
    attempt: Callable[[], T], what: str, timeout: float, started: float | None = None
) -> T:
    """`attempt()` until it does not raise `Held`, until `timeout` seconds after `started` (a
    `time.monotonic()`; now when None: waits one after another share one deadline), then fail
    with one line naming the holder and how long it waited. A lock this process holds itself
    cannot be let go of while it waits: that fails at once."""
    started = time.monotonic() if started is None else started
    delay = FIRST_RETRY
    told = False
    while True:
        try:
            return attempt()
        except Held as held:
            waited = time.monotonic() - started
            if held.holder == os.getpid():
                raise WarehouseLocked(
                    f"{what} is in use by {describe_process(held.holder)} already, which "
                    "cannot let go of it while it waits: close its other connection first"
                ) from None
            if waited >= timeout:
                raise WarehouseLocked(
                    f"{what} is in use by {describe_process(held.holder)}; waited "
                    f"{_duration(waited)} (warehouse.lock_timeout is {_duration(timeout)}): "
                    "let that process finish or close it, then try again"
                ) from None
            if waited >= QUIET_WAIT and not told:
                told = True
                log.warning("%s is in use by %s; waiting up to %s for it",
                            what, describe_process(held.holder), _duration(timeout))  # fmt: skip
            time.sleep(min(delay, max(0.0, timeout - waited)))
            delay = min(delay * 2, LONGEST_RETRY)


def _duration(seconds: float) -> str:
    return describe(round(seconds)) if seconds >= 10 else describe(round(seconds, 1))


class WriterClaim:
    """The flock on `<file>.writer.lock` that a writer holds while it is open (see the module
    docstring). The file holds the claimant's PID and is removed when the claim is released (a
    killed writer leaves it behind, unlocked: it claims nothing)."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".writer.lock")
        self._fd: int | None = None
        # A claim dropped without `release` (a warehouse never closed, in a notebook) lets go
        # when it is collected, not when the process ends.
        self._finalizer: weakref.finalize[[Path, int], WriterClaim] | None = None

    def acquire(self, timeout: float, started: float | None = None) -> None:
        wait_for_lock(self._try, f"the warehouse {self.database}", timeout, started)

    def _try(self) -> None:
        while self._fd is None:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _pid_in(fd)
                os.close(fd)
                raise Held(holder) from None
            except BaseException:
                os.close(fd)
                raise
            if not self._still_there(fd):  # removed by the claimant before us: lock anew
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            self._finalizer = weakref.finalize(self, _let_go, self.path, fd)

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:  # no such directory, no permission: the file cannot be either
            raise WarehouseError(
                f"cannot open the DuckDB file {self.database}: {error.strerror} ({self.path})"
            ) from None

    def _still_there(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._fd = self._finalizer = None


def _let_go(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        path.unlink()  # while still locked: nobody locks a file on its way out
    with contextlib.suppress(OSError):
        os.close(fd)  # closing the descriptor releases the flock


def _pid_in(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
