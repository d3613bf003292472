"""`stage`, `fields`, `drift` and `suggest-mapping` in a subprocess, as a user runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from anchorflow.config import load_project
from anchorflow.dev.emulators.amplitude import AmplitudeEmulator, ExportStore
from anchorflow.warehouse import connect
from tests import builders
from tests.builders import events_model, project_data
from tests.conftest import (
    API_KEY,
    SECRET_KEY,
    SMALL,
    START,
    available_at,
    hour,
    project_dict,
    table_rows,
)
from tests.test_cli import cli

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("engine")]


def write_project(root: Path, base_url: str, **models: dict[str, Any]) -> Path:
    staging = {"events": events_model(), **models}
    return builders.write_project(root, project_data(project_dict(base_url)["sources"], staging))


PURCHASES = {
    "source": "amplitude",
    "selector": "event_type = 'purchase'",
    "unique_key": "event_uuid",
    "sample_percent": 100,
    "thresholds": {"min_rows": 1_000_000},  # waits: only `stage --force` types it
    "columns": {
        "event_uuid": {"path": "uuid", "type": "UUID"},
        "amount": {"path": "event_properties.amount", "type": "DOUBLE"},
        "city": {"type": "VARCHAR", "pii": "keep"},
    },
}


def test_stage_waits_for_its_threshold_then_force_types_and_fields_show_statistics(
    emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    root = write_project(tmp_path / "p", emulator.base_url, purchases=PURCHASES)
    now = available_at(3).strftime("%Y%m%dT%H")
    ran = cli("run", "--project", str(root), "--now", now)
    assert ran.returncode == 0, ran.stderr
    assert "waiting purchases:" in ran.stdout
    path = load_project(root)
    assert table_rows(path, "SELECT count(*) FROM staging.purchases") == [(0,)]

    waiting = cli("stage", "purchases", "--project", str(root), "--now", now)
    assert waiting.returncode == 0, waiting.stderr
    assert "waiting purchases:" in waiting.stdout

    forced = cli("stage", "purchases", "--force", "--project", str(root), "--now", now)
    assert forced.returncode == 0, forced.stderr
    assert "staged purchases: 3 load(s) in 1 batch(es)" in forced.stdout
    expected = table_rows(
        path,
        "SELECT count(DISTINCT CAST(record AS JSON)->>'uuid') FROM raw.amplitude_events "
        "WHERE CAST(record AS JSON)->>'event_type' = 'purchase'",
    )[0][0]
    assert expected > 0
    assert table_rows(path, "SELECT count(*) FROM staging.purchases") == [(expected,)]

    again = cli("stage", "--force", "--project", str(root), "--now", now)
    assert again.returncode == 0, again.stderr
    assert "nothing to stage: every load is typed" in again.stdout

    fields = cli("fields", "purchases", "--project", str(root))
    assert fields.returncode == 0, fields.stderr
    lines = {line.split("│")[1].strip(): line for line in fields.stdout.splitlines()
             if line.count("│") > 5}  # fmt: skip
    assert "event_properties.amount" in lines and "amount" in lines["event_properties.amount"]
    city = table_rows(path, "SELECT examples, min_value FROM meta.field_stats WHERE field = 'city'")
    assert city and all(examples is None and low is None for examples, low in city)
    assert "(not mapped)" in fields.stdout  # other fields of the records, by presence

    unknown = cli("fields", "nope", "--project", str(root))
    assert unknown.returncode == 1
    assert unknown.stderr.strip().startswith("error: unknown staging model 'nope'")


def test_drift_lists_open_events_and_ack_closes_them(
    emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    root = write_project(tmp_path / "p", emulator.base_url)
    project = load_project(root)
    ran = cli("run", "--project", str(root), "--now", available_at(2).strftime("%Y%m%dT%H"))
    assert ran.returncode == 0, ran.stderr
    # An event as a later batch would have found it (the first batch is the baseline).
    with connect(project) as warehouse:
        warehouse.execute(
            "INSERT INTO meta.schema_events (event_id, kind, stream, model, field, detail, "
            "first_load_id, seen_at, status, alerted_at) VALUES (900, 'new_field', 'events', "
            "'events', 'event_properties.arm', '{}', 2, now()::TIMESTAMP, 'open', "
            "now()::TIMESTAMP)"
        )
    listed = cli("drift", "--project", str(root))
    assert listed.returncode == 0, listed.stderr
    assert "event_properties.arm" in listed.stdout and "new_field" in listed.stdout
    acked = cli("drift", "--ack", "900", "--project", str(root))
    assert acked.returncode == 0 and "acknowledged 1 event(s)" in acked.stdout
    assert "no open schema events" in cli("drift", "--project", str(root)).stdout
    shown = cli("drift", "--all", "--project", str(root)).stdout
    assert "acknowledged" in shown and "event_properties.arm" in shown


def test_suggest_mapping_prints_a_model_that_validates_and_types_the_stream(
    emulator: AmplitudeEmulator, tmp_path: Path
) -> None:
    root = write_project(tmp_path / "p", emulator.base_url)
    now = available_at(2).strftime("%Y%m%dT%H")
    assert cli("run", "--project", str(root), "--now", now).returncode == 0
    suggested = cli(
        "suggest-mapping", "amplitude", "--model", "deposits", "--sample-percent", "100",
        "--selector", "event_type = 'deposit'", "--project", str(root),
    )  # fmt: skip
    assert suggested.returncode == 0, suggested.stderr
    model = yaml.safe_load(suggested.stdout)["staging"]["deposits"]
    assert model["selector"] == "event_type = 'deposit'"
    assert model["unique_key"] == "uuid"
    assert model["columns"]["amount"] == {"path": "event_properties.amount", "type": "DOUBLE"}
    assert model["columns"]["event_time"]["type"] == "TIMESTAMP"
    assert model["columns"]["session_id"]["type"] == "BIGINT"
    assert model["columns"]["paying"]["type"] == "BOOLEAN"

    # Pasted into the project, it validates and types exactly the deposits.
    data = yaml.safe_load((root / "anchorflow.yml").read_text())
    data["staging"]["deposits"] = model
    (root / "anchorflow.yml").write_text(yaml.safe_dump(data))
    staged = cli("stage", "deposits", "--project", str(root), "--now", now)
    assert staged.returncode == 0, staged.stderr
    path = load_project(root)
    assert table_rows(path, "SELECT count(*) FROM staging.deposits") == table_rows(
        path,
        "SELECT count(DISTINCT CAST(record AS JSON)->>'uuid') FROM raw.amplitude_events "
        "WHERE CAST(record AS JSON)->>'event_type' = 'deposit'",
    )

    unknown = cli("suggest-mapping", "nope", "--project", str(root))
    assert unknown.returncode == 1
    assert "unknown stream 'nope' (streams: amplitude.events)" in unknown.stderr


def test_runs_over_empty_hours_and_after_a_backfill_print_no_waiting_model(
    tmp_path: Path,
) -> None:
    store = ExportStore(START, hour(3), spec=SMALL)  # data for hours 0..2, none after
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as emulator:
        root = write_project(tmp_path / "p", emulator.base_url)
        outputs = []
        for now in (available_at(5), available_at(6)):  # hours 3, 4, then 5 are empty
            ran = cli("run", "--project", str(root), "--now", f"{now:%Y%m%dT%H}")
            assert ran.returncode == 0, ran.stderr
            outputs.append(ran.stdout)
        backfilled = cli(
            "backfill", "amplitude", "--start", f"{hour(2):%Y%m%dT%H}", "--end",
            f"{hour(4):%Y%m%dT%H}", "--project", str(root), "--now", f"{available_at(6):%Y%m%dT%H}",
        )  # fmt: skip
        assert backfilled.returncode == 0, backfilled.stderr
        again = cli("run", "--project", str(root), "--now", f"{available_at(7):%Y%m%dT%H}")
        assert again.returncode == 0, again.stderr
    for shown in [*outputs, backfilled.stdout, again.stdout]:
        assert "waiting" not in shown and "untyped" not in shown
    path = load_project(root)
    untyped = (
        "SELECT count(*) FROM meta.loads WHERE status = 'committed' "
        "AND load_id NOT IN (SELECT load_id FROM meta.transfers)"
    )
    assert table_rows(path, untyped) == [(0,)]
