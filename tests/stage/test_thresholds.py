"""When a model's staging runs: min_rows, max_age, force; and how batch_rows cuts batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore, Fault
from anchorflow.journal import utcnow
from tests.conftest import (
    API_KEY,
    SECRET_KEY,
    SMALL,
    START,
    available_at,
    hour,
    run_pipeline,
)
from tests.stage.helpers import LATER, commit, execute, rows, stage, u, write_project

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("engine")]


def model(**thresholds: Any) -> dict[str, Any]:
    columns = {"event_uuid": {"path": "uuid", "type": "UUID"}, "n": "INTEGER"}
    return {"source": "amplitude", "unique_key": "event_uuid", "thresholds": thresholds,
            "columns": columns}  # fmt: skip


def load_windows(project: Any, sizes: list[int]) -> None:
    n = 0
    for window, size in enumerate(sizes):
        commit(project, window, [{"uuid": u(n + i), "n": n + i}
                                 for i in range(size)])  # fmt: skip
        n += size


def typed(project: Any, name: str) -> list[tuple[Any, ...]]:
    """(batch, its loads, rows staged) of the model, per batch."""
    return rows(
        project,
        "SELECT batch_id, list(load_id ORDER BY load_id), sum(staged) FROM meta.transfers "
        f"WHERE model = '{name}' GROUP BY 1 ORDER BY 1",
    )


def test_loads_wait_for_min_rows_and_force_types_them(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"slow": model(min_rows=1000), "eager": model()})
    load_windows(project, [3, 4])
    # The default threshold (one row) types each window as it lands; the other waits.
    assert [b[1] for b in typed(project, "eager")] == [[1], [2]]
    assert typed(project, "slow") == []

    (slow, eager) = stage(project, now=utcnow())
    assert (slow.loads, slow.pending_rows) == (0, 7)
    assert slow.waiting == "7 untyped rows; a batch starts at 1,000 (min_rows)"
    assert (eager.loads, eager.waiting) == (0, None)
    assert rows(project, "SELECT count(*) FROM staging.slow") == [(0,)]

    (slow,) = stage(project, "slow", force=True)
    assert (slow.loads, slow.batches, slow.rows, slow.waiting) == (2, 1, 7, None)
    assert [b[1:] for b in typed(project, "slow")] == [([1, 2], 7)]
    assert rows(project, "SELECT count(*) FROM staging.slow") == [(7,)]


def test_enough_rows_start_the_batch_without_force(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"m": model(min_rows=6)})
    load_windows(project, [4])
    assert stage(project)[0].waiting is not None
    load_windows(project, [4, 4])  # hours 0 and 1 again: 8 untyped rows in loads 2 and 3
    (run,) = stage(project)
    assert (run.loads, run.rows, run.waiting) == (2, 8, None)


def test_max_age_elapsed_stages_what_is_pending(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"m": model(min_rows=1000, max_age="1h")})
    load_windows(project, [2, 3])
    (run,) = stage(project, now=utcnow())  # the loads are seconds old
    assert run.loads == 0
    assert run.waiting.startswith("5 untyped rows; a batch starts at 1,000 (min_rows) or at ")
    assert run.waiting.endswith(" UTC (max_age)")
    (run,) = stage(project, now=LATER)  # long after
    assert (run.loads, run.rows, run.waiting) == (2, 5, None)
    assert [b[1:] for b in typed(project, "m")] == [([1, 2], 5)]


def test_an_empty_load_left_untyped_is_typed_whatever_the_thresholds(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"m": model(min_rows=1000)})
    load_windows(project, [0, 3])
    assert [b[1:] for b in typed(project, "m")] == [([1], 0)]  # typed in its own commit
    # As an older version left it: the empty load untyped, so the model waited on 0 rows.
    execute(project, "DELETE FROM meta.transfers WHERE load_id = 1")
    (run,) = stage(project, now=utcnow())
    assert (run.loads, run.rows, run.pending_rows) == (1, 0, 3)
    assert run.waiting == "3 untyped rows; a batch starts at 1,000 (min_rows)"
    assert [b[1:] for b in typed(project, "m")] == [([1], 0)]


def test_empty_loads_typed_since_do_not_restart_max_age(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"m": model(min_rows=1000, max_age="1h")})
    load_windows(project, [2])
    # As if it landed 2 hours ago.
    execute(project, "UPDATE meta.loads SET finished_at = finished_at - INTERVAL 2 HOUR")
    commit(project, 1, [])  # an empty hour now: typed at once, it is no run of the model
    (run,) = stage(project, now=utcnow())
    assert (run.loads, run.rows, run.waiting) == (1, 2, None)


def test_batch_rows_cuts_batches_of_whole_loads(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"m": model(min_rows=1000, batch_rows=6)})
    load_windows(project, [3, 3, 8, 2, 1, 4])
    (run,) = stage(project, force=True)
    assert (run.loads, run.batches, run.rows) == (6, 4, 21)
    # loads never split: 3+3 fit, 8 goes alone, 2+1 fit, 4 would make 7
    assert [b[1:] for b in typed(project, "m")] == [
        ([1, 2], 6), ([3], 8), ([4, 5], 3), ([6], 4)
    ]  # fmt: skip
    per_load = rows(project, "SELECT load_id, count(*) FROM staging.m GROUP BY 1 ORDER BY 1")
    assert per_load == [(1, 3), (2, 3), (3, 8), (4, 2), (5, 1), (6, 4)]
    stats = rows(project, "SELECT DISTINCT batch_id, load_ids FROM meta.field_stats ORDER BY 1")
    assert [s[1] for s in stats] == [[1, 2], [3], [4, 5], [6]]


def test_an_empty_hour_does_not_keep_later_hours_from_being_typed_in_their_commit(
    make_project: Any,
) -> None:
    store = ExportStore(START, hour(6), spec=SMALL)
    # Hour 2 has no data: the API answers 404 and the hour commits as an empty load.
    hidden = Fault("unavailable", hours={hour(2)})
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY, faults=[hidden]) as emulator:
        project = make_project(emulator.base_url, hours_per_request=1)
        summary = run_pipeline(project, available_at(6))
        assert [r.status for r in emulator.requests] == [200, 200, 404, 200, 200, 200]
    assert [w.rows > 0 for w in summary.windows] == [True, True, False, True, True, True]
    loads = rows(project, "SELECT load_id, rows, staged FROM meta.loads ORDER BY load_id")
    # Every hour with rows was typed in its own commit (its load record counts what it staged).
    assert [(load_id, staged > 0) for load_id, n, staged in loads if n] == [
        (1, True), (2, True), (4, True), (5, True), (6, True)]  # fmt: skip
    # The empty load is consumed (typed: nothing to stage), each load in a batch of its own.
    assert [b[1:] for b in typed(project, "events")] == [
        ([1], loads[0][2]), ([2], loads[1][2]), ([3], 0), ([4], loads[3][2]),
        ([5], loads[4][2]), ([6], loads[5][2])]  # fmt: skip
    (run,) = stage(project, now=utcnow())
    assert (run.loads, run.pending_rows, run.waiting) == (0, 0, None)
