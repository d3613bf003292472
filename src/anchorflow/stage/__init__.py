"""Typed staging from raw, generated from the project's column mapping.

Per model and load, set-based SQL only, no row through Python:
1. the typed batch: the engine parses each record once (`json_transform` into the mapped
   top-level keys, as text or JSON), nested paths are read from their parent's JSON, and typing
   is a cast; a row whose present value did not fit its type is flagged;
2. staging: the batch minus keys staging already holds (a semi-join built on the batch) and minus
   duplicates within the batch (the first copy wins);
3. only when flagged rows or rows without a usable key exist: their values are read again from
   raw into `meta.type_errors` and `meta.quarantine`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from anchorflow.errors import WarehouseError
from anchorflow.land import ensure_raw_table, raw_table_name
from anchorflow.project import Project, StagingModel
from anchorflow.warehouse import Warehouse, ident, literal, table


def models_of_stream(project: Project, source: str, stream: str) -> list[str]:
    return [
        name
        for name, model in project.staging.items()
        if model.source == source and project.stream_of(model) == stream
    ]


def ensure_staging_table(warehouse: Warehouse, name: str, model: StagingModel) -> None:
    compress = warehouse.capabilities.column_compression
    columns = [
        f"{ident(col)} {spec.type}"
        + (" USING COMPRESSION zstd" if compress and spec.type == "JSON" else "")
        for col, spec in model.columns.items()
    ]
    target = table("staging", name)
    warehouse.execute(
        f"CREATE TABLE IF NOT EXISTS {target} (load_id BIGINT NOT NULL, {', '.join(columns)})"
    )
    existing = dict(
        warehouse.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'staging' "
            "AND table_name = ?",
            [name],
        )
    )
    for col, spec in model.columns.items():
        if col not in existing:
            warehouse.execute(f"ALTER TABLE {target} ADD COLUMN {ident(col)} {spec.type}")
        elif _canonical(existing[col]) != _canonical(spec.type):
            raise WarehouseError(
                f"staging.{name}.{col} is {existing[col]} in the warehouse but {spec.type} in the "
                f"project; to retype it, drop the table (DROP TABLE staging.{name}) and run "
                "`anchorflow backfill` over the loaded range"
            )


def prepare_tables(warehouse: Warehouse, project: Project, source: str, stream: str) -> None:
    """Create (or extend) the raw table of a stream and the staging tables fed by it.

    Called before loading, outside the per-window transactions, so DDL is never rolled back
    together with a failed window.
    """
    with warehouse.transaction():
        ensure_raw_table(warehouse, source, stream)
        for name in models_of_stream(project, source, stream):
            ensure_staging_table(warehouse, name, project.staging[name])


def _canonical(sql_type: str) -> str:
    return exp.DataType.build(sql_type, dialect="duckdb").sql("duckdb")


TEXT_TYPES = {"VARCHAR", "TEXT", "JSON"}
INTEGER_TYPES = {"TINYINT", "SMALLINT", "INT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                 "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}  # fmt: skip


def _field(name: str) -> str:
    """A struct field named by a JSON key (validated by the project against JSON_KEY), quoted."""
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def _json_path(keys: Sequence[str]) -> str:
    return literal("$." + ".".join(f'"{key}"' for key in keys))


@dataclass(frozen=True)
class TypedColumn:
    name: str
    type: str
    text: str  # the value as the record holds it (text, or JSON for JSON columns)

    @property
    def typed(self) -> str:
        if self.type in TEXT_TYPES:
            return self.text
        if self.type in INTEGER_TYPES:  # a cast would round 1.5 to 2: a fraction is an error
            number = f"TRY_CAST({self.text} AS DOUBLE)"
            return f"CASE WHEN {number} % 1 = 0 THEN TRY_CAST({self.text} AS {self.type}) END"
        if self.type == "TIMESTAMP":  # an offset or zone is applied (to UTC), not dropped
            return f"TRY_CAST(TRY_CAST({self.text} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)"
        return f"TRY_CAST({self.text} AS {self.type})"

    @property
    def can_fail(self) -> bool:
        return self.type not in TEXT_TYPES


def _typed_columns(model: StagingModel) -> tuple[str, list[TypedColumn]]:
    """The json_transform structure, and each column's text and typed expressions.

    Every top-level key is read once, as text (or as JSON when a column wants the object or a
    key inside it); typing is a cast in SQL. So a value that does not fit its type is visible
    (text present, typed NULL) instead of vanishing into a NULL.
    """
    as_json = {
        spec.keys[0] for spec in model.columns.values() if len(spec.keys) > 1 or spec.type == "JSON"
    }
    structure = {
        spec.keys[0]: "JSON" if spec.keys[0] in as_json else "VARCHAR"
        for spec in model.columns.values()
    }
    columns = []
    for col, spec in model.columns.items():
        head = f"s.{_field(spec.keys[0])}"
        if len(spec.keys) == 1 and (structure[spec.keys[0]] == "VARCHAR" or spec.type == "JSON"):
            text = head
        elif len(spec.keys) == 1:  # the key is read as JSON for another column: its text
            text = f"json_extract_string({head}, '$')"
        else:
            extract = "json_extract" if spec.type == "JSON" else "json_extract_string"
            text = f"{extract}({head}, {_json_path(spec.keys[1:])})"
        columns.append(TypedColumn(col, spec.type, text))
    return json.dumps(structure), columns


@dataclass(frozen=True)
class Staged:
    rows: int  # inserted into staging
    quarantined: int  # records without a usable unique key
    type_errors: int  # values that did not fit their column's type (staged as NULL)


def stage_loads(
    warehouse: Warehouse,
    project: Project,
    name: str,
    load_ids: Sequence[int] | None,
    keys_from: str | None = None,
    records: str | None = None,
) -> Staged:
    """Type the records of `load_ids` (all of raw when None) into staging.<name>.

    `keys_from` names a table of unique-key values: only records with those keys are staged
    (used to bring back events whose first copy was in a load that a backfill replaced).
    `records` replaces raw as the relation read (the in-flight batch of those loads).

    The typed batch is built once, in a temporary table; staging, the recorded type errors and
    the quarantine of records without a unique key all read it, so each record is parsed once.
    """
    model = project.staging[name]
    raw = table("raw", raw_table_name(model.source, project.stream_of(model)))
    where, params = "true", []
    if load_ids is not None:
        # The range lets the engine skip row groups by their min/max load id.
        where = "load_id BETWEEN ? AND ? AND list_contains(?, load_id)"
        params = [min(load_ids, default=0), max(load_ids, default=-1), list(load_ids)]
    batch = ident("__typed_batch")
    source = records or raw
    warehouse.execute(
        f"CREATE OR REPLACE TEMP TABLE {batch} AS {_typed_select(model, source, where)}",
        params,
    )
    try:
        rows = warehouse.insert(_insert_sql(model, name, batch, keys_from))
        if keys_from is not None:  # these records were checked when their load was staged
            return Staged(rows, 0, 0)
        key = ident(model.unique_key) if model.unique_key else "0"
        bad, keyless = warehouse.query(
            f"SELECT count(*) FILTER (__bad), count(*) FILTER ({key} IS NULL) FROM {batch}"
        )[0]
        # Both are rare: only then read those records' text again, from raw.
        errors = _record_type_errors(warehouse, model, name, batch, raw) if bad else 0
        quarantined = _quarantine_keyless(warehouse, model, batch, raw) if keyless else 0
    finally:
        # Fails inside an aborted transaction (whose rollback removes the table anyway); the
        # error that aborted it is the one to report.
        with contextlib.suppress(WarehouseError):
            warehouse.execute(f"DROP TABLE IF EXISTS {batch}")
    return Staged(rows, quarantined, errors)


def _typed_select(model: StagingModel, source: str, where: str) -> str:
    """Typed columns, plus `__bad`: some value was present but did not fit its type."""
    structure, columns = _typed_columns(model)
    texts = ", ".join(f"{c.text} AS __text_{i}" for i, c in enumerate(columns))
    typed = ", ".join(f"{c.typed} AS {ident(c.name)}" for c in columns)
    checks = [
        f"(__text_{i} IS NOT NULL AND {ident(c.name)} IS NULL)"
        for i, c in enumerate(columns)
        if c.can_fail
    ]
    return f"""SELECT * EXCLUDE ({", ".join(f"__text_{i}" for i in range(len(columns)))}),
               {" OR ".join(checks) or "false"} AS __bad
        FROM (SELECT load_id, origin, line_no, {typed}, {texts}
              FROM (SELECT load_id, origin, line_no,
                           json_transform(record, {literal(structure)}) AS s
                    FROM {source} WHERE {where}))"""


def _bad_records(batch: str, raw: str, condition: str) -> str:
    """The raw records of the batch's rows that meet `condition`."""
    return f"""(SELECT n.*, r.source AS __r_source, r.stream AS __r_stream, r.record AS __r_record
        FROM {batch} AS n JOIN {raw} AS r
          ON r.load_id = n.load_id AND r.origin = n.origin AND r.line_no = n.line_no
        WHERE {condition})"""


def _record_type_errors(
    warehouse: Warehouse, model: StagingModel, name: str, batch: str, raw: str
) -> int:
    """One row in meta.type_errors per value that was present but did not fit its type."""
    _, columns = _typed_columns(model)
    selects = [
        f"""SELECT load_id, {literal(name)}, {literal(c.name)}, origin, line_no,
                   json_extract_string(__r_record, {_json_path(spec.keys)}), {literal(c.type)}
            FROM bad WHERE {ident(c.name)} IS NULL
              AND json_extract_string(__r_record, {_json_path(spec.keys)}) IS NOT NULL"""
        for c, spec in zip(columns, model.columns.values(), strict=True)
        if c.can_fail
    ]
    return warehouse.insert(
        f"INSERT INTO meta.type_errors WITH bad AS ({_bad_records(batch, raw, '__bad')}) "
        + " UNION ALL ".join(selects)
    )


def _quarantine_keyless(warehouse: Warehouse, model: StagingModel, batch: str, raw: str) -> int:
    """A record without a usable unique key cannot be deduplicated: keep it aside, with why."""
    key = ident(model.unique_key or "")
    spec = model.columns[model.unique_key or ""]
    missing = f"no value for the unique key {model.unique_key} (path {spec.path})"
    invalid = f"the unique key {model.unique_key} (path {spec.path}) is not a {spec.type}: "
    text = f"json_extract_string(__r_record, {_json_path(spec.keys)})"
    return warehouse.insert(
        f"""INSERT INTO meta.quarantine
        SELECT load_id, __r_source, __r_stream, 'stage', origin, line_no,
               CASE WHEN {text} IS NULL THEN ? ELSE ? || {text} END, __r_record
        FROM {_bad_records(batch, raw, f"n.{key} IS NULL")}""",
        [missing, invalid],
    )


def _insert_sql(model: StagingModel, name: str, batch: str, keys_from: str | None) -> str:
    columns = ", ".join(ident(c) for c in model.columns)
    target = table("staging", name)
    if not model.unique_key:
        return f"INSERT INTO {target} (load_id, {columns}) SELECT load_id, {columns} FROM {batch}"
    key = ident(model.unique_key)
    only = f"AND n.{key} IN (SELECT * FROM {keys_from}) " if keys_from else ""
    # Find the batch's keys that staging already holds with a semi-join built on the (small)
    # batch, then drop them: the cost follows the batch, not the history. The first copy wins.
    return f"""INSERT INTO {target} (load_id, {columns})
        WITH seen AS (
            SELECT t.{key} FROM {target} AS t WHERE t.{key} IN (SELECT {key} FROM {batch}))
        SELECT load_id, {columns} FROM {batch} AS n
        WHERE n.{key} IS NOT NULL {only}AND n.{key} NOT IN (SELECT {key} FROM seen)
        QUALIFY row_number() OVER (
            PARTITION BY n.{key} ORDER BY n.load_id, n.origin, n.line_no) = 1"""
