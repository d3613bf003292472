"""The `meta` schema: what every stage has finished, written in the same transaction as its data.

- `meta.loads`: one row per committed load of a source window (an hour of Amplitude).
- `meta.watermarks`: where each source stream resumes; moved only with the data it covers.
- `meta.quarantine`: records that could not be landed or staged, with the reason.
- `meta.type_errors`: values that did not fit their staging column's type (staged as NULL).
- `meta.transfers`: per load and staging model, that the load has been typed (and the counts).
- `meta.staging_mappings`: the mapping each staging table's rows were typed with.
- `meta.field_stats`: per typed batch, model and field: JSON types, counts, range, examples.
- `meta.schema_events`: drift (new model, new field, type change, vanished field, null-rate
  jump), one row per problem, with the load it was first seen in and whether it was alerted.
- `meta.anchor_transfers`: per load, staging model and anchor table, that the load is in it.
- `meta.anchor_ids`: the highest surrogate id each entity and knot has given (never reused).
- `meta.anchor_tables`: the declaration each anchor table's rows were loaded under.
- `meta.erasures`: every `forget`, with counts and without the personal data it erased.
- `meta.runs`: every command that ran, with its outcome (failures included).
- `meta.alerts`: every alert and whether it was delivered.

Load ids are `max + 1` taken inside the load's transaction: monotonic, dense, and the same on a
rerun after a crash, so a crashed-then-resumed warehouse is identical to a clean one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from anchorflow.warehouse import Warehouse

META_DDL = [
    """CREATE TABLE IF NOT EXISTS meta.loads (
        load_id BIGINT NOT NULL,
        source VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        window_start TIMESTAMP,
        window_end TIMESTAMP,
        origin VARCHAR,
        files INTEGER,
        rows BIGINT,
        bytes BIGINT,
        quarantined BIGINT,
        staged BIGINT,
        type_errors BIGINT,
        status VARCHAR NOT NULL,
        started_at TIMESTAMP,
        finished_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS meta.watermarks (
        source VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        position TIMESTAMP NOT NULL,
        load_id BIGINT,
        updated_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.quarantine (
        load_id BIGINT NOT NULL,
        source VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        stage VARCHAR NOT NULL,
        origin VARCHAR,
        line_no BIGINT,
        reason VARCHAR NOT NULL,
        record VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS meta.type_errors (
        load_id BIGINT NOT NULL,
        model VARCHAR NOT NULL,
        column_name VARCHAR NOT NULL,
        origin VARCHAR,
        line_no BIGINT,
        value VARCHAR,
        expected VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.transfers (
        load_id BIGINT NOT NULL,
        model VARCHAR NOT NULL,
        batch_id BIGINT NOT NULL,
        staged BIGINT NOT NULL,
        quarantined BIGINT NOT NULL,
        type_errors BIGINT NOT NULL,
        typed_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.staging_mappings (
        model VARCHAR NOT NULL,
        mapping VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.field_stats (
        batch_id BIGINT NOT NULL,
        model VARCHAR NOT NULL,
        field VARCHAR NOT NULL,
        column_name VARCHAR,
        load_ids BIGINT[] NOT NULL,
        sample_percent DOUBLE NOT NULL,
        sampled BIGINT NOT NULL,
        json_types VARCHAR[],
        non_null BIGINT NOT NULL,
        nulls BIGINT NOT NULL,
        min_value VARCHAR,
        max_value VARCHAR,
        min_length BIGINT,
        max_length BIGINT,
        approx_distinct BIGINT,
        examples VARCHAR[],
        computed_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.schema_events (
        event_id BIGINT NOT NULL,
        kind VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        model VARCHAR NOT NULL,
        field VARCHAR NOT NULL,
        detail VARCHAR NOT NULL,
        first_load_id BIGINT NOT NULL,
        seen_at TIMESTAMP NOT NULL,
        status VARCHAR NOT NULL,
        alerted_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS meta.alerts (
        sent_at TIMESTAMP NOT NULL,
        kind VARCHAR NOT NULL,
        subject VARCHAR NOT NULL,
        details VARCHAR,
        target VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        attempts INTEGER NOT NULL,
        error VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS meta.anchor_transfers (
        load_id BIGINT NOT NULL,
        model VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        observed BIGINT NOT NULL,
        inserted BIGINT NOT NULL,
        without_key BIGINT NOT NULL,
        max_changed_at TIMESTAMP,
        anchored_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.anchor_ids (
        table_name VARCHAR NOT NULL,
        top BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.anchor_tables (
        table_name VARCHAR NOT NULL,
        declaration VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.erasures (
        erasure_id BIGINT NOT NULL,
        entity VARCHAR NOT NULL,
        erased_at TIMESTAMP NOT NULL,
        counts VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.runs (
        run_id BIGINT NOT NULL,
        command VARCHAR NOT NULL,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        status VARCHAR NOT NULL,
        detail VARCHAR)""",
]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class LoadRecord:
    load_id: int
    source: str
    stream: str
    window_start: datetime
    window_end: datetime
    origin: str
    files: int
    rows: int
    bytes: int
    quarantined: int
    staged: int
    type_errors: int
    started_at: datetime


def ensure_journal(warehouse: Warehouse) -> None:
    for schema in ("raw", "staging", "anchor", "meta", "marts"):
        warehouse.create_schema(schema)
    for ddl in META_DDL:
        warehouse.execute(ddl)
    # Columns added since the first release; a journal made by it gains them.
    warehouse.execute("ALTER TABLE meta.loads ADD COLUMN IF NOT EXISTS type_errors BIGINT")
    warehouse.execute("ALTER TABLE meta.quarantine ADD COLUMN IF NOT EXISTS model VARCHAR")


def next_load_id(warehouse: Warehouse) -> int:
    return int(warehouse.scalar("SELECT coalesce(max(load_id), 0) + 1 FROM meta.loads"))


def record_load(warehouse: Warehouse, load: LoadRecord) -> None:
    warehouse.execute(
        "INSERT INTO meta.loads (load_id, source, stream, window_start, window_end, origin, "
        "files, rows, bytes, quarantined, staged, type_errors, status, started_at, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'committed', ?, ?)",
        [
            load.load_id,
            load.source,
            load.stream,
            load.window_start,
            load.window_end,
            load.origin,
            load.files,
            load.rows,
            load.bytes,
            load.quarantined,
            load.staged,
            load.type_errors,
            load.started_at,
            utcnow(),
        ],
    )


def committed_loads(warehouse: Warehouse, source: str, stream: str, start: datetime) -> list[int]:
    """Committed loads of the window starting at `start` (a backfill replaces them)."""
    rows = warehouse.query(
        "SELECT load_id FROM meta.loads WHERE source = ? AND stream = ? AND window_start = ? "
        "AND status = 'committed' ORDER BY load_id",
        [source, stream, start],
    )
    return [int(r[0]) for r in rows]


def mark_replaced(warehouse: Warehouse, load_ids: list[int]) -> None:
    if load_ids:
        warehouse.execute(
            "UPDATE meta.loads SET status = 'replaced' WHERE list_contains(?, load_id)",
            [load_ids],
        )


def watermark(warehouse: Warehouse, source: str, stream: str) -> datetime | None:
    """The first hour not yet loaded, or None when the stream has never loaded."""
    value = warehouse.scalar(
        "SELECT position FROM meta.watermarks WHERE source = ? AND stream = ?", [source, stream]
    )
    return value if isinstance(value, datetime) else None


def advance_watermark(
    warehouse: Warehouse, source: str, stream: str, position: datetime, load_id: int
) -> None:
    """Move the watermark to `position`; call inside the transaction that commits the data."""
    with warehouse.transaction():
        warehouse.execute(
            "DELETE FROM meta.watermarks WHERE source = ? AND stream = ?", [source, stream]
        )
        warehouse.execute(
            "INSERT INTO meta.watermarks VALUES (?, ?, ?, ?, ?)",
            [source, stream, position, load_id, utcnow()],
        )


def start_run(warehouse: Warehouse, command: str) -> int:
    # A run still 'running' here was cut off (killed, power loss): say so.
    warehouse.execute(
        "UPDATE meta.runs SET status = 'interrupted', finished_at = ? WHERE status = 'running'",
        [utcnow()],
    )
    run_id = int(warehouse.scalar("SELECT coalesce(max(run_id), 0) + 1 FROM meta.runs"))
    warehouse.execute(
        "INSERT INTO meta.runs VALUES (?, ?, ?, NULL, 'running', NULL)",
        [run_id, command, utcnow()],
    )
    return run_id


def finish_run(warehouse: Warehouse, run_id: int, status: str, detail: str | None) -> None:
    warehouse.execute(
        "UPDATE meta.runs SET finished_at = ?, status = ?, detail = ? WHERE run_id = ?",
        [utcnow(), status, detail, run_id],
    )
