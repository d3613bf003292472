"""Which hours a run loads, in what order, and where the watermark ends up.

Real HTTP to the Amplitude emulator on loopback, real DuckDB files; assertions are on the
warehouse's tables and on the emulator's request log.
"""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, Fault
from anchorflow.run import Pipeline
from tests import engines
from tests.conftest import (
    API_KEY,
    NEXT_HOUR,
    SECRET_KEY,
    SMALL,
    START,
    available_at,
    hour,
    run_pipeline,
    table_rows,
)

pytestmark = pytest.mark.integration


# -- helpers ------------------------------------------------------------------------------------

STAGED = "load_id, event_uuid, event_type, event_time, user_id, device_id, platform, amount"
LOADED = (
    "load_id, source, stream, window_start, window_end, origin, files, rows, bytes, "
    "quarantined, staged, type_errors, status, window_key, note, suppressed"
)


def emulator_line_count(store: ExportStore, at: datetime) -> int:
    """Lines the emulator's store holds for hour `at` (every member, every non-empty line)."""
    return sum(
        len([line for line in gzip.decompress(data).split(b"\n") if line])
        for data in store.files(at).values()
    )


def watermark(path: Path) -> datetime | None:
    rows = table_rows(path, NEXT_HOUR)
    assert len(rows) <= 1
    return rows[0][0] if rows else None


def committed_loads(path: Path) -> list[tuple[Any, ...]]:
    """(window_start, window_end, rows, status) of every load, oldest first."""
    return table_rows(
        path,
        "SELECT window_start, window_end, rows, status FROM meta.loads ORDER BY load_id",
    )


def raw_rows_per_hour(path: Path) -> dict[datetime, int]:
    """Rows in raw per committed window (0 for an empty window)."""
    rows = table_rows(
        path,
        "SELECT l.window_start, count(r.load_id) FROM meta.loads AS l "
        "LEFT JOIN raw.amplitude_events AS r USING (load_id) "
        "WHERE l.status = 'committed' GROUP BY l.window_start ORDER BY l.window_start",
    )
    return dict(rows)


def snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Everything a rerun must not change, without the wall-clock columns."""
    return {
        "raw": table_rows(
            path,
            "SELECT load_id, source, stream, origin, line_no, record FROM raw.amplitude_events "
            "ORDER BY load_id, origin, line_no",
        ),
        "staging": table_rows(
            path,
            f"SELECT {STAGED}, event_properties::VARCHAR FROM staging.events ORDER BY event_uuid",
        )
        if engines.staging_ported()
        else [],
        "loads": table_rows(
            path,
            f"SELECT {LOADED} FROM meta.loads ORDER BY load_id",
        ),
        "watermarks": table_rows(path, "SELECT source, stream, cursor, load_id FROM meta.cursors"),
        "quarantine": table_rows(path, "SELECT * FROM meta.quarantine ORDER BY origin, line_no"),
    }


# -- only closed, available hours ---------------------------------------------------------------


def test_only_closed_available_hours_load(engine, emulator, make_project):
    project = make_project(emulator.base_url)
    summary = run_pipeline(project, available_at(3))

    assert [w.window_start for w in summary.windows] == [hour(0), hour(1), hour(2)]
    assert watermark(project) == hour(3)
    assert all(r.end is not None and r.end <= hour(2) for r in emulator.requests)
    per_hour = raw_rows_per_hour(project)
    assert per_hour == {h: emulator_line_count(emulator.store, h) for h in map(hour, range(3))}


def test_a_clock_one_minute_early_does_not_load_the_hour_that_is_not_available_yet(
    engine: str, emulator, make_project
):
    project = make_project(emulator.base_url)
    summary = run_pipeline(project, available_at(3) - timedelta(minutes=1))

    assert [w.window_start for w in summary.windows] == [hour(0), hour(1)]
    assert watermark(project) == hour(2)
    # Hour 2 was never asked for, so no part of it can be in the warehouse.
    assert all(r.end is not None and r.end <= hour(1) for r in emulator.requests)
    assert set(raw_rows_per_hour(project)) == {hour(0), hour(1)}
    origins = table_rows(project, "SELECT DISTINCT origin FROM raw.amplitude_events")
    assert all("_2024-03-01_2#" not in origin for (origin,) in origins)


def test_each_loaded_hour_is_complete_never_partial(engine, emulator, make_project):
    project = make_project(emulator.base_url)
    run_pipeline(project, available_at(2) + timedelta(minutes=59))  # hour 2 closes but not yet
    run_pipeline(project, available_at(4))

    per_hour = raw_rows_per_hour(project)
    assert per_hour == {h: emulator_line_count(emulator.store, h) for h in map(hour, range(4))}
    loads = committed_loads(project)
    assert [start for start, *_ in loads] == [hour(0), hour(1), hour(2), hour(3)]


# -- no skip ------------------------------------------------------------------------------------


def test_hours_load_in_order_one_committed_load_each_without_skipping(
    engine, emulator, make_project
):
    project = make_project(emulator.base_url)
    run_pipeline(project, available_at(8))

    loads = committed_loads(project)
    assert [start for start, *_ in loads] == [hour(i) for i in range(8)]
    assert all(status == "committed" for *_, status in loads)
    assert all(end == start + timedelta(hours=1) for start, end, *_ in loads)
    ids = table_rows(project, "SELECT load_id FROM meta.loads ORDER BY load_id")
    assert [i for (i,) in ids] == list(range(1, 9))
    # Raw holds every line the emulator has for each hour, under that hour's load.
    per_hour = raw_rows_per_hour(project)
    assert per_hour == {h: emulator_line_count(emulator.store, h) for h in map(hour, range(8))}
    assert [rows for _, _, rows, _ in loads] == [per_hour[hour(i)] for i in range(8)]
    # Each load holds only files of its own hour.
    mismatched = table_rows(
        project,
        "SELECT count(*) FROM raw.amplitude_events AS r JOIN meta.loads AS l USING (load_id) "
        "WHERE r.origin NOT LIKE '%\\_' || strftime(l.window_start, '%Y-%m-%d') || '\\_' "
        "|| CAST(extract(hour FROM l.window_start) AS INTEGER) || '#%' ESCAPE '\\'",
    )
    assert mismatched == [(0,)]
    assert watermark(project) == hour(8)


def test_gap_catch_up_asks_hours_per_request_but_commits_hour_by_hour(
    engine, emulator, make_project
):
    project = make_project(emulator.base_url, hours_per_request=6)
    run_pipeline(project, available_at(2))
    assert watermark(project) == hour(2)
    before = len(emulator.requests)

    summary = run_pipeline(project, available_at(20))

    catch_up = [(r.start, r.end, r.status) for r in emulator.requests[before:]]
    assert catch_up == [
        (hour(2), hour(7), 200),
        (hour(8), hour(13), 200),
        (hour(14), hour(19), 200),
    ]  # ceil(18 / 6) = 3 requests
    assert [w.window_start for w in summary.windows] == [hour(i) for i in range(2, 20)]
    loads = committed_loads(project)
    assert [start for start, *_ in loads] == [hour(i) for i in range(20)]
    assert len({w.load_id for w in summary.windows}) == 18
    assert watermark(project) == hour(20)
    per_hour = raw_rows_per_hour(project)
    assert per_hour == {h: emulator_line_count(emulator.store, h) for h in map(hour, range(20))}


# -- reruns -------------------------------------------------------------------------------------


def test_rerun_with_the_same_clock_loads_nothing_and_changes_nothing(
    engine, emulator, make_project
):
    project = make_project(emulator.base_url)
    run_pipeline(project, available_at(4))
    before = snapshot(project)
    requests_before = len(emulator.requests)

    summary = run_pipeline(project, available_at(4))

    assert summary.windows == []
    assert len(emulator.requests) == requests_before
    after = snapshot(project)
    assert after == before
    assert len(after["raw"]) > 0
    if engines.staging_ported():
        assert len(after["staging"]) == len(after["raw"])
    runs = table_rows(project, "SELECT status FROM meta.runs ORDER BY run_id")
    assert runs == [("ok",), ("ok",)]


# -- empty hours --------------------------------------------------------------------------------


def test_hours_absent_from_the_zip_load_as_empty_windows_and_the_watermark_passes_them(
    engine: str,
    make_project,
):
    store = ExportStore(START, hour(3), spec=SMALL)  # data only for hours 0..2
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as em:
        project = make_project(em.base_url, hours_per_request=6)
        summary = run_pipeline(project, available_at(6))
        requests = [(r.start, r.end, r.status) for r in em.requests]

    assert requests == [(hour(0), hour(5), 200)]
    assert [(w.window_start, w.rows) for w in summary.windows][3:] == [
        (hour(3), 0),
        (hour(4), 0),
        (hour(5), 0),
    ]
    loads = committed_loads(project)
    assert [(start, rows, status) for start, _, rows, status in loads][3:] == [
        (hour(3), 0, "committed"),
        (hour(4), 0, "committed"),
        (hour(5), 0, "committed"),
    ]
    assert watermark(project) == hour(6)
    per_hour = raw_rows_per_hour(project)
    assert per_hour == {
        **{hour(i): emulator_line_count(store, hour(i)) for i in range(3)},
        **{hour(i): 0 for i in range(3, 6)},
    }


def test_a_404_range_loads_as_empty_windows_and_the_watermark_passes_them(engine, make_project):
    store = ExportStore(START, hour(2), spec=SMALL)  # data only for hours 0..1
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as em:
        project = make_project(em.base_url, hours_per_request=4)
        run_pipeline(project, available_at(2))
        before = len(em.requests)
        summary = run_pipeline(project, available_at(10))
        requests = [(r.start, r.end, r.status) for r in em.requests[before:]]

    assert requests == [(hour(2), hour(5), 404), (hour(6), hour(9), 404)]
    assert [(w.window_start, w.rows, w.files) for w in summary.windows] == [
        (hour(i), 0, 0) for i in range(2, 10)
    ]
    loads = committed_loads(project)
    assert [start for start, *_ in loads] == [hour(i) for i in range(10)]
    assert all(status == "committed" for *_, status in loads)
    assert watermark(project) == hour(10)
    assert raw_rows_per_hour(project) == {
        hour(0): emulator_line_count(store, hour(0)),
        hour(1): emulator_line_count(store, hour(1)),
        **{hour(i): 0 for i in range(2, 10)},
    }


# -- availability -------------------------------------------------------------------------------


def test_hours_the_api_cannot_export_yet_are_never_requested(engine, make_project):
    now = available_at(5)
    not_yet = Fault("unavailable", hours={hour(5), hour(6), hour(7)})
    store = ExportStore(START, hour(12), spec=SMALL)
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY, faults=[not_yet], now=now) as em:
        project = make_project(em.base_url, hours_per_request=6)
        summary = run_pipeline(project, now)
        requests = em.requests
        uses = em.faults.uses(not_yet)

    last_available = hour(4)
    assert requests and all(r.end is not None and r.end <= last_available for r in requests)
    assert uses == 0
    assert [w.window_start for w in summary.windows] == [hour(i) for i in range(5)]
    assert watermark(project) == hour(5)
    assert raw_rows_per_hour(project) == {
        hour(i): emulator_line_count(store, hour(i)) for i in range(5)
    }


# -- status -------------------------------------------------------------------------------------


def test_status_shows_the_watermark_and_the_due_hours(engine, emulator, make_project):
    project = make_project(emulator.base_url)
    with Pipeline(project, now=available_at(3)) as pipeline:
        fresh = pipeline.status().sources
    assert fresh[0].position == "never loaded"
    assert fresh[0].due == 3

    run_pipeline(project, available_at(3))
    with Pipeline(project, now=available_at(10)) as pipeline:
        status = pipeline.status()

    (mark,) = status.sources
    assert mark.source == "amplitude"
    assert mark.stream == "events"
    assert mark.position == "20240301T03"
    assert mark.due == 7  # hours 3..9
    assert mark.last_available == "20240301T09"
    assert len(status.loads) == 3
    assert status.quarantined == 0

    with Pipeline(project, now=available_at(3)) as pipeline:
        (caught_up,) = pipeline.status().sources
    assert caught_up.due == 0
