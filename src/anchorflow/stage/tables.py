"""The staging tables: created from the mapping, extended additively, and guarded against rows
typed under another mapping."""

from __future__ import annotations

import json

from sqlglot import exp

from anchorflow.config.descriptions import raw_docs, staging_docs
from anchorflow.config.project import Project
from anchorflow.config.staging import StagingModel, staging_columns
from anchorflow.errors import WarehouseError
from anchorflow.journal.field_stats import delete_field_stats
from anchorflow.journal.quarantine import delete_quarantined
from anchorflow.journal.transfers import delete_transfers, known_mapping, store_mapping
from anchorflow.journal.type_errors import delete_type_errors
from anchorflow.land import ensure_raw_table
from anchorflow.warehouse import Warehouse, ident, table
from anchorflow.warehouse.comments import apply_comments


def ensure_staging_table(warehouse: Warehouse, name: str, model: StagingModel) -> bool:
    """Create or extend staging.<name>; True when the table was created just now."""
    created = not warehouse.table_exists("staging", name)
    compress = warehouse.capabilities.column_compression
    wanted = staging_columns(model)
    columns = [
        f"{ident(col)} "
        + (warehouse.sql.compressed(sql_type) if compress and sql_type == "JSON" else sql_type)
        for col, sql_type in wanted.items()
    ]
    target = table("staging", name)
    warehouse.execute(
        f"CREATE TABLE IF NOT EXISTS {target} (load_id BIGINT NOT NULL, {', '.join(columns)})"
    )
    existing = dict(warehouse.query(warehouse.sql.column_types(), ["staging", name]))
    engine = warehouse.dialect
    for col, sql_type in wanted.items():
        if col not in existing:
            warehouse.execute(f"ALTER TABLE {target} ADD COLUMN {ident(col)} {sql_type}")
        elif _canonical(existing[col], engine) != _canonical(sql_type, "duckdb", engine):
            raise WarehouseError(
                f"staging.{name}.{col} is {existing[col].upper()} in the warehouse "
                f"but {sql_type} in the "
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
        models = project.models_of_stream(source, stream)
        for name in models:
            model = project.staging[name]
            if ensure_staging_table(warehouse, name, model):
                forget_typing(warehouse, name)
            check_mapping(warehouse, name, model)
        # The descriptions of the project file, as the warehouse's own comments.
        raw = f"{source}_{stream}"
        apply_comments(warehouse, "raw", {raw: raw_docs(project)[raw]})
        docs = staging_docs(project)
        apply_comments(warehouse, "staging", {name: docs[name] for name in models})


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
    known = known_mapping(warehouse, name)
    if known == wanted:
        return
    if known is not None and warehouse.scalar(f"SELECT count(*) FROM {table('staging', name)}"):
        raise WarehouseError(
            f"the mapping of staging.{name} changed since its rows were typed; to retype them, "
            f"drop the table (DROP TABLE staging.{name}) and run `anchorflow stage {name}`"
        )
    store_mapping(warehouse, name, wanted)


def forget_typing(warehouse: Warehouse, name: str) -> None:
    """A staging table created just now has nothing typed: its journal must say so too.

    This is how a model is retyped after a mapping change: drop its table, stage again. Its
    statistics go too: drift must compare the new typing with itself, not the old one.
    """
    delete_transfers(warehouse, model=name)
    delete_type_errors(warehouse, model=name)
    delete_quarantined(warehouse, model=name)
    delete_field_stats(warehouse, model=name)


def _canonical(sql_type: str, read: str, write: str | None = None) -> str:
    """A type as the engine spells it: a type of the project (DuckDB's spelling) and the type
    the engine reports for its column compare equal when they are the same."""
    return exp.DataType.build(sql_type, dialect=read).sql(write or read)
