"""Field statistics per typed batch: counts, ranges, JSON types, examples, over a sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anchorflow.dev.emulators.amplitude import AmplitudeEmulator
from anchorflow.run import Pipeline
from anchorflow.warehouse import connect
from tests.conftest import available_at, run_pipeline
from tests.stage.helpers import (
    commit,
    drop_tables,
    every_row,
    rows,
    stage,
    u,
    write_project,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("engine")]


def model(sample_percent: float, **extra: Any) -> dict[str, Any]:
    return {
        "source": "amplitude",
        "unique_key": "event_uuid",
        "sample_percent": sample_percent,
        "columns": {
            "event_uuid": {"path": "uuid", "type": "UUID"},
            "event_time": "TIMESTAMP",
            "amount": {"path": "event_properties.amount", "type": "DOUBLE"},
            "city": "VARCHAR",
            "plan": {"path": "user_properties.plan"},  # VARCHAR by default
        },
        **extra,
    }


def events(start: int, count: int) -> list[dict[str, Any]]:
    out = []
    for n in range(start, start + count):
        event: dict[str, Any] = {
            "uuid": u(n),
            "event_time": f"2024-03-01 00:{n % 60:02d}:00",
            "event_properties": {"amount": n if n % 4 else str(n), "currency": "EUR"},
            "city": ["Berlin", "Paris", "Rome"][n % 3] if n % 5 else None,
            "user_properties": {"plan": "pro" if n % 2 else "free"},
        }
        if n % 10 == 0:
            event["campaign"] = "spring"  # unmapped, in every tenth record
        out.append(event)
    return out


STATS = (
    "SELECT field, column_name, sampled, json_types, non_null, nulls, min_value, max_value, "
    "min_length, max_length, examples FROM meta.field_stats WHERE model = ? AND batch_id = ? "
    "ORDER BY field"
)


def stats(project: Any, name: str, batch_id: int) -> dict[str, tuple[Any, ...]]:
    with connect(project, read_only=True) as reader:
        found = reader.query(STATS, [name, batch_id])
    return {r[0]: r[1:] for r in found}


def test_every_mapped_field_gets_its_statistics_per_batch(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"full": model(100)})
    commit(project, 0, events(1, 40))  # n = 1..40
    (batch,) = rows(project, "SELECT DISTINCT batch_id FROM meta.field_stats")[0]
    found = stats(project, "full", batch)
    assert sorted(found) == [
        "campaign", "city", "event_properties", "event_properties.amount",
        "event_properties.currency", "event_time", "user_properties", "user_properties.plan",
        "uuid",
    ]  # fmt: skip
    column, sampled, types, non_null, nulls, low, high, *_ = found["event_properties.amount"]
    assert (column, sampled, non_null, nulls) == ("amount", 40, 40, 0)
    assert sorted(types) == ["UBIGINT", "VARCHAR"]  # 4, 8, ... arrive as strings
    assert (float(low), float(high)) == (1.0, 40.0)
    assert found["event_time"][5:7] == ("2024-03-01 00:01:00", "2024-03-01 00:40:00")
    city = found["city"]
    # 1 in 5 cities is null; text columns get lengths and frequent values
    assert (city[0], city[1], city[2], city[3], city[4]) == ("city", 40, ["VARCHAR"], 32, 8)
    assert (city[7], city[8]) == (4, 6)
    assert sorted(city[9]) == ["Berlin", "Paris", "Rome"]
    assert found["user_properties.plan"][:5] == ("plan", 40, ["VARCHAR"], 40, 0)
    assert sorted(found["user_properties.plan"][9]) == ["free", "pro"]
    assert (found["user_properties.plan"][7], found["user_properties.plan"][8]) == (3, 4)
    # unmapped fields at the levels the mapping reads: their presence only
    assert found["campaign"] == (None, 40, None, 4, 36, None, None, None, None, None)
    assert found["event_properties.currency"][:5] == (None, 40, None, 40, 0)
    assert found["event_properties"][:5] == (None, 40, None, 40, 0)

    commit(project, 1, events(41, 10))
    batches = rows(
        project,
        "SELECT batch_id, load_ids, count(*), count(DISTINCT field) FROM meta.field_stats "
        "GROUP BY batch_id, load_ids ORDER BY batch_id",
    )
    assert [(b[1], b[2], b[3]) for b in batches] == [([1], 9, 9), ([2], 9, 9)]
    assert stats(project, "full", batches[1][0])["uuid"][:5] == ("event_uuid", 10, ["VARCHAR"],
                                                                  10, 0)  # fmt: skip


def test_a_batch_of_several_loads_has_one_row_per_field(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"full": model(100, thresholds={"min_rows": 1000})})
    commit(project, 0, events(1, 10))
    commit(project, 1, events(11, 10))
    stage(project, force=True)
    found = rows(
        project,
        "SELECT load_ids, count(*), max(sampled) FROM meta.field_stats GROUP BY load_ids",
    )
    assert found == [([1, 2], 9, 20)]


def test_a_ten_percent_sample_reads_fewer_rows_and_the_same_ones_on_a_rerun(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, {"full": model(100), "sampled": model(10)})
    commit(project, 0, events(1, 600))
    (full_batch,) = rows(project, "SELECT batch_id FROM meta.transfers WHERE model = 'full'")[0]
    (first,) = rows(project, "SELECT batch_id FROM meta.transfers WHERE model = 'sampled'")[0]
    full, sampled = stats(project, "full", full_batch), stats(project, "sampled", first)
    assert full["uuid"][1] == 600
    # About 60: which rows a sample takes follows the engine's own hash, so the count (and
    # what the sample holds) differs between engines; each engine always takes the same rows.
    assert 30 <= sampled["uuid"][1] <= 90
    assert sampled.keys() == full.keys()
    assert sampled["city"][3] < full["city"][3]

    drop_tables(project, "sampled")
    stage(project, "sampled")
    (again,) = rows(project, "SELECT batch_id FROM meta.transfers WHERE model = 'sampled'")[0]
    # Retyping forgot the old statistics: one batch of them, recomputed identically.
    assert rows(project, "SELECT count(DISTINCT batch_id) FROM meta.field_stats "
                "WHERE model = 'sampled'") == [(1,)]  # fmt: skip
    rerun = stats(project, "sampled", again)
    assert rerun == sampled

    # A fresh warehouse with the same records samples the same records.
    other = write_project(tmp_path / "other", {"sampled": model(10)})
    commit(other, 0, events(1, 600))
    (batch,) = rows(other, "SELECT batch_id FROM meta.transfers")[0]
    assert stats(other, "sampled", batch) == sampled


def test_sample_percent_zero_records_no_statistics(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"none": model(0)})
    commit(project, 0, events(1, 20))
    assert rows(project, "SELECT count(*) FROM staging.none") == [(20,)]
    assert rows(project, "SELECT count(*) FROM meta.field_stats") == [(0,)]


def whole_table(project: Any) -> list[tuple[Any, ...]]:
    """Every statistics row, without its batch id and computing time."""
    return every_row(project, "meta.field_stats", ("batch_id", "computed_at"))


def test_statistics_do_not_depend_on_the_order_the_records_come_in(tmp_path: Path) -> None:
    ordered = write_project(tmp_path / "ordered", {"full": model(100)})
    commit(ordered, 0, events(1, 40))
    reversed_ = write_project(tmp_path / "reversed", {"full": model(100)})
    commit(reversed_, 0, events(1, 40)[::-1])
    assert whole_table(reversed_) == whole_table(ordered)
    found = stats(ordered, "full", 1)
    # Frequent values by count, then by value; JSON types sorted.
    assert found["user_properties.plan"][9] == ["free", "pro"]  # 20 each
    assert found["uuid"][9] == [u(1), u(2), u(3)]  # each once
    assert found["event_properties.amount"][2] == ["UBIGINT", "VARCHAR"]


def test_two_clean_runs_of_the_same_hours_record_the_same_statistics(
    emulator: AmplitudeEmulator, make_project: Any
) -> None:
    first = make_project(emulator.base_url)
    second = make_project(emulator.base_url)
    for project in (first, second):
        run_pipeline(project, available_at(4))
    assert len(whole_table(first)) > 100
    assert whole_table(second) == whole_table(first)


def test_fields_of_one_path_mapped_twice_are_listed_by_column(tmp_path: Path) -> None:
    twice = model(100)
    twice["columns"] = {"z_amount": {"path": "event_properties.amount", "type": "VARCHAR"},
                        **twice["columns"]}  # fmt: skip
    project = write_project(tmp_path, {"full": twice})
    commit(project, 0, events(1, 10))
    with Pipeline(project) as pipeline:
        report = pipeline.field_stats("full")
    mapped = [(f.field, f.column) for f in report.fields if f.field == "event_properties.amount"]
    assert [column for _, column in mapped] == ["amount", "z_amount"]
