"""The compiled DDL: schemas, raw and landing tables, staging tables, the anchor model's
tables and serving tables, and the journal table the compiled load keeps."""

from __future__ import annotations

from anchorflow.anchor.ddl import create_table_sql, entity_columns, knot_columns, target_columns
from anchorflow.anchor.plan import SCHEMA, AnchorPlan
from anchorflow.anchor.serving import current_name, serving_columns
from anchorflow.compile.recorder import RecordingWarehouse
from anchorflow.config.project import Project
from anchorflow.config.staging import staging_columns
from anchorflow.land import ensure_raw_table, raw_table_name
from anchorflow.warehouse import ident, table
from anchorflow.warehouse.compiled import SqlOnlyDialect

# The compiled load's own journal: which (step, target, model, load) it has done, so a rerun
# of the load script skips them (anchorflow's own journal needs its Python steps).
JOURNAL = ("meta", "compiled_loads")
JOURNAL_COLUMNS = {"step": "VARCHAR", "target": "VARCHAR", "model": "VARCHAR",
                   "load_id": "BIGINT"}  # fmt: skip


def landing_name(source: str, stream: str) -> str:
    return f"__landing_{raw_table_name(source, stream)}"


def ddl_statements(project: Project, plan: AnchorPlan, sql: SqlOnlyDialect) -> list[str]:
    out = [f"CREATE SCHEMA IF NOT EXISTS {ident(s)}"
           for s in ("raw", "staging", SCHEMA, "marts", JOURNAL[0])]  # fmt: skip
    recorder = RecordingWarehouse(sql)
    for source, stream in project.streams():
        ensure_raw_table(recorder, source, stream)
        columns = ", ".join(f"{ident(c)} {t}" for c, t in sql.landing_columns.items())
        landing = table("raw", landing_name(source, stream))
        out += [*recorder.statements, f"CREATE TABLE IF NOT EXISTS {landing} ({columns})"]
        recorder.statements.clear()
    for name, model in project.staging.items():
        columns = "".join(f", {ident(c)} {t}" for c, t in staging_columns(model).items())
        out.append(
            f"CREATE TABLE IF NOT EXISTS {table('staging', name)} "
            f"(load_id BIGINT NOT NULL{columns})"
        )
    tables = {name: entity_columns(e) for name, e in plan.entities.items()}
    tables |= {name: knot_columns(k.type) for name, k in plan.knots.items()}
    tables |= {name: target_columns(t) for name, t in plan.targets.items()}
    out += [create_table_sql(name, columns, "duckdb") for name, columns in tables.items()]
    out += [
        create_table_sql(current_name(e), serving_columns(plan, e), "duckdb", not_null=["id"])
        for e in plan.entities
    ]
    journal = ", ".join(f"{ident(c)} {t} NOT NULL" for c, t in JOURNAL_COLUMNS.items())
    out.append(f"CREATE TABLE IF NOT EXISTS {table(*JOURNAL)} ({journal})")
    return out
