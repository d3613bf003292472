"""The transfer log: each (load, model) is typed once; a dropped table is retyped whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from tests.builders import amplitude_source, build_project
from tests.conftest import available_at, run_pipeline
from tests.stage.helpers import commit, drop_tables, every_row, rows, stage, u, write_project

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("engine")]


def models() -> dict[str, Any]:
    key = {"event_uuid": {"path": "uuid", "type": "UUID"}}
    return {
        "events": {"source": "amplitude", "unique_key": "event_uuid",
                   "columns": {**key, "event_type": "VARCHAR", "n": "INTEGER"}},
        # waits for 1000 rows: typed by `stage`, from raw, not with the window
        "purchases": {"source": "amplitude", "selector": "event_type = 'purchase'",
                      "unique_key": "event_uuid", "on_bad_value": "quarantine",
                      "thresholds": {"min_rows": 1000},
                      "columns": {**key, "n": "INTEGER"}},
    }  # fmt: skip


def windows(project: Any) -> None:
    n = 0
    for window, size in enumerate([4, 3, 5]):
        events = []
        for _ in range(size):
            n += 1
            kind = "purchase" if n % 2 else "view"
            events.append({"uuid": u(n), "event_type": kind, "n": "bad" if n == 7 else n})
        events.append({"uuid": u(1), "event_type": "purchase", "n": 1})  # re-exported
        commit(project, window, events)


STAGED = {
    "events": "SELECT * FROM staging.events ORDER BY event_uuid",
    "purchases": "SELECT * FROM staging.purchases ORDER BY event_uuid",
    "transfers": "SELECT load_id, model, staged, quarantined, type_errors FROM meta.transfers "
    "ORDER BY 1, 2, 3, 4, 5",
}


def snapshot(project: Any) -> dict[str, list[tuple[Any, ...]]]:
    found = {name: rows(project, sql) for name, sql in STAGED.items()}
    return found | {
        name: every_row(project, f"meta.{name}") for name in ("type_errors", "quarantine")
    }


def test_one_transfer_per_load_and_model_and_a_rerun_adds_nothing(tmp_path: Path) -> None:
    project = write_project(tmp_path, models())
    windows(project)
    assert rows(project, "SELECT model, list(load_id ORDER BY load_id) FROM meta.transfers "
                         "GROUP BY model") == [("events", [1, 2, 3])]  # fmt: skip
    stage(project, force=True)
    transfers = rows(
        project,
        "SELECT model, load_id, staged, quarantined, type_errors FROM meta.transfers "
        "ORDER BY 1, 2, 3, 4, 5",
    )
    assert transfers == [
        ("events", 1, 4, 0, 0), ("events", 2, 3, 0, 1), ("events", 3, 5, 0, 0),
        ("purchases", 1, 2, 0, 0), ("purchases", 2, 1, 1, 1), ("purchases", 3, 2, 0, 0),
    ]  # fmt: skip
    before = snapshot(project)
    assert len(before["events"]) == 12 and len(before["purchases"]) == 5

    for force in (False, True):
        runs = stage(project, force=force)
        assert [(r.model, r.loads, r.rows, r.waiting) for r in runs] == [
            ("events", 0, 0, None), ("purchases", 0, 0, None)
        ]  # fmt: skip
        assert snapshot(project) == before


def test_a_dropped_staging_table_is_retyped_identically(tmp_path: Path) -> None:
    project = write_project(tmp_path, models())
    windows(project)
    stage(project, force=True)
    before = snapshot(project)
    drop_tables(project, "events", "purchases")
    runs = stage(project, force=True)
    assert [(r.model, r.loads) for r in runs] == [("events", 3), ("purchases", 3)]
    assert snapshot(project) == before


def test_a_mapping_change_is_applied_by_dropping_the_table(tmp_path: Path) -> None:
    project = write_project(tmp_path, models())
    windows(project)
    changed = models()
    changed["events"]["columns"]["n"] = "VARCHAR"
    retyped = write_project(tmp_path, changed)
    with pytest.raises(Exception, match=r"staging.events.n is INTEGER in the warehouse but "
                                        r"VARCHAR in the project"):  # fmt: skip
        stage(retyped)
    drop_tables(project, "events")
    stage(retyped)
    assert rows(project, "SELECT n FROM staging.events WHERE n = 'bad'") == [("bad",)]
    assert rows(project, "SELECT count(*) FROM meta.type_errors WHERE model = 'events'") == [(0,)]


@pytest.mark.parametrize(
    "due",
    [1, 0],
    ids=["a_window_due", "nothing_due"],
)
def test_a_run_after_drop_table_retypes_everything(
    emulator: AmplitudeEmulator, tmp_path: Path, due: int
) -> None:
    sources = {"amplitude": amplitude_source(emulator.base_url)}
    project = build_project(tmp_path / "p", sources=sources)
    run_pipeline(project, available_at(2))
    before = every_row(project, "staging.events")
    assert len(before) > 100
    drop_tables(project, "events")
    run_pipeline(project, available_at(2 + due))
    after = every_row(project, "staging.events", where="load_id <= 2")
    assert after == before
