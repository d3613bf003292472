"""The same Amplitude ingest and anchor step on DuckDB and PostgreSQL, and dlt's PostgreSQL
destination (Arrow) on the same files: `python -m bench.engines [--events N]`; see `__main__.py`.
"""
