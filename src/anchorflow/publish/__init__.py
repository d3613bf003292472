"""Publish: what the warehouse offers to the tools beside it.

- `export`: chosen tables as Parquet files, each published atomically (written under a temporary
  name, fsynced, renamed), so a notebook or BI tool reads them while anchorflow loads;
- `dbt`: a dbt `sources.yml` describing the warehouse's schemas, tables and columns, with the
  descriptions of the project file;
- `files`: the atomic publication both use.
"""
