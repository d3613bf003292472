"""The land step's parts of `forget` on each engine: raw records found by the JSON paths of an
erased key and deleted with their quarantine rows, and the key, hashed with the salt, dropping
its records (and the lines the source set aside) when a window lands again."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from anchorflow.config import Project
from anchorflow.journal.erasures import erase_record_traces
from anchorflow.journal.suppressions import suppress_key
from anchorflow.land.erase import erase_records, find_records
from anchorflow.land.step import WindowResult
from anchorflow.run import Pipeline
from anchorflow.sources.amplitude.export import hour_window
from anchorflow.sources.base import LandBatch
from anchorflow.sources.lines import split_lines
from tests.builders import START, build_project, open_warehouse
from tests.conftest import table_rows

pytestmark = pytest.mark.integration

SALT = "s-1"
PATHS = ['$."user_id"']
WINDOW = (
    b'{"user_id": "ann", "n": 1}\n{"user_id": "bob", "n": 2}\n'
    b'{"user_id": "ann", "note": "caf\xe9"}\n'  # not UTF-8: set aside by the source, with its text
    b'{"user_id": "ann", "n": 3\n'  # cut: quarantined by landing, its key unreadable
    b'{"user_id": "bob", "note": "caf\xe9"}\n'
)


def land_only(root: Path) -> Project:
    return build_project(root, staging={}, pii_salt=SALT)


def commit_window(project: Project, data: bytes) -> WindowResult:
    records, rejected = split_lines("w0#0.json", data)
    window = hour_window("events", START)
    batch = LandBatch("amplitude", window, "w0", records, 1, len(data), rejected)
    with Pipeline(project, now=START + timedelta(days=1)) as pipeline:
        return pipeline.commit_window(batch)


def test_raw_records_and_their_quarantine_rows_are_found_by_key_and_erased(
    engine: str, tmp_path: Path
) -> None:
    project = land_only(tmp_path)
    commit_window(project, WINDOW)
    with open_warehouse(project) as wh:
        found = find_records(wh, "amplitude", "events", [PATHS], ["ann"])
        assert found is not None
        assert wh.query(f"SELECT line_no FROM {found} ORDER BY 1") == [(1,)]
        assert erase_record_traces(wh, found) == {"meta.type_errors": 0, "meta.quarantine": 0}
        assert erase_records(wh, "amplitude", "events", found) == 1
        assert find_records(wh, "amplitude", "staging_only", [PATHS], ["ann"]) is None
    assert table_rows(project, "SELECT line_no FROM raw.amplitude_events") == [(2,)]

    with Pipeline(project) as pipeline:
        compaction = pipeline.compact()  # the erased record's bytes leave the store
    assert compaction.erasures == 0 and compaction.bytes_after > 0
    assert table_rows(project, "SELECT line_no FROM raw.amplitude_events") == [(2,)]


def test_a_window_landed_again_drops_the_records_of_a_suppressed_key(
    engine: str, tmp_path: Path
) -> None:
    project = land_only(tmp_path)
    with open_warehouse(project) as wh:
        suppress_key(wh, 1, "amplitude", "events", PATHS, ["ann"], SALT)
        (stored,) = wh.query("SELECT key_hash FROM meta.suppressions")
    assert len(stored[0]) == 64 and "ann" not in stored[0]

    result = commit_window(project, WINDOW)
    # ann's two readable records are dropped (one landed, one set aside by the source); the
    # cut line, whose key cannot be read, is quarantined.
    assert (result.rows, result.suppressed, result.quarantined) == (1, 2, 2)
    assert table_rows(project, "SELECT line_no FROM raw.amplitude_events") == [(2,)]
    assert table_rows(project, "SELECT line_no FROM meta.quarantine ORDER BY 1") == [(4,), (5,)]
    assert table_rows(project, "SELECT suppressed FROM meta.loads") == [(2,)]
