"""`anchorflow stage` killed between typing a batch and its commit (or just after), then rerun,
leaves staging and its journal identical to a run that never crashed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project
from anchorflow.crashpoints import CRASH_ENV
from tests.conftest import API_KEY, SECRET_KEY, env_without_crash
from tests.stage.helpers import SALT, commit, every_row, rows, stage, u, write_project

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("engine")]

ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
CRASH_EXIT = 86
WAIT = {"min_rows": 1000, "batch_rows": 10}  # typed only by `stage --force`, in several batches
KEY = {"event_uuid": {"path": "uuid", "type": "UUID"}}

MODELS: dict[str, Any] = {
    "events": {"source": "amplitude", "unique_key": "event_uuid", "thresholds": WAIT,
               "sample_percent": 100,
               "columns": {**KEY, "event_type": "VARCHAR", "n": "INTEGER",
                           "email": {"path": "user_properties.email", "pii": "hash"}}},
    "purchases": {"source": "amplitude", "selector": "event_type = 'purchase'",
                  "unique_key": "event_uuid", "on_bad_value": "quarantine", "thresholds": WAIT,
                  "columns": {**KEY, "amount": {"path": "event_properties.amount",
                                                "type": "DOUBLE", "nullable": False}}},
    "items": {"source": "amplitude", "selector": "event_type = 'purchase'", "thresholds": WAIT,
              "explode": {"path": "event_properties.items", "position": "item_index"},
              "unique_key": ["event_uuid", "item_index"],
              "columns": {**KEY, "sku": {"path": "[].sku"}}},
}  # fmt: skip

COMPARED: dict[str, tuple[str, ...]] = {
    "staging.events": (),
    "staging.purchases": (),
    "staging.items": (),
    "meta.transfers": ("typed_at",),
    "meta.type_errors": (),
    "meta.quarantine": (),
    "meta.field_stats": ("computed_at",),
    "meta.schema_events": ("seen_at", "alerted_at"),
}


def loaded_project(root: Path) -> Project:
    """Four committed hours, none typed yet (every model waits for 1000 rows)."""
    project = write_project(root, MODELS, pii_salt=SALT)
    n = 0
    for window, size in enumerate([4, 3, 5, 2]):
        records: list[dict[str, Any]] = []
        for _ in range(size):
            n += 1
            kind = "purchase" if n % 2 else "view"
            amount: Any = "n/a" if n == 5 else n * 1.5
            items = [{"sku": f"s{n}"}, {"sku": "x"}]
            records.append({"uuid": u(n), "event_type": kind, "n": n if n != 6 else "six",
                            "user_properties": {"email": f"u{n % 3}@example.com"},
                            "event_properties": {"amount": amount, "items": items}})  # fmt: skip
        records.append({"uuid": u(1), "event_type": "purchase"})  # a duplicate of the first
        commit(project, window, records)
    assert rows(project, "SELECT count(*) FROM meta.transfers") == [(0,)]
    return project


def snapshot(project: Project) -> dict[str, list[tuple[Any, ...]]]:
    return {name: every_row(project, name, exclude) for name, exclude in COMPARED.items()}


def stage_cli(project: Project, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**env_without_crash(), "AMPLITUDE_API_KEY": API_KEY, "AMPLITUDE_SECRET_KEY": SECRET_KEY}
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.run(
        [str(ANCHORFLOW), "stage", "--force", "--project", str(project.root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


_CLEAN: dict[str, dict[str, list[tuple[Any, ...]]]] = {}  # per engine, made once


@pytest.fixture
def clean(
    engine: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[tuple[Any, ...]]]:
    """The warehouse a clean stage of the loaded project leaves, on the engine of the test
    (each engine samples the statistics with its own hash)."""
    if engine not in _CLEAN:
        project = loaded_project(tmp_path_factory.mktemp("clean"))
        runs = stage(project, force=True)
        assert [(r.model, r.loads, r.batches) for r in runs] == [
            ("events", 4, 2), ("purchases", 4, 2), ("items", 4, 2)
        ]  # fmt: skip
        expected = snapshot(project)
        assert len(expected["staging.events"]) == 14
        assert expected["meta.type_errors"] and expected["meta.quarantine"]
        # plus the quarantined
        assert len(expected["staging.items"]) == 2 * len(expected["staging.purchases"]) + 2
        _CLEAN[engine] = expected
    return _CLEAN[engine]


@pytest.mark.parametrize(("point", "committed"), [("stage_before_commit", 0),
                                                  ("stage_after_commit", 1)])  # fmt: skip
def test_a_crashed_stage_rerun_equals_a_clean_one(
    tmp_path: Path, point: str, committed: int, clean: dict[str, list[tuple[Any, ...]]]
) -> None:
    project = loaded_project(tmp_path)
    crashed = stage_cli(project, crash_at=point)
    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    # The crash hits the first batch (loads 1 and 2) of the first model.
    batches = rows(project, "SELECT model, list(load_id ORDER BY load_id) FROM meta.transfers "
                            "GROUP BY model")  # fmt: skip
    assert batches == ([("events", [1, 2])] if committed else [])
    staged = rows(project, "SELECT DISTINCT load_id FROM staging.events ORDER BY 1")
    assert staged == ([(1,), (2,)] if committed else [])
    stats = rows(project, "SELECT DISTINCT model, load_ids FROM meta.field_stats")
    assert stats == ([("events", [1, 2])] if committed else [])

    (run, *_) = stage(project, force=True)  # the rerun
    assert run.loads == 4 - 2 * committed
    assert snapshot(project) == clean
