from __future__ import annotations

import pytest

from tests import engines
from tests.conftest import available_at, run_pipeline, table_rows

pytestmark = pytest.mark.integration


def test_loads_closed_hours_into_raw_and_staging(engine, emulator, make_project):
    project = make_project(emulator.base_url)
    summary = run_pipeline(project, available_at(3))
    assert [w.window_start.hour for w in summary.windows] == [0, 1, 2]
    raw = table_rows(project, "SELECT count(*) FROM raw.amplitude_events")[0][0]
    assert raw == summary.rows > 0
    if engines.staging_ported():
        assert table_rows(project, "SELECT count(*) FROM staging.events") == [(raw,)]
