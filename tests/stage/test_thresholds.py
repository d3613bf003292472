"""When a model's staging runs: min_rows, max_age, force; and how batch_rows cuts batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.journal import utcnow
from tests.stage.helpers import LATER, commit, rows, stage, u, write_project

pytestmark = pytest.mark.integration


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
    assert slow.waiting == "7 untyped rows of the 1,000 that start a batch"
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
    assert run.waiting.startswith("5 untyped rows of the 1,000 that start a batch or until ")
    (run,) = stage(project, now=LATER)  # long after
    assert (run.loads, run.rows, run.waiting) == (2, 5, None)
    assert [b[1:] for b in typed(project, "m")] == [([1, 2], 5)]


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
