"""Records of erased people are not landed again: a backfill of the hours `forget` cleaned, or a
file delivered again, drops every record whose key is on the suppression list
(`journal.suppressions`), before raw, staging or the anchor model see it. The load record
counts them (its `suppressed` count).

One statement per window, in the engine: each record's key is read at the paths `forget` found
it at, hashed with the salt and looked up among the stored hashes.
"""

from __future__ import annotations

from anchorflow.errors import ConfigError
from anchorflow.journal.suppressions import hashes_at, key_hash_sql, suppressed_paths
from anchorflow.warehouse import Warehouse, ident

SUPPRESSED = ident("__suppressed")


def drop_suppressed(
    warehouse: Warehouse, source: str, stream: str, view: str, salt: str | None
) -> tuple[str, int]:
    """The batch `view` without the records that carry an erased key, as a relation to land
    from, and how many were dropped. Call `release_suppressed` after the window."""
    path_sets = suppressed_paths(warehouse, source, stream)
    if not path_sets:
        return view, 0
    if salt is None:
        raise ConfigError(
            [
                f"sources.{source}: the warehouse holds keys erased by `forget`, hashed with "
                "pii_salt; set pii_salt again (the same value) so their records are not landed"
            ]
        )
    tests: list[str] = []
    params: list[object] = []
    for paths in path_sets:
        hashes, where = hashes_at(source, stream, paths)
        # A line that is not JSON reads as NULL here (it is quarantined by landing).
        values = ["try(json_extract_string(b.record, ?))"] * len(paths)
        tests.append(f"{key_hash_sql(values)} IN {hashes}")
        params += [salt, *paths, *where]
    dropped = warehouse.insert(
        f"CREATE OR REPLACE TEMP TABLE {SUPPRESSED} AS SELECT b.origin, b.line_no "
        f"FROM {view} AS b WHERE {' OR '.join(tests)}",
        params,
    )
    if not dropped:
        release_suppressed(warehouse)
        return view, 0
    kept = (
        f"(SELECT b.* FROM {view} AS b ANTI JOIN {SUPPRESSED} AS s "
        "ON b.origin = s.origin AND b.line_no = s.line_no)"
    )
    return kept, dropped


def release_suppressed(warehouse: Warehouse) -> None:
    warehouse.execute(f"DROP TABLE IF EXISTS temp.{SUPPRESSED}")
