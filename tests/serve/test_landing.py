"""A killed server's leftovers: published up to their last whole line."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchorflow.serve.landing import publish_leftovers, recent_ids, whole_lines_length
from anchorflow.sources.chunks import SEALED, TEMPORARY, chunk_id, new_launch_id

pytestmark = pytest.mark.unit


def test_a_torn_last_line_is_trimmed_and_the_whole_lines_published(tmp_path: Path) -> None:
    launch = new_launch_id()
    torn, empty = chunk_id(launch, 1), chunk_id(launch, 2)
    (tmp_path / f"{torn}{TEMPORARY}").write_bytes(b'{"id":"a"}\n{"id":"b"}\n{"id":"c"')
    (tmp_path / f"{empty}{TEMPORARY}").write_bytes(b'{"id":"d"')
    assert publish_leftovers(tmp_path) == [torn]
    assert (tmp_path / f"{torn}{SEALED}").read_bytes() == b'{"id":"a"}\n{"id":"b"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{torn}{SEALED}"]


def test_whole_lines_length_looks_past_one_block(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 10 + b"\n" + b"y" * 200_000)
    assert whole_lines_length(path) == 11
    path.write_bytes(b"z" * 70_000)
    assert whole_lines_length(path) == 0


def test_recent_ids_come_from_the_newest_chunks_oldest_first(tmp_path: Path) -> None:
    launch = new_launch_id()
    for seq in (1, 2, 3):
        lines = b"".join(b'{"n":{"id":"%d-%d"}}\n' % (seq, i) for i in range(3))
        (tmp_path / f"{chunk_id(launch, seq)}{SEALED}").write_bytes(lines + b'{"other":1}\n')
    ids = list(recent_ids(tmp_path, "n.id", 5, 1 << 20))
    assert ids == ["2-1", "2-2", "3-0", "3-1", "3-2"]  # chunk 1 is not read
    assert list(recent_ids(tmp_path, "n.id", 0, 1 << 20)) == []
