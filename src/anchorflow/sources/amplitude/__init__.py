"""Amplitude's hourly raw Export API as a source kind.

`config` (its settings), `source` (the Source: plan, fetch, cursor), `client` (HTTP), `archive`
(the ZIP of gzip members) and `export` (download and decode ahead of the commit).
"""
