"""The journal across releases: a warehouse made before cursors and window keys is upgraded in
place, and its loads resume where its watermark stood."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.warehouse import connect
from tests.conftest import available_at, hour, run_pipeline, table_rows

pytestmark = pytest.mark.integration


def make_it_old(project: Project) -> None:
    """Turn the journal into the first release's: a TIMESTAMP watermark, loads without keys."""
    with connect(project) as con:
        con.execute(
            "CREATE TABLE meta.watermarks (source VARCHAR NOT NULL, stream VARCHAR NOT NULL, "
            "position TIMESTAMP NOT NULL, load_id BIGINT, updated_at TIMESTAMP NOT NULL)"
        )
        con.execute(
            "INSERT INTO meta.watermarks SELECT source, stream, "
            "strptime(CAST(cursor AS JSON)->>'next_hour', '%Y%m%dT%H'), load_id, updated_at "
            "FROM meta.cursors"
        )
        con.execute("DROP TABLE meta.cursors")
        con.execute("ALTER TABLE meta.loads DROP COLUMN window_key")


def test_an_old_journal_is_upgraded_and_loading_resumes_at_its_watermark(
    engine: str, emulator: AmplitudeEmulator, make_project: Callable[..., Project]
) -> None:
    project = make_project(emulator.base_url)
    run_pipeline(project, available_at(2))
    make_it_old(project)

    summary = run_pipeline(project, available_at(4))
    assert [w.window_start for w in summary.windows] == [hour(2), hour(3)]
    path = project
    assert table_rows(path, "SELECT load_id, window_key FROM meta.loads ORDER BY 1") == [
        (1, "20240301T00"), (2, "20240301T01"), (3, "20240301T02"), (4, "20240301T03"),
    ]  # fmt: skip
    assert table_rows(path, "SELECT cursor, load_id FROM meta.cursors") == [
        ('{"next_hour":"20240301T04"}', 4)
    ]
    old = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'watermarks'"
    assert table_rows(path, old) == [(0,)]
