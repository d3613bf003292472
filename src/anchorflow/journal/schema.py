"""The tables of the `meta` schema, and the migrations of journals made by earlier releases.

- `meta.loads`: one row per committed load of a source window (its key: an hour, a file path).
- `meta.cursors`: where each source stream resumes, as JSON; moved only with the data it covers.
- `meta.quarantine`: records that could not be landed or staged, with the reason.
- `meta.type_errors`: values that did not fit their staging column's type (staged as NULL).
- `meta.transfers`: per load and staging model, that the load has been typed (and the counts).
- `meta.staging_mappings`: the mapping each staging table's rows were typed with.
- `meta.field_stats`: per typed batch, model and field: JSON types, counts, range, examples.
- `meta.schema_events`: drift (new model, new field, type change, vanished field, null-rate
  jump), one row per model, kind and batch listing the fields it found, with the load it was
  first seen in and whether it was alerted.
- `meta.anchor_transfers`: per load, staging model and anchor table, that the load is in it.
- `meta.anchor_ids`: the highest surrogate id each entity and knot has given (never reused).
- `meta.anchor_tables`: the declaration each anchor table's rows were loaded under.
- `meta.anchor_keys`: every natural key (and knot value) with the surrogate id it was given, for
  the life of the warehouse: a key that comes back (backfill, rollback, re-anchoring) gets it
  again; only `forget` retires it.
- `meta.anchor_conflicts`: two different values observed for one key at one instant, with the
  loads that brought them and whether the conflict was alerted.
- `meta.erasures`: every `forget`, with counts and without the personal data it erased, and
  its deadline to leave the file (`compact_by`) and when it did (`compacted_at`).
- `meta.suppressions`: per erased key and raw stream, the key hashed with `pii_salt` and the
  JSON paths it is read from: records that carry it are not landed again.
- `meta.runs`: every command that ran, with its outcome (failures included); a load records
  the run that committed it (`meta.loads.run_id`).
- `meta.launches`: every start of an intake process (a Redis reader, the webhook server) that
  delivered a loaded landing chunk, from its manifest, committed with its first chunk's rows.
- `meta.queue_depths`: the depth of each queue in front of a landing directory, sampled at
  each loader run (its alerts: too deep, growing).
- `meta.alerts`: every alert and whether it was delivered.
- `meta.alert_outbox`: alerts queued for a target and not delivered yet.
- `meta.alert_targets`: per alert target, failures in a row and when to try it again.
- `meta.metric_alerts`: per threshold alert of `metrics:` and series, its state (breached or
  ok), the values last compared, when it was checked and sent (`journal.metric_alerts`).
- `meta.rule_runs`: every run of a fraud rule (its `rule_run_id`, window, parameters) and the
  rows it added, recorded in the run's transaction.
- `meta.mart_builds`: every build of a mart, how and why, and the versions of the inputs it
  was built from (`journal.marts`); `meta.mart_tests`: every test run on a mart.

Load ids are `max + 1` taken inside the load's transaction: monotonic, dense, and the same on a
rerun after a crash, so a crashed-then-resumed warehouse is identical to a clean one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from anchorflow.journal.metric_alerts import TABLE_DDL as METRIC_ALERTS_DDL
from anchorflow.warehouse import Warehouse

LAYERS = ("raw", "staging", "anchor", "meta", "marts")

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
        finished_at TIMESTAMP,
        window_key VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS meta.cursors (
        source VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        cursor VARCHAR NOT NULL,
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
        record VARCHAR,
        model VARCHAR)""",
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
    # -- issue 13, anchor for readers: stable ids, conflicts recorded.
    """CREATE TABLE IF NOT EXISTS meta.anchor_keys (
        table_name VARCHAR NOT NULL,
        key VARCHAR NOT NULL,
        id BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.anchor_conflicts (
        target VARCHAR NOT NULL,
        key VARCHAR NOT NULL,
        changed_at TIMESTAMP NOT NULL,
        value VARCHAR NOT NULL,
        load_id BIGINT NOT NULL,
        kept BOOLEAN NOT NULL,
        found_at TIMESTAMP NOT NULL,
        alerted BOOLEAN NOT NULL)""",
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
    # Issue 10, time: alerts are queued during a run and delivered in one batch when it ends;
    # a target that fails is backed off across runs and keeps its queue.
    """CREATE TABLE IF NOT EXISTS meta.alert_outbox (
        alert_id BIGINT NOT NULL,
        target VARCHAR NOT NULL,
        target_key VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        subject VARCHAR NOT NULL,
        details VARCHAR,
        queued_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.alert_targets (
        target_key VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        failures INTEGER NOT NULL,
        next_attempt_at TIMESTAMP,
        last_error VARCHAR,
        updated_at TIMESTAMP NOT NULL)""",
    # -- erasure (issue 10): keys a `forget` erased, hashed with pii_salt; records that carry
    # one are dropped when landed again (a backfill), counted in meta.loads.suppressed.
    """CREATE TABLE IF NOT EXISTS meta.suppressions (
        erasure_id BIGINT NOT NULL,
        source VARCHAR NOT NULL,
        stream VARCHAR NOT NULL,
        paths VARCHAR NOT NULL,
        key_hash VARCHAR NOT NULL)""",
    # -- issue 14, queues: reader launches behind landing chunks; queue depth samples.
    """CREATE TABLE IF NOT EXISTS meta.launches (
        launch_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        queue VARCHAR NOT NULL,
        host VARCHAR,
        pid BIGINT,
        started_at TIMESTAMP,
        first_loaded_at TIMESTAMP NOT NULL,
        first_load_id BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.queue_depths (
        source VARCHAR NOT NULL,
        queue VARCHAR NOT NULL,
        sampled_at TIMESTAMP NOT NULL,
        depth BIGINT NOT NULL,
        alarm VARCHAR,
        alerted BOOLEAN NOT NULL)""",
    # -- fraud (issue 16): every run of a rule, its deterministic id and what it added.
    """CREATE TABLE IF NOT EXISTS meta.rule_runs (
        rule_run_id VARCHAR NOT NULL,
        rule VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        params VARCHAR NOT NULL,
        window_start TIMESTAMP NOT NULL,
        window_end TIMESTAMP NOT NULL,
        shadow BOOLEAN NOT NULL,
        found BIGINT NOT NULL,
        added BIGINT NOT NULL,
        users_added BIGINT NOT NULL,
        events_added BIGINT NOT NULL,
        seconds DOUBLE,
        ran_at TIMESTAMP NOT NULL)""",
    # -- issue 17, threshold alerts on metrics: their state per series.
    METRIC_ALERTS_DDL,
]

# -- marts (issue 17): every build of a mart and what it read; every test run on a mart.
MART_DDL = [
    """CREATE TABLE IF NOT EXISTS meta.mart_builds (
        build_id BIGINT NOT NULL,
        mart VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        materialized VARCHAR NOT NULL,
        sql_hash VARCHAR NOT NULL,
        settings_hash VARCHAR NOT NULL,
        tests_hash VARCHAR NOT NULL,
        columns VARCHAR,
        inputs VARCHAR NOT NULL,
        periods BIGINT,
        rows BIGINT,
        seconds DOUBLE,
        built_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.mart_tests (
        build_id BIGINT,
        mart VARCHAR NOT NULL,
        test VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        severity VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        failures BIGINT NOT NULL,
        detail VARCHAR,
        query VARCHAR NOT NULL,
        tested_at TIMESTAMP NOT NULL)""",
]

META_DDL += MART_DDL


def delete_rows(
    warehouse: Warehouse,
    table: str,
    load_ids: Sequence[int] | None = None,
    loads_test: str = "list_contains(?, load_id)",
    **equal: str | None,
) -> int:
    """Delete a journal table's rows of these loads (all loads when None) whose columns equal
    the given values (a None value is no condition); returns how many. Table and column names
    are the journal's own, never the user's."""
    where: list[str] = ["true"]
    params: list[object] = []
    if load_ids is not None:
        where.append(loads_test)
        params.append(list(load_ids))
    for column, value in equal.items():
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return warehouse.insert(f"DELETE FROM {table} WHERE {' AND '.join(where)}", params)


def delete_rows_of_records(warehouse: Warehouse, table: str, records: str) -> int:
    """Delete a journal table's rows about the raw records in `records` (a relation of
    load_id, origin, line_no); returns how many."""
    return warehouse.insert(
        f"DELETE FROM {table} AS t USING {records} AS e WHERE t.load_id = e.load_id "
        "AND t.origin = e.origin AND t.line_no = e.line_no"
    )


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_journal(warehouse: Warehouse) -> None:
    """Create the layers' schemas and the journal's tables; bring an older journal up to date."""
    for schema in LAYERS:
        warehouse.create_schema(schema)
    for ddl in META_DDL:
        warehouse.execute(ddl)
    _migrate(warehouse)


def journal_columns(warehouse: Warehouse) -> set[str]:
    """Every `table.column` of the journal in the warehouse (to tell an older journal, which a
    reader cannot migrate, from a current one)."""
    rows = warehouse.query(
        "SELECT table_name || '.' || column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = 'meta'"
    )
    return {str(row[0]) for row in rows}


def _migrate(warehouse: Warehouse) -> None:
    """Columns and tables changed since the first release; a journal made by it is upgraded."""
    warehouse.execute("ALTER TABLE meta.loads ADD COLUMN IF NOT EXISTS type_errors BIGINT")
    warehouse.execute("ALTER TABLE meta.quarantine ADD COLUMN IF NOT EXISTS model VARCHAR")
    warehouse.execute("ALTER TABLE meta.loads ADD COLUMN IF NOT EXISTS window_key VARCHAR")
    # Before window keys and cursors, the only source kind was Amplitude: its windows were
    # hours (the key is the hour as YYYYMMDDTHH) and its cursor the next hour to load.
    unkeyed = "window_key IS NULL AND window_start IS NOT NULL"
    if warehouse.scalar(f"SELECT count(*) FROM meta.loads WHERE {unkeyed}"):
        warehouse.execute(
            f"UPDATE meta.loads SET window_key = strftime(window_start, '%Y%m%dT%H') "
            f"WHERE {unkeyed}"
        )
    if warehouse.table_exists("meta", "watermarks"):
        with warehouse.transaction():
            warehouse.execute(
                "INSERT INTO meta.cursors SELECT w.source, w.stream, "
                "'{\"next_hour\":\"' || strftime(w.position, '%Y%m%dT%H') || '\"}', "
                "w.load_id, w.updated_at FROM meta.watermarks AS w WHERE NOT EXISTS "
                "(SELECT 1 FROM meta.cursors AS c WHERE c.source = w.source "
                "AND c.stream = w.stream)"
            )
            warehouse.execute("DROP TABLE meta.watermarks")
    # Drift storms (issue 10): an event lists every field it is about (one event per model,
    # kind and batch); an event of an older journal is about its `field` alone (fields NULL).
    warehouse.execute("ALTER TABLE meta.schema_events ADD COLUMN IF NOT EXISTS fields VARCHAR[]")
    warehouse.execute("ALTER TABLE meta.schema_events ADD COLUMN IF NOT EXISTS field_count BIGINT")
    # Empty exports (issue 10): what was suspicious about a load's delivery (an empty archive).
    warehouse.execute("ALTER TABLE meta.loads ADD COLUMN IF NOT EXISTS note VARCHAR")
    # -- erasure (issue 10): a forget's deadline to leave the file, and when the file was
    # rewritten without its bytes; records a load dropped as erased.
    warehouse.execute("ALTER TABLE meta.erasures ADD COLUMN IF NOT EXISTS compact_by TIMESTAMP")
    warehouse.execute("ALTER TABLE meta.erasures ADD COLUMN IF NOT EXISTS compacted_at TIMESTAMP")
    warehouse.execute("ALTER TABLE meta.loads ADD COLUMN IF NOT EXISTS suppressed BIGINT")
    # -- queues (issue 14): the run that committed a load (`meta.runs`), to trace a raw row
    # to the loader run and, through its chunk, to the reader launch (`meta.launches`).
    warehouse.execute("ALTER TABLE meta.loads ADD COLUMN IF NOT EXISTS run_id BIGINT")
