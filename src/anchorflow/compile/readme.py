"""README.txt of a compiled directory: the order to run the files in, and what is left to the
user (where the staged files are, session settings, the steps that have no SQL here)."""

from __future__ import annotations

from anchorflow.anchor.plan import AnchorPlan
from anchorflow.config.project import Project
from anchorflow.land import raw_table_name

COMMON = """\
This SQL was written by `anchorflow compile` and has NOT been run by anchorflow: it is checked
by golden tests and by sqlglot's parser only. Try it on a scratch database first.

Run, in one session (the load uses temporary tables):
  01_ddl.sql    once, and again after the project gains a table (IF NOT EXISTS: it adds only)
  02_views.sql  after 01_ddl.sql, and again after the project changes
  03_load.sql   for each batch of staged files: raw, staging, the anchor model, the serving
                tables, the marts that are tables (and views over them). Each step reads only
                the loads that the table meta.compiled_loads says it has not done, so a rerun
                adds nothing twice; run it again to the end after a failure.

Left to you:
{engine_steps}
- Stage each stream's records as NDJSON (one JSON object per line, as the source delivered it;
  a row of a CSV or Parquet file as one object, as anchorflow lands it; .gz allowed) in its
  folder of the stage:
{folders}
  Extracting them (APIs, Redis, webhooks) is anchorflow's job on DuckDB or PostgreSQL, not SQL's.
- Lines that are not a JSON object stay in raw."__landing_<stream>" for you to look at.

Not in this SQL (anchorflow does these on DuckDB and PostgreSQL only):
- quarantine and type-error records, field statistics, drift events, the anchor model's conflict
  records: rows whose key is missing (or, with on_bad_value: quarantine, that hold a bad value)
  are not staged, and nothing says why;
- mart tests, fraud rules, metrics, dashboards, alerts, rollback, forget, table comments;
- incremental marts are rebuilt whole (the same rows); the serving tables
  (anchor."<Entity>_current") are recomputed whole at every load;
- new entity ids are numbered after the table's highest id (anchorflow keeps a registry that
  gives an erased key its old id back; this SQL has none).
"""

SNOWFLAKE = """\
- Create a stage named ANCHORFLOW_STAGE that reads your bucket, e.g.
    CREATE STAGE ANCHORFLOW_STAGE URL = 's3://my-bucket/anchorflow/'
      STORAGE_INTEGRATION = my_integration;
  (or replace @ANCHORFLOW_STAGE in 03_load.sql). COPY skips files it loaded in the last 64
  days, so a file is landed once.
- Run with the session's TIMEZONE set to 'UTC' (ALTER SESSION SET TIMEZONE = 'UTC'): timestamps
  without an offset are read as UTC, as anchorflow reads them.
- Every identifier is quoted and keeps the project's case: query "anchor"."User_latest", not
  anchor.user_latest.
- Run the files with snowsql -f (one session) or as a worksheet."""

BIGQUERY = """\
- Replace ANCHORFLOW_BUCKET in 03_load.sql with your Cloud Storage bucket (and path). LOAD DATA
  does not remember the files it loaded: move them away after a load, or they land again
  (with a new load id; staging drops the duplicates of a model with a unique key).
- LOAD DATA names no file nor line: raw.origin is the stream's folder, raw.line_no a number in
  no particular order (staging keeps the first copy of a key by load, origin, line).
- Run each file as one multi-statement query in the datasets' project and location, e.g.
    bq query --use_legacy_sql=false < 03_load.sql
  The schemas are datasets: raw, staging, anchor, marts, meta."""

PII_SNOWFLAKE = """\
- Set the PII salt (columns with pii: hash) before the load:
    SET anchorflow_pii_salt = '<the project's pii_salt>';"""

PII_BIGQUERY = """\
- Pass the PII salt (columns with pii: hash) as a query parameter:
    bq query --use_legacy_sql=false --parameter=anchorflow_pii_salt::'<pii_salt>' < 03_load.sql"""


def readme(project: Project, engine: str, plan: AnchorPlan) -> str:
    steps = SNOWFLAKE if engine == "snowflake" else BIGQUERY
    hashed = any(c.pii == "hash" for m in project.staging.values() for c in m.columns.values())
    if hashed:
        steps += "\n" + (PII_SNOWFLAKE if engine == "snowflake" else PII_BIGQUERY)
    folders = "\n".join(
        f"    {raw_table_name(s, t)}/   → raw.{raw_table_name(s, t)}" for s, t in project.streams()
    )
    title = f"anchorflow compile --engine {engine}: project {project.name}\n\n"
    return title + COMMON.format(engine_steps=steps, folders=folders)
