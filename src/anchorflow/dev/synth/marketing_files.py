"""Writing the marketing files: JSON lines built by DuckDB into Arrow, gzip by isal on a second
thread while DuckDB builds the next file, and a file is replaced only when its bytes change.

DuckDB's own `COPY ... (FORMAT json, COMPRESSION gzip)` is about five times slower here; the
lines come out of DuckDB as one Arrow string column whose data buffer already is the file.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from isal import igzip

GZIP_LEVEL = 1  # isal's level 1 is ~1 GB/s and within a few % of zlib's 6 in size


def _settle(tmp: Path, path: Path) -> bool:
    """Move `tmp` onto `path` unless `path` already holds the same bytes; True if it changed."""
    same_size = path.exists() and path.stat().st_size == tmp.stat().st_size
    if same_size and path.read_bytes() == tmp.read_bytes():
        tmp.unlink()
        return False
    os.replace(tmp, path)
    return True


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def lines_bytes(column: pa.ChunkedArray) -> bytes:
    """The concatenated values of a string column, straight from its data buffers."""
    parts: list[memoryview] = []
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(chunk.buffers()[1], dtype=width)
        low, high = int(offsets[chunk.offset]), int(offsets[chunk.offset + len(chunk)])
        parts.append(memoryview(chunk.buffers()[2])[low:high])
    return b"".join(parts)


def _write_gzip(body: bytes, path: Path) -> bool:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(igzip.compress(body, GZIP_LEVEL, mtime=0))  # mtime 0: same bytes each time
    return _settle(tmp, path)


class FileWriter:
    """Writes query results as gzip NDJSON or Parquet; counts the files that changed."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.written = 0
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: list[Future[bool]] = []

    def ndjson(
        self, query: str, path: Path, keep: str | None = None
    ) -> tuple[Path, pa.ChunkedArray | None]:
        """One JSON object per row of `query`, keys in its column order, in its row order; also
        returns the column `keep` of the rows, if asked."""
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = f", x.{keep}" if keep else ""
        lines = self.con.sql(
            f"SELECT to_json(x)::VARCHAR || chr(10) AS line{extra} FROM ({query}) AS x"
        ).to_arrow_table()
        self._pending.append(self._pool.submit(_write_gzip, lines_bytes(lines.column(0)), path))
        return path, lines.column(keep) if keep else None

    def parquet(self, query: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        self.con.execute(f"COPY ({query}) TO {_sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd)")
        self.written += _settle(tmp, path)
        return path

    def parquet_table(self, table: pa.Table, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp, compression="zstd")
        self.written += _settle(tmp, path)
        return path

    def close(self) -> None:
        """Wait for the compressions still running (and raise their errors)."""
        try:
            self.written += sum(f.result() for f in self._pending)
        finally:
            self._pool.shutdown()
