"""Staging events → anchor model: load rate, incremental cost, queries.

`python -m bench.anchor [--rows N] [--quick]`; see `__main__.py`.
"""
