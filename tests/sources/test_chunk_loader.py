"""The loader of landing chunks: sealed chunks → raw exactly once, committed chunks deleted,
bad lines quarantined with their chunk and position, every raw row traced to the reader launch
that delivered it and the loader run that committed it."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from anchorflow.errors import ConfigError, TerminalSourceError
from anchorflow.run import Pipeline
from anchorflow.sources.base import FetchContext
from anchorflow.sources.chunks import chunk_path
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


def run(project: object) -> object:
    with Pipeline(project) as pipeline:  # type: ignore[arg-type]
        return pipeline.run([SOURCE])


def test_chunks_land_in_raw_exactly_once_and_are_deleted(engine: str, tmp_path: Path) -> None:
    project = chunk_project(tmp_path / "p")
    launch = start_launch(project)
    ids = [land_chunk(project, "events", launch, seq, events(50, 50 * seq)) for seq in (1, 2, 3)]
    other = land_chunk(project, "payments", start_launch(project, "payments"), 1, events(7))

    summary = run(project)
    assert [w.window_key for w in summary.windows] == [*ids, other]  # type: ignore[attr-defined]
    rows = table_rows(project, RAW)
    assert len(rows) == 150
    assert [(o, n) for o, n, _ in rows] == [(c, n) for c in ids for n in range(1, 51)]
    assert rows[0][2] == events(1, 50)[0].decode()
    assert table_rows(project, "SELECT DISTINCT stream FROM raw.backend_events") == [("events",)]
    assert len(table_rows(project, "SELECT * FROM raw.backend_payments")) == 7
    assert sealed(project) == [] and sealed(project, "payments") == []  # committed: deleted
    cursor = table_rows(project, "SELECT cursor FROM meta.cursors WHERE stream = 'events'")[0][0]
    assert '"chunks":3' in cursor and ids[-1] in cursor

    again = run(project)
    assert again.windows == []  # type: ignore[attr-defined]
    assert len(table_rows(project, RAW)) == 150


def test_a_committed_chunk_left_by_a_crash_is_deleted_at_the_next_plan(
    engine: str, tmp_path: Path
) -> None:
    project = chunk_project(tmp_path / "p")
    chunk = land_chunk(project, "events", start_launch(project), 1, events(20))
    kept = tmp_path / "kept.ndjson"
    shutil.copy(chunk_path(landing(project) / "events", chunk), kept)
    run(project)
    # As if the loader died between the commit and the deletion: the file is still there.
    shutil.copy(kept, chunk_path(landing(project) / "events", chunk))
    assert run(project).windows == []  # type: ignore[attr-defined]
    assert sealed(project) == []
    assert len(table_rows(project, RAW)) == 20


def test_bad_lines_are_quarantined_with_their_chunk_and_position(
    engine: str, tmp_path: Path
) -> None:
    project = chunk_project(tmp_path / "p")
    items = [b'{"n": 1}', b'{"n": 2', b"[1, 2]", b'{"n": "caf\xe9"}', b'{"n": 5}']
    chunk = land_chunk(project, "events", start_launch(project), 1, items)
    run(project)
    assert [(o, n) for o, n, _ in table_rows(project, RAW)] == [(chunk, 1), (chunk, 5)]
    quarantined = table_rows(
        project, "SELECT origin, line_no, reason FROM meta.quarantine ORDER BY line_no"
    )
    assert [(o, n) for o, n, _ in quarantined] == [(chunk, 2), (chunk, 3), (chunk, 4)]
    assert quarantined[0][2].startswith("not valid JSON")
    assert "not an object" in quarantined[1][2]
    assert "UTF-8" in quarantined[2][2]
    assert sealed(project) == []  # a chunk with bad lines is loaded (and deleted) all the same


def test_a_raw_row_traces_to_its_reader_launch_and_loader_run(engine: str, tmp_path: Path) -> None:
    project = chunk_project(tmp_path / "p")
    first, second = start_launch(project), start_launch(project)
    land_chunk(project, "events", first, 1, events(3))
    land_chunk(project, "events", first, 2, events(3, 3))
    run(project)
    land_chunk(project, "events", second, 1, events(2, 6))
    run(project)
    traced = table_rows(
        project,
        "SELECT r.record, r.origin, r.line_no, l.window_key, l.run_id, u.command, u.status, "
        "x.launch_id, x.kind, x.queue, x.pid, x.host, x.started_at, x.first_load_id "
        "FROM raw.backend_events AS r JOIN meta.loads AS l ON l.load_id = r.load_id "
        "JOIN meta.runs AS u ON u.run_id = l.run_id "
        "JOIN meta.launches AS x ON starts_with(l.window_key, x.launch_id || '-') "
        "ORDER BY r.load_id, r.line_no",
    )
    assert len(traced) == 8  # every row, each with exactly one launch and one run
    assert [t[7] for t in traced] == [first] * 6 + [second] * 2
    assert [t[4] for t in traced] == [1] * 6 + [2] * 2
    assert all(t[1] == t[3] and t[5] == "run backend" and t[6] == "ok" for t in traced)
    assert all(t[8] == "reader" and t[9] == "events" and t[10] and t[11] for t in traced)
    assert all(isinstance(t[12], datetime) for t in traced)
    assert {t[13] for t in traced} == {1, 3}  # the first load of each launch
    assert table_rows(project, "SELECT count(*) FROM meta.launches") == [(2,)]


def test_a_chunk_that_vanished_after_the_plan_is_an_error(tmp_path: Path) -> None:
    project = chunk_project(tmp_path / "p")
    chunk = land_chunk(project, "events", start_launch(project), 1, events(2))
    source = open_source(SOURCE, project.sources[SOURCE], project.root)
    windows = source.plan("events", None, datetime.now(), lambda stream, keys: set())
    chunk_path(landing(project) / "events", chunk).unlink()
    context = FetchContext(tmp_path / "work", lambda stream, cursor: None)
    with pytest.raises(TerminalSourceError, match=r"vanished.*deleted only by the loader"):
        list(source.fetch(windows, context))


def test_chunk_sources_refuse_a_backfill(tmp_path: Path) -> None:
    project = chunk_project(tmp_path / "p")
    with Pipeline(project) as pipeline, pytest.raises(ConfigError, match="loaded once"):
        pipeline.backfill(SOURCE, None, None)


def test_a_chunk_without_its_launch_manifest_still_names_its_launch(tmp_path: Path) -> None:
    project = chunk_project(tmp_path / "p")
    launch = "20260101T000000000000Z-abcdef"  # its reader never wrote (or lost) its manifest
    land_chunk(project, "events", launch, 1, events(2))
    run(project)
    assert table_rows(
        project, "SELECT launch_id, kind, source, queue, host, pid FROM meta.launches"
    ) == [(launch, "redis", SOURCE, "events", None, None)]
