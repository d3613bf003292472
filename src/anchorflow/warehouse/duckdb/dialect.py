"""DuckDB's dialect: the canonical spelling itself (see `warehouse.dialect`)."""

from __future__ import annotations

from collections.abc import Sequence

from anchorflow.warehouse.base import literal
from anchorflow.warehouse.dialect import Dialect


class DuckDBDialect(Dialect):
    """Steps' SQL runs on DuckDB as written; every construct is `Dialect`'s own spelling."""

    name = "duckdb"

    # The layout exports use most (Amplitude's `2024-03-01 02:20:06.861430`), read without a
    # time zone: a quarter of the time of the cast through TIMESTAMPTZ. The format must match
    # the whole text, so a text with an offset or a zone is never read here; it, and any
    # other layout, takes the cast.
    NAIVE_TIMESTAMP = "%Y-%m-%d %H:%M:%S.%f"

    def utc_timestamp(self, text: str) -> str:
        # (The connection's TimeZone is UTC, so the cast takes a time without an offset as UTC
        # too: both give the same value wherever the format matches.)
        naive = f"try_strptime({text}, '{self.NAIVE_TIMESTAMP}')"
        return f"coalesce({naive}, {super().utc_timestamp(text)})"

    def field_presence(self, rows: str, keys: str, parents: Sequence[str]) -> str:
        # Each level's keys are counted first and named `parent.key` after: the prefix is
        # joined to the few distinct keys, not to every key of every row (a third of the time).
        levels = [
            f"SELECT {literal(prefix)} || f AS field, n AS present FROM (SELECT f, count(*) AS n "
            f"FROM (SELECT unnest({keys}[{index}]) AS f FROM {rows}) AS e GROUP BY f) AS c"
            for index, prefix in enumerate(["", *(p + "." for p in parents)], start=1)
        ]
        # (A top-level key spelled `parent.key` is the same field: summed, as one row.)
        return (
            f"SELECT field, CAST(sum(present) AS BIGINT) AS present "
            f"FROM ({' UNION ALL '.join(levels)}) AS l GROUP BY field"
        )
