"""`Pipeline.backfill`: reloading past hours replaces their loads and leaves the data as it was.

Real HTTP to the Amplitude emulator on loopback, real DuckDB files; assertions are on the
warehouse's tables and on the emulator's request log.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, Fault, parse_fault
from anchorflow.dev.synth.amplitude import SynthSpec, hour_files
from anchorflow.errors import ConfigError
from anchorflow.project_types import format_hour
from anchorflow.run import Pipeline
from tests import engines
from tests.builders import amplitude_source, build_project, events_model
from tests.conftest import (
    API_KEY,
    NEXT_HOUR,
    SECRET_KEY,
    SMALL,
    START,
    available_at,
    hour,
    needs_staging,
    run_pipeline,
    table_rows,
)

pytestmark = pytest.mark.integration


# -- helpers ------------------------------------------------------------------------------------


def backfill(project: Any, start: datetime, end: datetime, now: datetime) -> Any:
    with Pipeline(project, now=now) as pipeline:
        return pipeline.backfill("amplitude", format_hour(start), format_hour(end))


def fresh_emulator(hours: int = 12, **kwargs: Any) -> AmplitudeEmulator:
    store = ExportStore(START, START + timedelta(hours=hours), spec=SMALL)
    return AmplitudeEmulator(store, API_KEY, SECRET_KEY, **kwargs)


def watermark(path: Path) -> datetime | None:
    rows = table_rows(path, NEXT_HOUR)
    return rows[0][0] if rows else None


def content(path: Path) -> dict[str, Any]:
    """The data of the warehouse without load ids and wall-clock times."""
    staging = (
        "SELECT event_uuid, event_type, event_time, user_id, device_id, platform, amount, "
        "event_properties::VARCHAR FROM staging.events ORDER BY event_uuid"
    )
    return {
        "raw": table_rows(
            path,
            "SELECT source, stream, origin, line_no, record FROM raw.amplitude_events "
            "ORDER BY origin, line_no",
        ),
        "staging": table_rows(path, staging) if engines.staging_ported() else None,
        "quarantine": table_rows(
            path,
            "SELECT source, stream, stage, origin, line_no, reason, record, model "
            "FROM meta.quarantine ORDER BY origin, line_no",
        ),
        # Each committed window with its size, as (window_start, window_end, files, rows, ...).
        "committed": table_rows(
            path,
            "SELECT window_start, window_end, files, rows, bytes, quarantined "
            "FROM meta.loads WHERE status = 'committed' ORDER BY window_start",
        ),
    }


def loads(path: Path) -> list[tuple[Any, ...]]:
    return table_rows(path, "SELECT load_id, window_start, status FROM meta.loads ORDER BY load_id")


def staged_uuids(path: Path) -> list[str]:
    rows = table_rows(path, "SELECT event_uuid::VARCHAR FROM staging.events")
    return [u for (u,) in rows]


def raw_uuids(path: Path) -> set[str]:
    rows = table_rows(
        path, "SELECT DISTINCT CAST(record AS JSON)->>'uuid' FROM raw.amplitude_events"
    )
    return {u for (u,) in rows}


def clean_uuids(make_project: Any, now: datetime, hours: int) -> set[str]:
    """The staged uuids of a clean run over a fresh emulator with the same data, no faults."""
    with fresh_emulator(hours) as clean:
        project = make_project(clean.base_url)
        run_pipeline(project, now)
    return set(staged_uuids(project))


# -- replacing ----------------------------------------------------------------------------------


def test_backfill_of_loaded_hours_replaces_their_loads_and_leaves_the_data_unchanged(
    engine: str, emulator, make_project
):
    project = make_project(emulator.base_url)
    path = project
    run_pipeline(project, available_at(4))
    before = content(path)
    old = loads(path)
    before_requests = len(emulator.requests)

    summary = backfill(project, hour(1), hour(2), available_at(4))

    requests = [(r.start, r.end, r.status) for r in emulator.requests[before_requests:]]
    assert requests == [(hour(1), hour(2), 200)]
    assert [(w.window_start, w.replaced) for w in summary.windows] == [(hour(1), 1), (hour(2), 1)]
    assert content(path) == before
    after = loads(path)
    old_ids = {start: load_id for load_id, start, _ in old}
    new_ids = {start: load_id for load_id, start, status in after if status == "committed"}
    assert sorted(new_ids) == [hour(i) for i in range(4)]  # one committed load per hour
    assert [start for _, start, status in after if status == "replaced"] == [hour(1), hour(2)]
    assert {load_id for load_id, _, status in after if status == "replaced"} == {
        old_ids[hour(1)],
        old_ids[hour(2)],
    }
    assert new_ids[hour(0)] == old_ids[hour(0)] and new_ids[hour(3)] == old_ids[hour(3)]
    assert new_ids[hour(1)] != old_ids[hour(1)] and new_ids[hour(2)] != old_ids[hour(2)]
    # No row of raw or staging still points at a replaced load.
    replaced = "WHERE load_id IN (SELECT load_id FROM meta.loads WHERE status = 'replaced')"
    layers = ["raw.amplitude_events"] + (["staging.events"] if engines.staging_ported() else [])
    for layer in layers:
        assert table_rows(path, f"SELECT count(*) FROM {layer} {replaced}") == [(0,)]
    assert watermark(path) == hour(4)


def test_backfill_twice_gives_the_same_tables_as_once(engine, make_project):
    faults = [parse_fault("malformed_line:hours=20240301T02")]  # quarantine must not pile up
    with fresh_emulator(faults=faults) as em:
        project = make_project(em.base_url)
        path = project
        run_pipeline(project, available_at(5))
        backfill(project, hour(1), hour(3), available_at(5))
        once = content(path)
        backfill(project, hour(1), hour(3), available_at(5))
        twice = content(path)

    assert twice == once
    assert len(once["quarantine"]) == 1
    committed = Counter(start for _, start, status in loads(path) if status == "committed")
    assert committed == {hour(i): 1 for i in range(5)}
    replaced = Counter(start for _, start, status in loads(path) if status == "replaced")
    assert replaced == {hour(1): 2, hour(2): 2, hour(3): 2}
    assert watermark(path) == hour(5)


def test_backfill_over_a_reexported_duplicate_keeps_each_event_staged_once(engine, make_project):
    needs_staging()
    reexport = parse_fault("reexport:hours=20240301T02,count=5")  # hour 1's events again
    with fresh_emulator(faults=[reexport]) as em:
        project = make_project(em.base_url)
        path = project
        run_pipeline(project, available_at(4))
        backfill(project, hour(1), hour(2), available_at(4))
        after_both = staged_uuids(path)
        backfill(project, hour(1), hour(1), available_at(4))
        after_first = staged_uuids(path)
        backfill(project, hour(2), hour(2), available_at(4))
        after_second = staged_uuids(path)

    expected = clean_uuids(make_project, available_at(4), 4)
    for staged in (after_both, after_first, after_second):
        assert len(staged) == len(set(staged))  # each uuid once
        assert set(staged) == expected  # and none lost
    dupes = table_rows(
        path,
        "SELECT count(*) FROM (SELECT CAST(record AS JSON)->>'uuid' AS uuid "
        "FROM raw.amplitude_events GROUP BY 1 HAVING count(*) = 2) AS twice",
    )
    assert dupes == [(5,)]  # raw still holds both copies


def test_backfill_that_empties_an_hour_keeps_events_whose_other_copy_is_in_another_load(
    engine: str,
    make_project,
):
    needs_staging()
    reexport = parse_fault("reexport:hours=20240301T02,count=5")
    with fresh_emulator(faults=[reexport]) as em:
        project = make_project(em.base_url)
        path = project
        run_pipeline(project, available_at(4))
        hour_one = set(
            u
            for (u,) in table_rows(
                path,
                "SELECT CAST(record AS JSON)->>'uuid' FROM raw.amplitude_events "
                f"JOIN meta.loads USING (load_id) WHERE window_start = '{hour(1)}'",
            )
        )
        # The API now has nothing for hour 1: the backfill replaces it with an empty load.
        em.faults.add(Fault("unavailable", hours={hour(1)}))
        summary = backfill(project, hour(1), hour(1), available_at(4))

    assert [(w.window_start, w.rows) for w in summary.windows] == [(hour(1), 0)]
    staged = staged_uuids(path)
    assert len(staged) == len(set(staged))
    assert set(staged) == raw_uuids(path)  # staging holds exactly what raw still holds
    survivors = hour_one & set(staged)
    assert len(survivors) == 5  # the re-exported copies, now staged from hour 2's load
    from_hour = table_rows(
        path,
        "SELECT DISTINCT l.window_start FROM staging.events AS s "
        "JOIN meta.loads AS l USING (load_id) WHERE s.event_uuid::VARCHAR IN ("
        + ", ".join(f"'{u}'" for u in sorted(survivors))
        + ")",
    )
    assert from_hour == [(hour(2),)]


# -- refusing -----------------------------------------------------------------------------------


def test_backfill_refuses_hours_not_yet_available_and_an_end_before_the_start(
    engine: str, emulator, make_project
):
    project = make_project(emulator.base_url)
    path = project
    run_pipeline(project, available_at(3))
    before = content(path)
    requests_before = len(emulator.requests)
    now = available_at(5)  # the last available hour is hour 4

    with pytest.raises(ConfigError, match="20240301T05"):
        backfill(project, hour(3), hour(5), now)
    with pytest.raises(ConfigError, match="20240301T05"):
        backfill(project, hour(5), hour(5), now)
    with pytest.raises(ConfigError, match="before"):
        backfill(project, hour(2), hour(1), now)

    assert len(emulator.requests) == requests_before
    assert content(path) == before
    assert watermark(path) == hour(3)

    # The last available hour itself is allowed.
    summary = backfill(project, hour(4), hour(4), now)
    assert [w.window_start for w in summary.windows] == [hour(4)]


def test_backfill_of_an_unknown_source_is_a_config_error(engine, emulator, make_project):
    project = make_project(emulator.base_url)
    with Pipeline(project, now=available_at(3)) as pipeline, pytest.raises(ConfigError):
        pipeline.backfill("nope", "20240301T00", "20240301T01")
    assert emulator.requests == []


# -- the watermark ------------------------------------------------------------------------------


def test_backfill_at_the_watermark_advances_it_but_beyond_a_gap_does_not(
    engine, emulator, make_project
):
    needs_staging()
    project = make_project(emulator.base_url)
    path = project
    now = available_at(10)
    run_pipeline(project, available_at(3))
    assert watermark(path) == hour(3)

    backfill(project, hour(6), hour(7), now)  # hours 3..5 are a gap
    assert watermark(path) == hour(3)

    backfill(project, hour(3), hour(3), now)  # the hour at the watermark
    assert watermark(path) == hour(4)

    # The next run resumes at the watermark and fills the gap; nothing is lost or doubled.
    run_pipeline(project, now)
    assert watermark(path) == hour(10)
    committed = Counter(start for _, start, status in loads(path) if status == "committed")
    assert committed == {hour(i): 1 for i in range(10)}
    staged = staged_uuids(path)
    assert len(staged) == len(set(staged))
    assert set(staged) == raw_uuids(path)
    rows = table_rows(path, "SELECT count(*) FROM raw.amplitude_events")[0][0]
    assert rows == len(staged)


# -- drift ----------------------------------------------------------------------------------------


def write_hours(directory: Path, spec: SynthSpec, hours: range) -> None:
    """The export files of these hours (counted from START), as the API would serve them."""
    for n in hours:
        for name, data in hour_files(spec, hour(n)).items():
            (directory / name).write_bytes(data)


def arm_events(path: Path) -> list[tuple[Any, ...]]:
    return table_rows(
        path,
        "SELECT kind, status FROM meta.schema_events "
        "WHERE list_contains(fields, 'event_properties.experiment_arm') ORDER BY event_id",
    )


def test_backfill_before_a_field_appeared_opens_no_vanished_field_but_its_vanishing_does(
    engine: str,
    tmp_path: Path,
) -> None:
    needs_staging()
    exports = tmp_path / "exports"
    exports.mkdir()
    write_hours(exports, replace(SMALL, new_field_from=hour(3)), range(6))
    store = ExportStore.from_directory(exports, START, hour(8))
    # A model that reads keys inside event_properties (not the whole object), every row sampled.
    model = events_model(sample_percent=100)
    del model["columns"]["event_properties"]
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as em:
        sources = {"amplitude": amplitude_source(em.base_url)}
        project = build_project(tmp_path / "p", sources=sources, staging={"events": model})
        run_pipeline(project, available_at(6))
        assert arm_events(project) == [("new_field", "open")]
        # The same data again: the older hours are compared with what came before them.
        backfill(project, hour(0), hour(2), available_at(6))
        assert arm_events(project) == [("new_field", "open")]
        backfill(project, hour(2), hour(4), available_at(6))
        assert arm_events(project) == [("new_field", "open")]

        write_hours(exports, SMALL, range(6, 8))  # newer hours without the field
        store.rescan()
        run_pipeline(project, available_at(8))
    assert arm_events(project) == [("new_field", "open"), ("vanished_field", "open")]
