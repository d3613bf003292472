"""Arrow landing chunks (what the Redis readers write): the items land as they arrived, each at
its position; bad ones are quarantined with a reason; temporaries are never loaded; chunks of
the line format, in the same directory, still load."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from anchorflow.errors import TerminalSourceError
from anchorflow.run import Pipeline
from anchorflow.sources import chunks
from anchorflow.sources.base import FetchContext, ReadLimits
from anchorflow.sources.chunk_arrow import chunk_items, read_arrow_chunk, record_batch
from anchorflow.sources.registry import open_source
from tests.conftest import table_rows
from tests.sources.chunk_kit import (
    SOURCE,
    chunk_project,
    events,
    land_chunk,
    landing,
    sealed,
    start_launch,
)

pytestmark = pytest.mark.integration
RAW = "SELECT origin, line_no, record FROM raw.backend_events ORDER BY origin, line_no"
QUARANTINED = "SELECT origin, line_no, reason, record FROM meta.quarantine ORDER BY line_no"


def run(project: object) -> object:
    with Pipeline(project) as pipeline:  # type: ignore[arg-type]
        return pipeline.run([SOURCE])


@pytest.mark.unit
def test_a_chunk_file_gives_back_its_items_as_appended(tmp_path: Path) -> None:
    items = [b'{"a": 1}', b"", b'{"b":\n 2}', '{"c": "caf\u00e9"}'.encode(), b"\xff"]
    file = chunks.ChunkFile(tmp_path, chunks.chunk_id(chunks.new_launch_id(), 1), chunks.ARROW)
    file.append(items[:2])
    file.append(items[2:])
    file.seal()
    assert file.temporary.exists() and not file.sealed.exists()  # sealed, not published yet
    path = file.publish()
    assert path.name.endswith(".arrow") and not file.temporary.exists()
    assert chunks.chunk_records(path) == items
    assert (file.items, file.bytes) == (5, sum(map(len, items)))
    assert chunks.sealed_chunks(tmp_path) == [file.chunk_id]
    assert chunks.chunk_path(tmp_path, file.chunk_id) == path


@pytest.mark.unit
def test_a_record_batch_is_built_from_the_items_bytes() -> None:
    batch = record_batch([b"x", b"", b"yz"])
    assert batch.column(0).to_pylist() == [b"x", b"", b"yz"]
    assert record_batch([]).num_rows == 0


def test_arrow_chunks_land_as_they_arrived_with_their_positions(
    engine: str, tmp_path: Path
) -> None:
    project = chunk_project(tmp_path / "p")
    launch = start_launch(project)
    first = events(30)
    first[4] = b'{"type": "order",\r\n "n": 4}'  # a line break between tokens: kept as it is
    ids = [
        land_chunk(project, "events", launch, 1, first, chunks.ARROW),
        land_chunk(project, "events", launch, 2, events(20, 30), chunks.ARROW),
    ]
    summary = run(project)
    assert [w.window_key for w in summary.windows] == ids  # type: ignore[attr-defined]
    rows = table_rows(project, RAW)
    assert [(o, n) for o, n, _ in rows] == [(ids[0], n) for n in range(1, 31)] + [
        (ids[1], n) for n in range(1, 21)
    ]
    assert [r.encode() for _, _, r in rows] == first + events(20, 30)
    assert sealed(project) == []  # committed: deleted
    assert run(project).windows == []  # type: ignore[attr-defined]
    assert len(table_rows(project, RAW)) == 50


def test_line_chunks_and_arrow_chunks_of_one_queue_both_load_in_order(
    engine: str, tmp_path: Path
) -> None:
    """Chunks of the line format (the webhook intake's, or left by an earlier version) beside
    the readers' Arrow chunks."""
    project = chunk_project(tmp_path / "p")
    launch = start_launch(project)
    old = land_chunk(project, "events", launch, 1, events(5), chunks.NDJSON)
    new = land_chunk(project, "events", launch, 2, events(5, 5), chunks.ARROW)
    older = land_chunk(project, "events", start_launch(project), 1, events(3, 10))
    summary = run(project)
    assert [w.window_key for w in summary.windows] == [old, new, older]  # type: ignore[attr-defined]
    rows = table_rows(project, RAW)
    assert sorted((o, n) for o, n, _ in rows) == sorted(
        [(old, n) for n in range(1, 6)] + [(new, n) for n in range(1, 6)]
        + [(older, n) for n in range(1, 4)]
    )  # fmt: skip
    got = {json.loads(r)["n"] for _, _, r in rows}
    assert got == set(range(13))
    assert sealed(project) == []


def test_bad_items_of_an_arrow_chunk_are_quarantined_with_their_position(
    engine: str, tmp_path: Path
) -> None:
    project = chunk_project(tmp_path / "p", max_line_bytes="1KiB")
    long = b'{"pad": "' + b"x" * 2000 + b'"}'
    items = [b'{"n": 1}', b'{"n": 2', b"[1, 2]", b'{"n": "caf\xe9"}', b"", long, b'{"n": 7}']
    chunk = land_chunk(project, "events", start_launch(project), 1, items, chunks.ARROW)
    run(project)
    assert [(o, n) for o, n, _ in table_rows(project, RAW)] == [(chunk, 1), (chunk, 7)]
    quarantined = table_rows(project, QUARANTINED)
    assert [(o, n) for o, n, _, _ in quarantined] == [(chunk, n) for n in (2, 3, 4, 5, 6)]
    reasons = [q[2] for q in quarantined]
    assert reasons[0].startswith("not valid JSON")
    assert "not an object" in reasons[1]
    assert "UTF-8" in reasons[2]
    assert reasons[3].startswith("not valid JSON")  # an empty item is not dropped
    assert "exceeds max_line_bytes" in reasons[4] and len(quarantined[4][3]) == 1024
    loads = table_rows(project, "SELECT rows, quarantined FROM meta.loads")
    assert loads == [(2, 5)]
    assert sealed(project) == []


def test_an_arrow_temporary_is_never_loaded(engine: str, tmp_path: Path) -> None:
    """A chunk still being written, or torn by a kill, waits for its reader's protocol (see
    the reader's sweep): the loader takes only published chunks."""
    project = chunk_project(tmp_path / "p")
    launch = start_launch(project)
    directory = landing(project) / "events"
    open_chunk = chunks.ChunkFile(directory, chunks.chunk_id(launch, 1), chunks.ARROW)
    open_chunk.append(events(4))  # not sealed: no footer yet
    torn = directory / f"{chunks.chunk_id(launch, 2)}.arrow.tmp"
    torn.write_bytes(open_chunk.temporary.read_bytes()[:40])
    done = land_chunk(project, "events", launch, 3, events(2), chunks.ARROW)
    summary = run(project)
    assert [w.window_key for w in summary.windows] == [done]  # type: ignore[attr-defined]
    assert len(table_rows(project, RAW)) == 2
    assert chunks.leftover_temporaries(directory) == [chunks.chunk_id(launch, n) for n in (1, 2)]
    chunks.discard_leftover(directory, chunks.chunk_id(launch, 2))
    assert not torn.exists()
    open_chunk.discard()


def test_a_damaged_arrow_chunk_stops_the_load_and_stays(engine: str, tmp_path: Path) -> None:
    project = chunk_project(tmp_path / "p")
    launch = start_launch(project)
    good = land_chunk(project, "events", launch, 1, events(3), chunks.ARROW)
    bad = land_chunk(project, "events", launch, 2, events(3, 3), chunks.ARROW)
    path = chunks.chunk_path(landing(project) / "events", bad)
    path.write_bytes(path.read_bytes()[:-20])  # its footer damaged
    with pytest.raises(TerminalSourceError, match=r"not a readable Arrow chunk.*move it aside"):
        run(project)
    assert [(o, n) for o, n, _ in table_rows(project, RAW)] == [(good, n) for n in (1, 2, 3)]
    assert sealed(project) == [bad]  # kept: nothing of it was loaded, nothing lost


@pytest.mark.parametrize("appends", [6, 1], ids=["six_batches", "one_batch_sliced"])
def test_an_arrow_chunk_larger_than_a_part_lands_in_parts_as_one_load(
    engine: str, tmp_path: Path, appends: int
) -> None:
    project = chunk_project(tmp_path / "p", max_part_bytes="1MiB")
    launch = start_launch(project)
    directory = landing(project) / "events"
    file = chunks.ChunkFile(directory, chunks.chunk_id(launch, 1), chunks.ARROW)
    size = 6000 // appends  # record batches of about 2.6 MiB / appends
    for start in range(0, 6000, size):
        file.append(events(size, start, pad=400))
    file.seal()
    file.publish()
    source = open_source(SOURCE, project.sources[SOURCE], project.root)
    windows = source.plan("events", None, datetime.now(), lambda stream, keys: set())
    batches = list(source.fetch(windows, FetchContext(tmp_path / "work", lambda s, c: None)))
    assert len(batches) >= 2 and [b.part for b in batches] == list(range(len(batches)))
    assert all(b.records.num_rows < 6000 for b in batches) and batches[-1].last
    run(project)
    rows = table_rows(project, "SELECT line_no, record FROM raw.backend_events ORDER BY line_no")
    assert [n for n, _ in rows] == list(range(1, 6001))
    assert [json.loads(r)["n"] for _, r in rows] == list(range(6000))
    assert table_rows(project, "SELECT rows FROM meta.loads") == [(6000,)]


@pytest.mark.unit
def test_a_chunk_with_an_empty_batch_or_none_reads_as_no_records(tmp_path: Path) -> None:
    limits = ReadLimits()
    for appends in ([], [[]], [[b'{"a": 1}'], []]):
        file = chunks.ChunkFile(tmp_path, chunks.chunk_id(chunks.new_launch_id(), 1), "arrow")
        for items in appends:
            file.append(items)
        file.seal()
        data = file.publish().read_bytes()
        parts = list(read_arrow_chunk("c", data, file.sealed, limits))
        assert [last for _, last in parts] == [True]
        expected = sum(len(items) for items in appends)
        assert parts[0][0].records.num_rows == expected and parts[0][0].rejected == []
        file.sealed.unlink()


@pytest.mark.unit
def test_chunk_items_reads_every_record_batch() -> None:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, record_batch([b"a"]).schema) as writer:
        writer.write_batch(record_batch([b"a", b"b"]))
        writer.write_batch(record_batch([b"c"]))
    assert chunk_items(sink.getvalue().to_pybytes()) == [b"a", b"b", b"c"]
