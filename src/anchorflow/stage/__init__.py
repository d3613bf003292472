"""Typed staging from raw, generated from the project's mapping.

- `sql`: the typing SQL of a model (selector, nested paths, exploded arrays, casts, PII hashing);
- `batch`: one batch of loads typed into one model, with the bad-value policy;
- `stats`: field statistics per batch, over a deterministic sample;
- `drift`: schema events from the statistics, and their alerts;
- `runner`: the transfer log and the thresholds that decide when a model's staging runs.
"""

from __future__ import annotations

import json

from sqlglot import exp

from anchorflow.errors import WarehouseError
from anchorflow.land import ensure_raw_table
from anchorflow.project import Project, StagingModel
from anchorflow.stage.batch import BadValues, Staged
from anchorflow.stage.runner import (
    ModelRun,
    Pending,
    models_of_stream,
    pending_loads,
    restage_keys,
    stage_pending,
    type_loads,
    waiting_reason,
)
from anchorflow.warehouse import Warehouse, ident, table

__all__ = [
    "BadValues",
    "ModelRun",
    "Pending",
    "Staged",
    "ensure_staging_table",
    "models_of_stream",
    "pending_loads",
    "prepare_tables",
    "restage_keys",
    "stage_pending",
    "type_loads",
    "waiting_reason",
]


def staging_columns(model: StagingModel) -> dict[str, str]:
    """The staging table's columns after load_id: the array position, then the stored columns."""
    columns = {model.explode.position: "INTEGER"} if model.explode else {}
    columns.update({name: spec.type for name, spec in model.stored_columns.items()})
    return columns


def ensure_staging_table(warehouse: Warehouse, name: str, model: StagingModel) -> bool:
    """Create or extend staging.<name>; True when the table was created just now."""
    created = not warehouse.table_exists("staging", name)
    compress = warehouse.capabilities.column_compression
    wanted = staging_columns(model)
    columns = [
        f"{ident(col)} {sql_type}"
        + (" USING COMPRESSION zstd" if compress and sql_type == "JSON" else "")
        for col, sql_type in wanted.items()
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
    for col, sql_type in wanted.items():
        if col not in existing:
            warehouse.execute(f"ALTER TABLE {target} ADD COLUMN {ident(col)} {sql_type}")
        elif _canonical(existing[col]) != _canonical(sql_type):
            raise WarehouseError(
                f"staging.{name}.{col} is {existing[col]} in the warehouse but {sql_type} in the "
                f"project; to retype it, drop the table (DROP TABLE staging.{name}) and run "
                f"`anchorflow stage {name}` (the transfer log is cleared with it)"
            )
    return created


def prepare_tables(warehouse: Warehouse, project: Project, source: str, stream: str) -> None:
    """Create (or extend) the raw table of a stream and the staging tables fed by it.

    Called before loading, outside the per-window transactions, so DDL is never rolled back
    together with a failed window.
    """
    with warehouse.transaction():
        ensure_raw_table(warehouse, source, stream)
        for name in models_of_stream(project, source, stream):
            model = project.staging[name]
            if ensure_staging_table(warehouse, name, model):
                forget_transfers(warehouse, name)
            check_mapping(warehouse, name, model)


def mapping_fingerprint(model: StagingModel) -> str:
    """What decides the rows of staging.<name>: selector, key, explode, and each column's path,
    type, pii and nullability (not descriptions, thresholds, sampling or drift settings)."""
    shape = {
        "selector": model.selector,
        "unique_key": model.key_columns,
        "explode": model.explode.model_dump() if model.explode else None,
        "columns": {n: [c.path, c.type, c.pii, c.nullable] for n, c in model.columns.items()},
    }
    return json.dumps(shape, sort_keys=True)


def check_mapping(warehouse: Warehouse, name: str, model: StagingModel) -> None:
    """Refuse to type on top of rows shaped by another mapping (a column now hashed would
    keep its cleartext in the old rows, a new column would be NULL in them): say how to retype.
    A table without rows simply takes the new mapping."""
    wanted = mapping_fingerprint(model)
    known = warehouse.scalar("SELECT mapping FROM meta.staging_mappings WHERE model = ?", [name])
    if known == wanted:
        return
    if known is not None and warehouse.scalar(f"SELECT count(*) FROM {table('staging', name)}"):
        raise WarehouseError(
            f"the mapping of staging.{name} changed since its rows were typed; to retype them, "
            f"drop the table (DROP TABLE staging.{name}) and run `anchorflow stage {name}`"
        )
    warehouse.execute("DELETE FROM meta.staging_mappings WHERE model = ?", [name])
    warehouse.execute("INSERT INTO meta.staging_mappings VALUES (?, ?)", [name, wanted])


def forget_transfers(warehouse: Warehouse, name: str) -> None:
    """A staging table created just now has nothing typed: its transfer log must say so too.

    This is how a model is retyped after a mapping change: drop its table, stage again.
    """
    # Its statistics go too: drift must compare the new typing with itself, not the old one.
    for log in ("meta.transfers", "meta.type_errors", "meta.quarantine", "meta.field_stats"):
        warehouse.execute(f"DELETE FROM {log} WHERE model = ?", [name])


def _canonical(sql_type: str) -> str:
    return exp.DataType.build(sql_type, dialect="duckdb").sql("duckdb")
