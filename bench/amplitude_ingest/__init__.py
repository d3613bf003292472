"""Amplitude export files → raw + staging in DuckDB, anchorflow against the ways users do it today.

Contenders (each in its own process, so its peak memory is its own):
- anchorflow: the whole path, HTTP from the emulator, unzip, gunzip, raw, typed staging, commit.
- duckdb_read_json: DuckDB's own single pass, read_json over the local gzip files into one table.
- dlt_arrow: a dlt resource yielding one Arrow table per file (pyarrow's JSON reader).
- dlt_parquet / dlt_dicts: a dlt resource yielding parsed dicts, with dlt's Parquet loader / its
  default loader.
- pandas: the reference article's loop: read_json(lines=True) per file, concat in the loop,
  to_sql into the database.
"""
