"""Local export files → DuckDB: anchorflow's `files` source against DuckDB's own readers.

The same events (the Amplitude export of bench/amplitude_ingest, one file per hour) as NDJSON.gz
and as Parquet. Contenders (each in its own process, so its peak memory is its own):
- anchorflow_ndjson: a `files` source on the NDJSON.gz files, raw text + typed staging (the demo
  project's `events` mapping, dedupe on uuid), one transaction per file.
- anchorflow_parquet: the same on the Parquet files (each row lands as its JSON object).
- duckdb_read_json: DuckDB's single pass, read_json over the NDJSON.gz files into one table.
- duckdb_read_parquet: DuckDB's single pass, read_parquet over the Parquet files into one table.
"""
