"""The fault matrix: what each failure of the Export API does to a run and to the warehouse.

Faults are injected by the emulator (real HTTP on loopback); every assertion is on the DuckDB
file or on the emulator's request log.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, Fault, parse_fault
from anchorflow.dev.synth.amplitude import export_file_name
from anchorflow.errors import TerminalSourceError, TransientSourceError
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

MakeProject = Callable[..., Project]


# -- helpers ------------------------------------------------------------------------------------


def emulator_lines(store: ExportStore, at: datetime) -> list[bytes]:
    """The hour's lines as the store holds them, member by member, in part order."""
    return [
        line
        for data in store.files(at).values()
        for line in gzip.decompress(data).split(b"\n")
        if line
    ]


def watermark(path: Path) -> datetime | None:
    rows = table_rows(path, NEXT_HOUR)
    return rows[0][0] if rows else None


def loaded_hours(path: Path) -> list[datetime]:
    rows = table_rows(
        path,
        "SELECT window_start FROM meta.loads WHERE status = 'committed' ORDER BY window_start",
    )
    return [start for (start,) in rows]


def raw_rows_per_hour(path: Path) -> dict[datetime, int]:
    rows = table_rows(
        path,
        "SELECT l.window_start, count(r.load_id) FROM meta.loads AS l "
        "LEFT JOIN raw.amplitude_events AS r USING (load_id) "
        "WHERE l.status = 'committed' GROUP BY l.window_start ORDER BY l.window_start",
    )
    return dict(rows)


def raw_origins(path: Path) -> set[str]:
    return {o for (o,) in table_rows(path, "SELECT DISTINCT origin FROM raw.amplitude_events")}


def staging(path: Path) -> list[tuple[Any, ...]]:
    return table_rows(
        path,
        "SELECT * EXCLUDE (event_properties), event_properties::VARCHAR "
        "FROM staging.events ORDER BY event_uuid",
    )


def clean_staging(make_project: MakeProject, now: datetime, hours: int) -> list[tuple[Any, ...]]:
    """Staging after a clean run over a fresh emulator with the same data and no faults."""
    store = ExportStore(START, START + timedelta(hours=hours), spec=SMALL)
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as clean:
        project = make_project(clean.base_url)
        run_pipeline(project, now)
    return staging(project.warehouse_path)


def requests_of(em: AmplitudeEmulator, since: int = 0) -> list[tuple[Any, ...]]:
    return [(r.start, r.end, r.status) for r in em.requests[since:]]


def fresh_emulator(hours: int = 12, **kwargs: Any) -> AmplitudeEmulator:
    store = ExportStore(START, START + timedelta(hours=hours), spec=SMALL)
    return AmplitudeEmulator(store, API_KEY, SECRET_KEY, **kwargs)


# -- HTTP status faults -------------------------------------------------------------------------


def test_rate_limit_with_retry_after_is_retried_then_loads(make_project):
    with fresh_emulator(faults=[parse_fault("rate_limit:times=2,retry_after=0")]) as em:
        project = make_project(em.base_url)
        summary = run_pipeline(project, available_at(3))
        requests = requests_of(em)
        lines = sum(len(emulator_lines(em.store, hour(i))) for i in range(3))

    assert requests == [(hour(0), hour(2), 429), (hour(0), hour(2), 429), (hour(0), hour(2), 200)]
    assert loaded_hours(project.warehouse_path) == [hour(0), hour(1), hour(2)]
    assert summary.rows == lines
    count = table_rows(project.warehouse_path, "SELECT count(*) FROM staging.events")
    assert count == [(lines,)]


def test_500_and_504_once_each_are_retried_then_load(make_project):
    faults = [Fault("error_500", times=1), Fault("error_504", times=1)]
    with fresh_emulator(faults=faults) as em:
        project = make_project(em.base_url)
        run_pipeline(project, available_at(3))
        statuses = [status for *_, status in requests_of(em)]
        expected = {hour(i): len(emulator_lines(em.store, hour(i))) for i in range(3)}

    assert statuses == [500, 504, 200]
    assert raw_rows_per_hour(project.warehouse_path) == expected
    assert watermark(project.warehouse_path) == hour(3)


def test_a_rate_limit_that_never_lifts_fails_the_run_after_the_retry_attempts(make_project):
    with fresh_emulator(faults=[parse_fault("rate_limit:retry_after=0")]) as em:
        project = make_project(em.base_url, retry={"attempts": 3, "base_delay": "10ms"})
        with pytest.raises(TransientSourceError, match="HTTP 429"):
            run_pipeline(project, available_at(3))
        requests = requests_of(em)

    assert requests == [(hour(0), hour(2), 429)] * 3
    path = project.warehouse_path
    assert table_rows(path, "SELECT count(*) FROM meta.loads") == [(0,)]
    assert watermark(path) is None


def test_persistent_500_fails_the_run_keeps_committed_hours_and_a_later_run_completes(
    make_project,
):
    broken = Fault("error_500", hours={hour(6)})  # every request that covers hour 6
    with fresh_emulator(faults=[broken]) as em:
        project = make_project(em.base_url, hours_per_request=6)
        with pytest.raises(TransientSourceError) as failure:
            run_pipeline(project, available_at(12))
        failed_requests = requests_of(em)

        assert failed_requests[0] == (hour(0), hour(5), 200)
        assert failed_requests[1:] == [(hour(6), hour(11), 500)] * 4  # retry.attempts
        assert "export?start=20240301T06&end=20240301T11" in str(failure.value)
        path = project.warehouse_path
        assert watermark(path) == hour(6)
        assert loaded_hours(path) == [hour(i) for i in range(6)]
        # Nothing of the failed hours reached raw, staging or the journal.
        assert not any(f"_2024-03-01_{h}#" in o for o in raw_origins(path) for h in range(6, 12))
        assert table_rows(
            path, f"SELECT count(*) FROM meta.loads WHERE window_start >= '{hour(6)}'"
        ) == [(0,)]
        runs = table_rows(path, "SELECT status, detail FROM meta.runs")
        assert [status for status, _ in runs] == ["failed"]
        assert "20240301T06" in runs[0][1]

        em.faults.clear()
        before = len(em.requests)
        run_pipeline(project, available_at(12))
        assert requests_of(em, before) == [(hour(6), hour(11), 200)]

    assert watermark(path) == hour(12)
    assert loaded_hours(path) == [hour(i) for i in range(12)]
    assert staging(path) == clean_staging(make_project, available_at(12), 12)


def test_a_slow_response_within_the_timeout_still_loads(make_project):
    with fresh_emulator(faults=[Fault("slow", delay=0.2)]) as em:
        project = make_project(em.base_url, timeout="20s")
        run_pipeline(project, available_at(3))
        statuses = [status for *_, status in requests_of(em)]
        expected = {hour(i): len(emulator_lines(em.store, hour(i))) for i in range(3)}

    assert statuses == [200]
    assert raw_rows_per_hour(project.warehouse_path) == expected


def test_a_response_slower_than_the_timeout_is_retried(make_project):
    stalled = Fault("slow", delay=5.0, times=1)
    with fresh_emulator(faults=[stalled]) as em:
        for i in range(3):  # generate the data up front: only the fault is slow
            em.store.files(hour(i))
        project = make_project(em.base_url, timeout="1s")
        run_pipeline(project, available_at(3))
        uses = em.faults.uses(stalled)
        expected = {hour(i): len(emulator_lines(em.store, hour(i))) for i in range(3)}

    assert uses == 1
    assert raw_rows_per_hour(project.warehouse_path) == expected
    assert watermark(project.warehouse_path) == hour(3)


# -- damaged downloads --------------------------------------------------------------------------


def test_a_truncated_zip_once_is_downloaded_again_and_loads(make_project):
    with fresh_emulator(faults=[parse_fault("truncated_zip:times=1")]) as em:
        project = make_project(em.base_url)
        run_pipeline(project, available_at(3))
        requests = requests_of(em)
        expected = {hour(i): len(emulator_lines(em.store, hour(i))) for i in range(3)}

    assert requests == [(hour(0), hour(2), 200), (hour(0), hour(2), 200)]
    assert raw_rows_per_hour(project.warehouse_path) == expected
    assert watermark(project.warehouse_path) == hour(3)


def test_a_zip_truncated_on_every_download_fails_terminally_and_keeps_the_watermark(
    make_project,
):
    with fresh_emulator() as em:
        project = make_project(em.base_url)
        run_pipeline(project, available_at(3))
        em.faults.add(Fault("truncated_zip"))
        before = len(em.requests)
        with pytest.raises(TerminalSourceError) as failure:
            run_pipeline(project, available_at(6))
        requests = requests_of(em, before)

    assert "20240301T03" in str(failure.value)
    assert requests == [(hour(3), hour(5), 200)] * 3  # download_attempts
    assert watermark(project.warehouse_path) == hour(3)
    assert loaded_hours(project.warehouse_path) == [hour(0), hour(1), hour(2)]


def test_a_corrupt_gzip_once_is_downloaded_again_from_that_hour_and_loads(make_project):
    with fresh_emulator(faults=[parse_fault("corrupt_gzip:hours=20240301T03,times=1")]) as em:
        project = make_project(em.base_url, hours_per_request=6)
        run_pipeline(project, available_at(6))
        requests = requests_of(em)

    assert requests == [(hour(0), hour(5), 200), (hour(3), hour(5), 200)]
    path = project.warehouse_path
    assert loaded_hours(path) == [hour(i) for i in range(6)]
    assert watermark(path) == hour(6)
    assert staging(path) == clean_staging(make_project, available_at(6), 6)


def test_a_gzip_corrupt_on_every_download_fails_at_that_hour_keeping_earlier_hours(
    make_project,
):
    with fresh_emulator(faults=[parse_fault("corrupt_gzip:hours=20240301T03")]) as em:
        project = make_project(em.base_url, hours_per_request=6)
        with pytest.raises(TerminalSourceError) as failure:
            run_pipeline(project, available_at(6))
        requests = requests_of(em)
        expected = {hour(i): len(emulator_lines(em.store, hour(i))) for i in range(3)}

    assert "20240301T03" in str(failure.value)
    assert requests == [(hour(0), hour(5), 200), (hour(3), hour(5), 200), (hour(3), hour(5), 200)]
    path = project.warehouse_path
    assert watermark(path) == hour(3)
    # Hours 0..2 came in the same request as the corrupt hour and stay committed, complete.
    assert raw_rows_per_hour(path) == expected
    assert not any(f"_2024-03-01_{h}#" in o for o in raw_origins(path) for h in (3, 4, 5))


@pytest.mark.parametrize(("attempts", "loads"), [(3, True), (2, False)])
def test_download_attempts_bound_the_downloads_of_a_corrupt_hour(make_project, attempts, loads):
    corrupt_twice = parse_fault("corrupt_gzip:hours=20240301T01,times=2")
    with fresh_emulator(faults=[corrupt_twice]) as em:
        project = make_project(em.base_url, download_attempts=attempts)
        if loads:
            run_pipeline(project, available_at(3))
        else:
            with pytest.raises(TerminalSourceError, match="20240301T01"):
                run_pipeline(project, available_at(3))
        requests = requests_of(em)

    first = (hour(0), hour(2), 200)
    again = (hour(1), hour(2), 200)
    assert requests == [first, again, again][:attempts]
    path = project.warehouse_path
    assert loaded_hours(path) == ([hour(0), hour(1), hour(2)] if loads else [hour(0)])
    assert watermark(path) == (hour(3) if loads else hour(1))


def test_a_malformed_line_is_quarantined_and_the_rest_of_the_hour_loads(make_project):
    with fresh_emulator(faults=[parse_fault("malformed_line:hours=20240301T01")]) as em:
        project = make_project(em.base_url)
        summary = run_pipeline(project, available_at(3))
        first_file = export_file_name(SMALL.project_id, hour(1), 0)
        original = gzip.decompress(em.store.files(hour(1))[first_file]).split(b"\n")
        lines = {hour(i): len(emulator_lines(em.store, hour(i))) for i in range(3)}

    path = project.warehouse_path
    rows = table_rows(path, "SELECT origin, line_no, reason, record, stage FROM meta.quarantine")
    assert len(rows) == 1
    origin, line_no, reason, record, stage = rows[0]
    assert origin == first_file
    assert line_no == 3
    assert reason.startswith("not valid JSON")
    assert record == original[2][:40].decode()
    assert stage == "land"
    assert summary.quarantined == 1
    # Every other line landed, line 3 of that file did not.
    assert raw_rows_per_hour(path) == {**lines, hour(1): lines[hour(1)] - 1}
    around = table_rows(
        path,
        f"SELECT line_no FROM raw.amplitude_events WHERE origin = '{first_file}' "
        "AND line_no <= 4 ORDER BY line_no",
    )
    assert around == [(1,), (2,), (4,)]
    assert watermark(path) == hour(3)


def test_reexported_events_land_twice_in_raw_but_stage_once_from_the_earlier_load(
    make_project,
):
    with fresh_emulator(faults=[parse_fault("reexport:hours=20240301T02,count=5")]) as em:
        project = make_project(em.base_url)
        run_pipeline(project, available_at(4))

    path = project.warehouse_path
    twice = table_rows(
        path,
        "SELECT record->>'uuid' AS uuid, list(l.window_start ORDER BY l.window_start) "
        "FROM raw.amplitude_events JOIN meta.loads AS l USING (load_id) "
        "GROUP BY uuid HAVING count(*) > 1",
    )
    assert len(twice) == 5
    assert all(hours == [hour(1), hour(2)] for _, hours in twice)
    distinct, total = table_rows(
        path, "SELECT count(DISTINCT event_uuid), count(*) FROM staging.events"
    )[0]
    assert distinct == total
    staged_from = table_rows(
        path,
        "SELECT DISTINCT l.window_start FROM staging.events AS s "
        "JOIN meta.loads AS l USING (load_id) "
        "WHERE s.event_uuid::VARCHAR IN ("
        "  SELECT record->>'uuid' FROM raw.amplitude_events "
        "  GROUP BY ALL HAVING count(*) > 1)",
    )
    assert staged_from == [(hour(1),)]
    assert staging(path) == clean_staging(make_project, available_at(4), 4)


# -- API refusals -------------------------------------------------------------------------------


def test_range_too_large_halves_the_request_and_every_hour_still_loads(make_project):
    with fresh_emulator(max_hours_per_request=2) as em:
        project = make_project(em.base_url, hours_per_request=6)
        run_pipeline(project, available_at(10))
        requests = requests_of(em)
        expected = {hour(i): len(emulator_lines(em.store, hour(i))) for i in range(10)}

    assert requests[0] == (hour(0), hour(5), 400)
    served = [(start, end) for start, end, status in requests if status == 200]
    assert all(end - start <= timedelta(hours=1) for start, end in served)  # at most 2 hours
    covered = sorted(start + timedelta(hours=i) for start, end in served
                     for i in range(int((end - start) / timedelta(hours=1)) + 1))  # fmt: skip
    assert covered == [hour(i) for i in range(10)]
    assert all(status in (200, 400) for *_, status in requests)
    assert raw_rows_per_hour(project.warehouse_path) == expected
    assert watermark(project.warehouse_path) == hour(10)


def test_wrong_credentials_fail_terminally_load_nothing_and_never_show_the_secret(
    make_project, monkeypatch
):
    secret = "wrong-secret-7c41d9"
    monkeypatch.setenv("AMPLITUDE_SECRET_KEY", secret)
    with fresh_emulator() as em:
        project = make_project(em.base_url)
        with pytest.raises(TerminalSourceError) as failure:
            run_pipeline(project, available_at(3))
        requests = requests_of(em)

    assert requests == [(hour(0), hour(2), 401)]  # not retried
    assert secret not in str(failure.value)
    assert secret not in repr(failure.value)
    path = project.warehouse_path
    assert table_rows(path, "SELECT count(*) FROM meta.loads") == [(0,)]
    assert table_rows(path, "SELECT count(*) FROM meta.cursors") == [(0,)]
    assert table_rows(path, "SELECT count(*) FROM raw.amplitude_events") == [(0,)]
    runs = table_rows(path, "SELECT status, detail FROM meta.runs")
    assert [status for status, _ in runs] == ["failed"]
    assert secret not in runs[0][1]
