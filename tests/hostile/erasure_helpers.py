"""Reading a warehouse file as an attacker would: every byte of it, and every zstd frame in it
decompressed, to look for a forgotten person's identifiers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
FILE_HEADERS, BLOCK = 3 * 4096, 256 * 1024  # DuckDB: three 4 KiB headers, then 256 KiB blocks


def needs_zstd() -> str:
    found = shutil.which("zstd")
    if found is None:
        pytest.skip("the zstd command is needed to decompress the file's zstd frames")
    return found


def zstd_frames(data: bytes, zstd: str) -> list[bytes]:
    """What every zstd frame found in `data` decompresses to (as far as it decodes: a frame cut
    by a block boundary yields its first part)."""
    found = []
    start = data.find(ZSTD_MAGIC)
    while start >= 0:
        decoded = subprocess.run(
            [zstd, "-dcq"], input=data[start : start + (4 << 20)], capture_output=True, check=False
        )
        if decoded.stdout:
            found.append(decoded.stdout)
        start = data.find(ZSTD_MAGIC, start + 1)
    return found


def block_payloads(data: bytes) -> bytes:
    """The file's blocks without their checksums, end to end: a frame that continues in the
    next block reads on."""
    return b"".join(data[o + 8 : o + BLOCK] for o in range(FILE_HEADERS, len(data), BLOCK))


def readable_texts(path: Path, zstd: str) -> list[bytes]:
    """The warehouse file and its WAL (if any) as they are, and every zstd frame in them
    decompressed."""
    texts = []
    for file in (path, path.with_name(path.name + ".wal")):
        if file.exists():
            data = file.read_bytes()
            texts += [data, *zstd_frames(data, zstd), *zstd_frames(block_payloads(data), zstd)]
    return texts


def occurrences(texts: list[bytes], needles: list[str]) -> dict[str, int]:
    """How often each needle is in the texts (only those found)."""
    found = {n: sum(t.count(n.encode()) for t in texts) for n in needles}
    return {n: c for n, c in found.items() if c}
