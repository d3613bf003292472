"""Compaction: the warehouse file rewritten so that erased rows leave no byte behind.

`forget` deletes a person's rows at once, but an engine keeps deleted bytes in its file (free
blocks, unchanged blocks of a compressed column) until they are overwritten. Each `forget` is
therefore a request with a deadline (`erasure_deadline`); `compact` rewrites the file
(`Warehouse.rewrite`) and marks every pending request applied. `run` compacts by itself once
the most urgent request's deadline is less than `AHEAD` away, so requests made within the
deadline are applied together, by one rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from anchorflow.journal import utcnow
from anchorflow.journal.erasures import mark_compacted, pending_erasures
from anchorflow.warehouse import Warehouse

AHEAD = timedelta(days=1)  # `run` compacts when a deadline is closer than this


@dataclass(frozen=True)
class Compaction:
    """A rewrite of the warehouse file: the erasure requests it applied, its size before and
    after, and how long it took."""

    erasures: int
    bytes_before: int
    bytes_after: int
    seconds: float


def compaction_due(warehouse: Warehouse, now: datetime) -> bool:
    """A pending erasure's deadline is less than `AHEAD` away from `now`, or past."""
    pending = pending_erasures(warehouse)
    return bool(pending) and pending[0].compact_by - now < AHEAD


def compact(warehouse: Warehouse) -> Compaction:
    """Rewrite the warehouse file now and mark the pending erasures applied.

    Marked in the new file after the swap: a crash between the two leaves them pending, and the
    next compaction rewrites once more (the data is the same)."""
    pending = [p.erasure_id for p in pending_erasures(warehouse)]
    rewritten = warehouse.rewrite()
    mark_compacted(warehouse, pending, utcnow())
    return Compaction(
        len(pending), rewritten.bytes_before, rewritten.bytes_after, rewritten.seconds
    )
