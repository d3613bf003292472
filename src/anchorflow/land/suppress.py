"""Records of erased people are not landed again: a backfill of the hours `forget` cleaned, or a
file delivered again, drops every record whose key is on the suppression list
(`journal.suppressions`), before raw, staging or the anchor model see it. The load record
counts them (its `suppressed` count).

One statement per window, in the engine: each record's key is read at the paths `forget` found
it at, hashed with the salt and looked up among the stored hashes.
"""

from __future__ import annotations

import pyarrow as pa

from anchorflow.errors import ConfigError
from anchorflow.journal.suppressions import hashes_at, key_hash_sql, suppressed_paths
from anchorflow.sources.base import Rejected
from anchorflow.warehouse import Warehouse, ident

SUPPRESSED = ident("__suppressed")


def drop_suppressed(
    warehouse: Warehouse, source: str, stream: str, view: str, salt: str | None
) -> tuple[str, int]:
    """The batch `view` without the records that carry an erased key, as a relation to land
    from (read as `FROM <relation>`: it is aliased already), and how many were dropped. Call
    `release_suppressed` after the window."""
    path_sets = suppressed_paths(warehouse, source, stream)
    if not path_sets:
        return view, 0
    if salt is None:
        raise _salt_missing(source)
    test, params = _carries_erased_key(warehouse, source, stream, path_sets, salt)
    release_suppressed(warehouse)  # (a statement with parameters must be one on every engine)
    dropped = warehouse.insert(
        f"CREATE TEMP TABLE {SUPPRESSED} AS SELECT b.origin, b.line_no "
        f"FROM {view} AS b WHERE {test}",
        params,
    )
    if not dropped:
        release_suppressed(warehouse)
        return view, 0
    kept = (
        f"(SELECT b.* FROM {view} AS b ANTI JOIN {SUPPRESSED} AS s "
        "ON b.origin = s.origin AND b.line_no = s.line_no) AS kept"
    )
    return kept, dropped


def release_suppressed(warehouse: Warehouse) -> None:
    warehouse.execute(f"DROP TABLE IF EXISTS {warehouse.sql.temp_table(SUPPRESSED)}")


def drop_suppressed_rejected(
    warehouse: Warehouse, source: str, stream: str, rejected: list[Rejected], salt: str | None
) -> tuple[list[Rejected], int]:
    """The lines the source set aside itself (not UTF-8, too long) without those that carry an
    erased key, and how many were dropped: their text goes to the quarantine, which must not
    bring the person back either. A line whose key cannot be read (cut, not JSON) is kept."""
    if not rejected:
        return rejected, 0
    path_sets = suppressed_paths(warehouse, source, stream)
    if not path_sets:
        return rejected, 0
    if salt is None:
        raise _salt_missing(source)
    test, params = _carries_erased_key(warehouse, source, stream, path_sets, salt)
    texts = pa.table({"i": pa.array(range(len(rejected)), pa.int64()),
                      "record": [r.text for r in rejected]})  # fmt: skip
    with warehouse.registered("__rejected_texts", texts) as view:
        erased = {
            i for (i,) in warehouse.query(f"SELECT b.i FROM {view} AS b WHERE {test}", params)
        }
    return [r for i, r in enumerate(rejected) if i not in erased], len(erased)


def _carries_erased_key(
    warehouse: Warehouse, source: str, stream: str, path_sets: list[list[str]], salt: str
) -> tuple[str, list[object]]:
    """A condition on `b.record`: its key, read at each set of paths, hashed with the salt, is
    on the suppression list. Returns it with its parameters."""
    tests: list[str] = []
    params: list[object] = []
    for paths in path_sets:
        hashes, where = hashes_at(source, stream, paths)
        # A line that is not JSON reads as NULL here (it is quarantined by landing).
        values = [warehouse.sql.json_text_at("b.record", "?")] * len(paths)
        tests.append(f"{key_hash_sql(warehouse, values)} IN {hashes}")
        params += [salt, *paths, *where]
    return " OR ".join(tests), params


def _salt_missing(source: str) -> ConfigError:
    return ConfigError(
        [
            f"sources.{source}: the warehouse holds keys erased by `forget`, hashed with "
            "pii_salt; set pii_salt again (the same value) so their records are not landed"
        ]
    )
