"""Typed staging from raw, generated from the project's column mapping.

One set-based statement per model and load: the engine parses each record once
(`json_transform` into a struct of the mapped top-level keys), nested paths are read from their
parent's JSON, and duplicates of the model's unique key, within the load and against what staging
already holds, are dropped by an anti-join. No row passes through Python.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlglot import exp

from anchorflow.errors import WarehouseError
from anchorflow.land import ensure_raw_table, raw_table_name
from anchorflow.project import Project, StagingModel
from anchorflow.warehouse import Warehouse, ident, literal, table

LONG_TYPES = {"JSON", "VARCHAR", "TEXT"}


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


def _select_list(model: StagingModel) -> tuple[str, list[str]]:
    """The json_transform structure and one typed expression per column."""
    structure: dict[str, str] = {}
    for spec in model.columns.values():
        head = spec.keys[0]
        leaf_type = spec.type if len(spec.keys) == 1 else "JSON"
        if structure.get(head, leaf_type) != leaf_type:
            leaf_type = "JSON"  # one path reads the whole object, another a key inside it
        structure[head] = leaf_type
    expressions = []
    for col, spec in model.columns.items():
        head = f"s.{ident(spec.keys[0])}"
        if len(spec.keys) == 1 and structure[spec.keys[0]] == spec.type:
            value = head
        elif len(spec.keys) == 1:
            value = f"TRY_CAST({head} AS {spec.type})"
        else:
            path = "$." + ".".join(f'"{key}"' for key in spec.keys[1:])
            extract = "json_extract" if spec.type == "JSON" else "json_extract_string"
            value = f"TRY_CAST({extract}({head}, {literal(path)}) AS {spec.type})"
        expressions.append(f"{value} AS {ident(col)}")
    return json.dumps(structure), expressions


def stage_loads(
    warehouse: Warehouse,
    project: Project,
    name: str,
    load_ids: Sequence[int] | None,
    keys_from: str | None = None,
    records: str | None = None,
) -> int:
    """Type the records of `load_ids` (all of raw when None) into staging.<name>.

    `keys_from` names a table of unique-key values: only records with those keys are staged
    (used to bring back events whose first copy was in a load that a backfill replaced).
    `records` replaces raw as the relation read (the in-flight batch of those loads).
    Returns the rows inserted.
    """
    model = project.staging[name]
    stream = project.stream_of(model)
    structure, expressions = _select_list(model)
    columns = ", ".join(ident(c) for c in model.columns)
    target = table("staging", name)
    raw = table("raw", raw_table_name(model.source, stream))
    where, params = "true", []
    if load_ids is not None:
        # The range lets the engine skip row groups by their min/max load id.
        where = "load_id BETWEEN ? AND ? AND list_contains(?, load_id)"
        params = [min(load_ids, default=0), max(load_ids, default=-1), list(load_ids)]
    typed = f"""SELECT load_id, origin, line_no, {", ".join(expressions)}
        FROM (SELECT load_id, origin, line_no, json_transform(record, {literal(structure)}) AS s
              FROM {records or raw} WHERE {where})"""
    if not model.unique_key:
        sql = f"INSERT INTO {target} (load_id, {columns}) SELECT load_id, {columns} FROM ({typed})"
    else:
        key = ident(model.unique_key)
        only = f"AND n.{key} IN (SELECT * FROM {keys_from}) " if keys_from else ""
        # Find the batch's keys that staging already holds with a semi-join built on the
        # (small) batch, then drop them: the cost follows the batch, not the history.
        sql = f"""INSERT INTO {target} (load_id, {columns})
        WITH n AS MATERIALIZED ({typed}),
        seen AS (SELECT t.{key} FROM {target} AS t WHERE t.{key} IN (SELECT {key} FROM n))
        SELECT load_id, {columns} FROM n
        WHERE n.{key} IS NOT NULL {only}AND n.{key} NOT IN (SELECT {key} FROM seen)
        QUALIFY row_number() OVER (
            PARTITION BY n.{key} ORDER BY n.load_id, n.origin, n.line_no) = 1"""
    inserted = warehouse.insert(sql, params)
    if model.unique_key and keys_from is None:
        candidates = warehouse.scalar(f"SELECT count(*) FROM {raw} WHERE {where}", params)
        if inserted < candidates:  # duplicates or missing keys: only then look for the latter
            _quarantine_missing_keys(warehouse, model, raw, where, params)
    return inserted


def _quarantine_missing_keys(
    warehouse: Warehouse, model: StagingModel, raw: str, where: str, params: list[object]
) -> None:
    """A record without its unique key cannot be deduplicated: keep it aside, with the reason."""
    spec = model.columns[model.unique_key or ""]
    path = "$." + ".".join(f'"{key}"' for key in spec.keys)
    reason = f"no value for the unique key {model.unique_key} (path {spec.path})"
    warehouse.execute(
        f"""INSERT INTO meta.quarantine
        SELECT load_id, source, stream, 'stage', origin, line_no, ?, record FROM {raw}
        WHERE {where} AND TRY_CAST(json_extract_string(record, {literal(path)}) AS {spec.type})
            IS NULL""",
        [reason, *params],
    )
