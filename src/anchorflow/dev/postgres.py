"""A throwaway PostgreSQL cluster on a free loopback port, made with `initdb` and `pg_ctl`:
for the tests, the benchmarks and `make demo ENGINE=postgres` (no Docker, no system service).

As root (CI), the cluster belongs to the `postgres` user, as PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType


class PostgresMissing(RuntimeError):
    pass


def bindir() -> Path:
    """Where `initdb` and `pg_ctl` are (Debian keeps them out of PATH)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if versions:
        return Path(versions[0]).parent
    raise PostgresMissing(
        "PostgreSQL's server is not installed: apt-get install postgresql (make test does)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPostgres:
    """`with LocalPostgres() as pg: pg.create_database("x")` → a DSN; stopped and removed after."""

    def __init__(self, directory: Path | None = None, keep: bool = False) -> None:
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="anchorflow-pg-"))
        self.keep = keep
        self.port = 0
        self.bin = bindir()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode:
            raise RuntimeError(f"{args[0]} failed: {result.stderr.strip() or result.stdout}")

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def start(self) -> LocalPostgres:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
            os.chmod(self.directory, 0o755)
            # runuser must reach the directory through every parent
            for parent in self.directory.parents:
                if parent == Path("/"):
                    break
                with contextlib.suppress(OSError):
                    os.chmod(parent, os.stat(parent).st_mode | 0o011)
        if self.running():
            return self
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        self.port = free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories='{self.directory}' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            "-c shared_buffers=256MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-t", "60",
                  "-l", str(self.directory / "log"), "start")  # fmt: skip
        return self

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            con.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.dsn(name)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        if self._own_dir and not self.keep:
            shutil.rmtree(self.directory, ignore_errors=True)

    def running(self) -> bool:
        """Whether this cluster's server runs now (started earlier, by this process or another,
        as the demo's is): then its port is read from its pid file."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return False
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        status = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=30,
        )
        lines = pid_file.read_text().splitlines()
        if status.returncode or len(lines) < 4 or not lines[3].strip().isdigit():
            return False
        self.port = int(lines[3])
        return True

    def ensure_database(self, name: str) -> str:
        """The DSN of database `name`, created empty the first time (never dropped)."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as con:
            found = con.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not found:
                con.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.dsn(name)

    def stop_command(self) -> str:
        """The shell command that stops this cluster's server."""
        command = f"{self.bin / 'pg_ctl'} -D {self.data} stop"
        return f"runuser -u postgres -- {command}" if self._as_postgres else command

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
