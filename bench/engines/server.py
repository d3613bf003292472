"""The PostgreSQL side of a measurement: the server's CPU time and the database's size.

A contender's own CPU time (wait4) leaves out the work its PostgreSQL backend did: parsing COPY,
writing heap pages and indexes, WAL. The server's CPU time is the postmaster's own and its
children's: the live ones (checkpointer, walwriter, open backends) from /proc, the exited ones
(a contender's backends, once it disconnected) from the postmaster's cutime/cstime.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg

from anchorflow.dev.postgres import LocalPostgres

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # the fields after "(comm)", from field 3 on


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError):
                continue  # it exited meanwhile
    return found


class ServerCPU:
    """CPU seconds of a LocalPostgres cluster so far: `seconds()` before and after a run."""

    def __init__(self, pg: LocalPostgres) -> None:
        self.pid = int((pg.data / "postmaster.pid").read_text().split()[0])
        self.baseline = len(_children(self.pid))  # the server's own helpers, no client

    def seconds(self, settle: float = 5.0) -> float:
        # A client's backend exits just after the client: wait (briefly) until it has been
        # reaped, so its time is in the postmaster's cutime rather than lost in between.
        deadline = time.monotonic() + settle
        children = _children(self.pid)
        while len(children) > self.baseline and time.monotonic() < deadline:
            time.sleep(0.05)
            children = _children(self.pid)
        own = _stat(self.pid)
        ticks = sum(int(v) for v in own[11:15])  # utime, stime, cutime, cstime
        for child in children:
            try:
                ticks += sum(int(v) for v in _stat(child)[11:13])
            except OSError:
                continue
        return ticks / TICK


def database_mb(dsn: str) -> float:
    with psycopg.connect(dsn) as con:
        row = con.execute("SELECT pg_database_size(current_database())").fetchone()
    return float(row[0]) / 2**20 if row else 0.0
