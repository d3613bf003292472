"""The Redis event bus: list → raw, anchorflow against the ceiling and the reference article.

One run fills a throwaway redis-server's list with the same ~300-byte backend events (several
models, a `type` field) before each contender, then measures (a) the ceiling: bare
`LPOP key 5000` into /dev/null, (b) the reference article's per-item `LPOP` loop writing a
JSON file, (c) anchorflow: 2 reader processes and the loader, list → raw committed in DuckDB,
with the RSS of each process sampled over the drain. `python -m bench.redis_bus`.
"""
