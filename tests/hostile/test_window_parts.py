"""A window larger than `max_part_bytes` is landed in parts of one load: one load id, one
commit with its journal and cursor, line numbers running on across parts; a part that fails
leaves nothing of the window."""

from __future__ import annotations

import gzip
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project, load_project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore
from anchorflow.errors import AnchorflowError
from anchorflow.run import Pipeline
from tests import engines
from tests.builders import API_KEY, ENV, SECRET_KEY, amplitude_source, build_project
from tests.conftest import available_at, run_pipeline, table_rows

pytestmark = [pytest.mark.hostile, pytest.mark.integration]

MiB = 1 << 20
EVENTS = 20_000  # about 4 MiB of text: five parts of 1 MiB


def events(first: int, count: int) -> bytes:
    lines = [
        json.dumps({
            "uuid": str(uuid.UUID(int=n)), "event_type": "click", "user_id": f"u{n % 97}",
            "event_time": "2024-03-01 00:30:00", "event_properties": {"pad": "x" * 100},
        })
        for n in range(first, first + count)
    ]  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


def serve(tmp_path: Path, members: dict[str, bytes]) -> ExportStore:
    directory = tmp_path / "export"
    directory.mkdir()
    for name, data in members.items():
        (directory / name).write_bytes(data)
    return ExportStore.from_directory(directory)


def load(tmp_path: Path, store: ExportStore, name: str, **source: Any) -> Project:
    """Run the project `name` (without staging models where the stage step does not run)."""
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as emulator:
        project = build_project(
            tmp_path / name, sources={"amplitude": amplitude_source(emulator.base_url, **source)},
            staging=None if engines.staging_ported() else {},
        )  # fmt: skip
        run_pipeline(project, available_at(1))
    return project


def project_in(root: Path) -> Project:
    """The project a failed `load` wrote in `root`."""
    return load_project(root, env={**ENV, **os.environ})


def test_a_window_in_parts_is_one_load_like_the_same_window_whole(
    engine: str, tmp_path: Path
) -> None:
    store = serve(tmp_path, {
        "187520_2024-03-01_0#0.json.gz": gzip.compress(events(0, EVENTS)),
        "187520_2024-03-01_0#1.json.gz": gzip.compress(events(EVENTS, 10)),
    })  # fmt: skip
    parts = load(tmp_path, store, "parts", max_part_bytes="1MiB")
    whole = load(tmp_path, store, "whole")
    query = "SELECT load_id, window_key, files, rows, quarantined FROM meta.loads"
    assert (
        table_rows(parts, query)
        == table_rows(whole, query)
        == [(1, "20240301T00", 2, EVENTS + 10, 0)]
    )
    raw = "SELECT origin, line_no, record FROM raw.amplitude_events ORDER BY origin, line_no"
    assert table_rows(parts, raw) == table_rows(whole, raw)
    numbers = "SELECT max(line_no), count(DISTINCT line_no) FROM raw.amplitude_events"
    assert table_rows(parts, numbers + " WHERE origin LIKE '%#0%'") == [(EVENTS, EVENTS)]
    # Typed by the stage step of the same run (not in the window's transaction).
    typed = "SELECT count(*), count(DISTINCT event_uuid) FROM staging.events"
    if engines.staging_ported():
        assert table_rows(parts, typed) == table_rows(whole, typed) == [(EVENTS + 10,) * 2]
    cursor = "SELECT cursor FROM meta.cursors"
    assert table_rows(parts, cursor) == table_rows(whole, cursor)


def test_a_bomb_after_parts_already_landed_leaves_nothing_of_the_window(
    engine: str, tmp_path: Path
) -> None:
    store = serve(tmp_path, {
        "187520_2024-03-01_0#0.json.gz": gzip.compress(events(0, EVENTS)),
        "187520_2024-03-01_0#1.json.gz": gzip.compress(b"\n" * (64 * MiB)),
    })  # fmt: skip
    with pytest.raises(AnchorflowError, match="refused as a compression bomb") as raised:
        load(tmp_path, store, "bomb", max_part_bytes="1MiB")
    assert "\n" not in str(raised.value) and "max_inflation_ratio" in str(raised.value)
    path = project_in(tmp_path / "bomb")
    for query in (
        "SELECT count(*) FROM meta.loads",
        "SELECT count(*) FROM meta.cursors",
        "SELECT count(*) FROM raw.amplitude_events",
        "SELECT count(*) FROM meta.quarantine",
    ):
        assert table_rows(path, query) == [(0,)], query


def test_a_corrupt_member_after_parts_already_landed_rolls_the_hour_back(
    engine: str, tmp_path: Path
) -> None:
    store = serve(tmp_path, {
        "187520_2024-03-01_0#0.json.gz": gzip.compress(events(0, EVENTS)),
        "187520_2024-03-01_0#1.json.gz": gzip.compress(events(EVENTS, 1000))[:-20],
    })  # fmt: skip
    with pytest.raises(AnchorflowError, match="was not committed") as raised:
        load(tmp_path, store, "corrupt", max_part_bytes="1MiB")
    assert "\n" not in str(raised.value) and "20240301T00" in str(raised.value)
    path = project_in(tmp_path / "corrupt")
    for query in ("SELECT count(*) FROM meta.loads", "SELECT count(*) FROM raw.amplitude_events"):
        assert table_rows(path, query) == [(0,)], query


def test_a_backfill_in_parts_drops_the_records_of_a_forgotten_person(tmp_path: Path) -> None:
    store = serve(tmp_path, {"187520_2024-03-01_0#0.json.gz": gzip.compress(events(0, EVENTS))})
    anchor = {"entities": {"User": {"key": "user_id", "sources": ["events"],
                                    "changed_at": "event_time"}}}  # fmt: skip
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as emulator:
        project = build_project(
            tmp_path / "forget",
            sources={"amplitude": amplitude_source(emulator.base_url, max_part_bytes="1MiB")},
            anchor=anchor,
            pii_salt="pepper-7f3a",
        )
        run_pipeline(project, available_at(1))
        path = project.warehouse_path
        mine = "SELECT count(*) FROM raw.amplitude_events WHERE record->>'user_id' = 'u5'"
        ((before,),) = table_rows(path, mine)
        assert before == len(range(5, EVENTS, 97))
        with Pipeline(project, now=available_at(1)) as pipeline:
            pipeline.forget("User", ["u5"])
            summary = pipeline.backfill("amplitude", "20240301T00", "20240301T00")
    assert [w.suppressed for w in summary.windows] == [before]
    assert table_rows(
        path, "SELECT suppressed, rows FROM meta.loads WHERE status = 'committed'"
    ) == [(before, EVENTS - before)]
    assert table_rows(path, mine) == [(0,)]
    assert table_rows(path, "SELECT count(*) FROM staging.events WHERE user_id = 'u5'") == [(0,)]


def test_a_window_in_parts_finds_the_models_no_model_claims_like_the_window_whole(
    tmp_path: Path,
) -> None:
    signups = "\n".join(
        json.dumps({"uuid": str(uuid.UUID(int=10**6 + n)), "event_type": "sign_up"})
        for n in range(10)
    ).encode()
    store = serve(tmp_path, {
        "187520_2024-03-01_0#0.json.gz": gzip.compress(events(0, EVENTS)),
        "187520_2024-03-01_0#1.json.gz": gzip.compress(signups),
    })  # fmt: skip
    clicks = {"source": "amplitude", "selector": "event_type = 'click'", "unique_key": "event_uuid",
              "columns": {"event_uuid": {"path": "uuid", "type": "UUID"}}}  # fmt: skip
    found = []
    for name, source in (("parts", {"max_part_bytes": "1MiB"}), ("whole", {})):
        with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as emulator:
            project = build_project(
                tmp_path / name,
                sources={"amplitude": amplitude_source(emulator.base_url, **source)},
                staging={"clicks": clicks},
            )
            run_pipeline(project, available_at(1))
        found.append(
            table_rows(
                project.warehouse_path,
                "SELECT kind, model, field FROM meta.schema_events ORDER BY ALL",
            )
        )
    assert found[0] == found[1]
    assert ("new_model", "sign_up", "event_type") in found[0]
