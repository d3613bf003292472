"""Files as a source kind: NDJSON, JSON documents, CSV and Parquet, plain or gzip/zstd, from a
local glob or an object store.

`config` (its settings), `source` (the Source: plan, fetch, cursor), `store` (listing and reading
through fsspec) and `readers` (a file's bytes as records).
"""
