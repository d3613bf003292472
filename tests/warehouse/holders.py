"""Other processes that hold a warehouse file, as a notebook, a BI tool or another anchorflow
would: DuckDB's locks are per process, so the tests that meet them need real processes.

`holding(path, mode)` starts one and returns once it holds the file:
- `read`: a read-only DuckDB connection (a notebook, dbt's `docs`, a dashboard);
- `write`: a read-write DuckDB connection (another tool writing);
- `claim`: an anchorflow writer that let go of the file (a run waiting on the network): it
  holds only the writer claim.
It lets go when the block ends, or at `let_go`. `peek` reads once in another process.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLD = """
import sys
import duckdb
path, mode = sys.argv[1], sys.argv[2]
if mode == "claim":
    from anchorflow.warehouse.duckdb import DuckDBWarehouse
    held = DuckDBWarehouse(path)
    held.release()
else:
    held = duckdb.connect(path, read_only=mode == "read")
print("holding", flush=True)
sys.stdin.readline()
held.close()
"""


PEEK = """
import sys
import duckdb
try:
    con = duckdb.connect(sys.argv[1], read_only=True)
    print(con.execute(sys.argv[2]).fetchall())
except duckdb.Error as error:
    print(type(error).__name__)
"""


def peek(path: Path, sql: str) -> str:
    """What another process reads (read-only), or the name of the error it met."""
    done = subprocess.run([sys.executable, "-c", PEEK, str(path), sql], capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    return done.stdout.strip()


@contextmanager
def holding(path: Path, mode: str, *more: str) -> Iterator[subprocess.Popen[str]]:
    """`more`: further arguments on the holder's command line (it ignores them)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), mode, *more],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "holding", process.communicate(timeout=30)
        yield process
    finally:
        let_go(process)


def let_go(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        assert process.stdin is not None
        process.stdin.write("\n")
        process.stdin.flush()
        process.wait(timeout=30)
