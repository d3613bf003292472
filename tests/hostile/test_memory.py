"""Memory stays bounded whatever an export holds: a compression bomb, hundreds of MiB of tiny
events, a single line of half a GiB. Each input is served by the Amplitude emulator on loopback
and loaded by `anchorflow run` in a child process, whose peak RSS is measured (VmHWM); the data
it committed is then read back."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from anchorflow.config import load_project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore
from tests.builders import API_KEY, ENV, SECRET_KEY, amplitude_source, build_project
from tests.conftest import table_rows

pytestmark = [pytest.mark.hostile, pytest.mark.integration, pytest.mark.slow]

MiB = 1 << 20
RSS_BOUND = 1536 * MiB  # the target: 1.5 GB on the default settings
MEMBER = "187520_2024-03-01_0#0.json.gz"
NOW = "2024-03-01T03:00"  # hour 0 is closed and available, hour 1 is not
ONES = {"source": "amplitude", "columns": {"a": "INTEGER"}}  # no key: every row is staged


def write_gzip(path: Path, blocks: Iterator[bytes]) -> None:
    """A gzip file written block by block: the input is never whole in this process either."""
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as out:
        for block in blocks:
            out.write(block)


def repeated(block: bytes, total: int) -> Iterator[bytes]:
    for _ in range(total // len(block)):
        yield block


def run_child(
    tmp_path: Path, blocks: Iterator[bytes], warehouse: dict[str, Any] | None = None, **source: Any
) -> tuple[int, str]:
    """Serve one hour holding `blocks` (gzipped), load it with `anchorflow run` in a child
    process; its peak RSS in bytes and its output."""
    directory = tmp_path / "export"
    directory.mkdir()
    write_gzip(directory / MEMBER, blocks)
    with AmplitudeEmulator(ExportStore.from_directory(directory), API_KEY, SECRET_KEY) as emulator:
        project = build_project(
            tmp_path / "project",
            sources={"amplitude": amplitude_source(emulator.base_url, **source)},
            staging={"ones": ONES},
            **({"warehouse": warehouse} if warehouse else {}),
        )
        script = (
            "import sys\n"
            "from anchorflow.cli import main\n"
            "sys.argv = ['anchorflow', 'run', '--no-marts', '--project', sys.argv[1], "
            f"'--now', {NOW!r}]\n"
            "try:\n"
            "    main()\n"
            "finally:\n"
            "    status = open('/proc/self/status').read()\n"
            "    peak = [l for l in status.splitlines() if l.startswith('VmHWM')][0]\n"
            "    print(peak, file=sys.stderr)\n"
        )
        env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run(
            [sys.executable, "-c", script, str(project.root / "anchorflow.yml")],
            capture_output=True, text=True, env=env, timeout=300, check=False,
        )  # fmt: skip
    peak_line = [line for line in done.stderr.splitlines() if line.startswith("VmHWM")][-1]
    peak = int(peak_line.split()[1]) * 1024
    print(f"peak RSS of the run: {peak / MiB:,.0f} MiB")  # shown with -s: the figures in docs
    return peak, done.stdout + done.stderr


def rows(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    project = load_project(tmp_path / "project" / "anchorflow.yml")
    return table_rows(project.warehouse_path, sql)


def test_a_zip_bomb_of_newlines_is_refused_without_inflating_it(tmp_path: Path) -> None:
    peak, output = run_child(tmp_path, repeated(b"\n" * MiB, 128 * MiB))
    assert peak < RSS_BOUND, f"peak RSS {peak / MiB:.0f} MiB"
    assert "refused as a compression bomb" in output and "max_inflation_ratio" in output
    assert rows(tmp_path, "SELECT count(*) FROM meta.loads") == [(0,)]  # the hour waits
    assert rows(tmp_path, "SELECT count(*) FROM meta.cursors") == [(0,)]


def test_the_same_bomb_inflates_in_bounded_pieces_when_its_ratio_is_allowed(
    tmp_path: Path,
) -> None:
    peak, output = run_child(tmp_path, repeated(b"\n" * MiB, 128 * MiB), max_inflation_ratio=2000)
    assert peak < RSS_BOUND, f"peak RSS {peak / MiB:.0f} MiB"
    assert rows(tmp_path, "SELECT rows, quarantined FROM meta.loads") == [(0, 0)], output
    assert rows(tmp_path, "SELECT count(*) FROM meta.cursors") == [(1,)]


def test_an_eighth_gib_of_tiny_events_lands_in_parts_of_one_load_and_is_typed(
    tmp_path: Path,
) -> None:
    """16.7 million records: landed in parts (the source's memory is bounded by
    max_part_bytes), then typed by the stage step in DuckDB, whose memory the project's
    `warehouse.memory_limit` bounds (DuckDB's own default is 80% of RAM)."""
    line = b'{"a":1}\n'  # about 1000:1 in gzip: a bomb for the default ratio cap, so raise it
    block = line * (MiB // len(line))
    peak, output = run_child(
        tmp_path, repeated(block, 128 * MiB), {"memory_limit": "1GB"}, max_inflation_ratio=2000
    )
    assert peak < RSS_BOUND, f"peak RSS {peak / MiB:.0f} MiB"
    count = 128 * MiB // len(line)
    loads = rows(tmp_path, "SELECT load_id, window_key, rows, quarantined FROM meta.loads")
    assert loads == [(loads[0][0], "20240301T00", count, 0)], output
    assert rows(tmp_path, "SELECT count(*), max(line_no), count(DISTINCT line_no) FROM "
                "raw.amplitude_events") == [(count, count, count)]  # fmt: skip
    assert rows(tmp_path, "SELECT count(*), sum(a) FROM staging.ones") == [(count, count)]


def test_a_half_gib_line_is_quarantined_by_length_and_prefix(tmp_path: Path) -> None:
    def giant_line() -> Iterator[bytes]:
        yield b'{"a":2}\n{"pad":"'
        for _ in range(512):  # about 90:1, under the default ratio cap: not a bomb
            yield os.urandom(10 * 1024).hex().encode() + b"x" * (MiB - 20 * 1024)
        yield b'"}\n{"a":3}\n'

    peak, output = run_child(tmp_path, giant_line())
    assert peak < RSS_BOUND, f"peak RSS {peak / MiB:.0f} MiB"
    assert rows(tmp_path, "SELECT line_no, record FROM raw.amplitude_events ORDER BY 1") == [
        (1, '{"a":2}'),
        (3, '{"a":3}'),
    ], output
    ((line_no, reason, length),) = rows(
        tmp_path, "SELECT line_no, reason, length(record) FROM meta.quarantine"
    )
    size = 512 * MiB + len('{"pad":"') + len('"}')
    assert (line_no, length) == (2, 1024)
    assert reason == (
        f"line of {size:,} bytes exceeds max_line_bytes (8 MiB); only its first 1,024 bytes "
        "are kept"
    )


def test_millions_of_lines_that_are_not_objects_are_set_aside_in_the_engine(
    tmp_path: Path,
) -> None:
    """128 MiB of JSON numbers and broken lines (about 9 million, 1.8:1 in gzip, not a bomb):
    all quarantined, in bounded memory: the reasons are worded by the engine, and in Python
    only for the first invalid lines."""

    def numbers() -> Iterator[bytes]:
        rng = np.random.default_rng(7)
        for _ in range(128):
            lines = (rng.integers(0, 10, (MiB // 16, 16), dtype=np.uint8) + ord("0")).astype(
                np.uint8
            )
            lines[0::2, 0] = ord("{")  # every other line is broken JSON, the rest are numbers
            lines[1::2, 0] = ord("7")
            lines[:, -1] = ord("\n")
            yield lines.tobytes()

    peak, output = run_child(tmp_path, numbers())
    assert peak < RSS_BOUND, f"peak RSS {peak / MiB:.0f} MiB"
    ((lines, quarantined),) = rows(
        tmp_path, "SELECT rows + quarantined, quarantined FROM meta.loads"
    )
    assert lines == quarantined > 8_000_000, output
    reasons = dict(rows(tmp_path, "SELECT reason, count(*) FROM meta.quarantine GROUP BY 1"))
    assert sum(reasons.values()) == quarantined
    assert reasons.pop("not valid JSON") > 4_000_000
    assert len(reasons) >= 2 and sum(reasons.values()) > 4_000_000  # worded ones, numbers
    assert any(r.startswith("not valid JSON: ") for r in reasons)
