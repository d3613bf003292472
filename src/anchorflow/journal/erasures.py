"""`meta.erasures`: every `forget`, with counts per table and without the data it erased, and
whether the warehouse file has been rewritten without its bytes since; and the scrubbing of an
erased person out of every other journal text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from anchorflow.journal.alerts import scrub_alerts
from anchorflow.journal.field_stats import scrub_field_stats
from anchorflow.journal.quarantine import (
    delete_quarantined_records,
    delete_unparsable_mentioning,
    delete_unparsable_quoting,
    scrub_reasons,
)
from anchorflow.journal.runs import scrub_runs
from anchorflow.journal.schema import utcnow
from anchorflow.journal.schema_events import scrub_schema_events
from anchorflow.journal.type_errors import (
    delete_type_errors_of_records,
    delete_type_errors_with_value,
)
from anchorflow.warehouse import Warehouse


@dataclass(frozen=True)
class PendingErasure:
    """A `forget` whose deleted bytes may still be in the warehouse file (until `compact`)."""

    erasure_id: int
    entity: str
    erased_at: datetime
    compact_by: datetime  # the deadline: the file is rewritten before it


def next_erasure_id(warehouse: Warehouse) -> int:
    return int(warehouse.scalar("SELECT coalesce(max(erasure_id), 0) + 1 FROM meta.erasures"))


def record_erasure(
    warehouse: Warehouse, erasure_id: int, entity: str, counts: dict[str, int], compact_by: datetime
) -> None:
    warehouse.execute(
        "INSERT INTO meta.erasures (erasure_id, entity, erased_at, counts, compact_by) "
        "VALUES (?, ?, ?, ?, ?)",
        [erasure_id, entity, utcnow(), json.dumps(counts, sort_keys=True), compact_by],
    )


def pending_erasures(warehouse: Warehouse) -> list[PendingErasure]:
    """Erasures the file has not been rewritten since, the most urgent first. One recorded
    before deadlines existed is due at once."""
    rows = warehouse.query(
        "SELECT erasure_id, entity, erased_at, coalesce(compact_by, erased_at) AS deadline "
        "FROM meta.erasures WHERE compacted_at IS NULL ORDER BY deadline, erasure_id"
    )
    return [PendingErasure(int(r[0]), str(r[1]), r[2], r[3]) for r in rows]


def mark_compacted(warehouse: Warehouse, erasure_ids: Iterable[int], at: datetime) -> int:
    """The file holds none of these erasures' bytes any more (it was rewritten at `at`)."""
    return warehouse.insert(
        "UPDATE meta.erasures SET compacted_at = ? WHERE list_contains(?, erasure_id) "
        "AND compacted_at IS NULL",
        [at, list(erasure_ids)],
    )


def scrub_journal(warehouse: Warehouse, key: list[str], values: Iterable[str]) -> dict[str, int]:
    """The key out of every journal text that may quote it; the person's attribute values out
    of statistics examples (a shared value such as a country loses an example there, which is
    harmless). Other people's rows are never deleted for holding the same text: quarantined
    records go only when they cannot be parsed and hold the key as a JSON string or as a whole
    word (a CSV row; parsable ones went with the raw records), quarantine reasons and free-text
    run details lose the key as a whole word, and JSON details only string values equal to the
    key. Returns rows changed per table."""
    counts: dict[str, int] = {}

    def note(name: str, rows: int) -> None:
        if rows:
            counts[name] = counts.get(name, 0) + rows

    for text in key:
        for quoted in _json_strings(text):
            note("meta.quarantine", delete_unparsable_quoting(warehouse, quoted))
            note("meta.schema_events", scrub_schema_events(warehouse, quoted))
            note("meta.alerts", scrub_alerts(warehouse, quoted))
        pattern = r"(^|[^\w])" + re.escape(text) + r"($|[^\w])"
        note("meta.quarantine", delete_unparsable_mentioning(warehouse, pattern))
        note("meta.quarantine", scrub_reasons(warehouse, pattern))
        note("meta.runs", scrub_runs(warehouse, pattern))
        note("meta.type_errors", delete_type_errors_with_value(warehouse, text))
    note("meta.field_stats", scrub_field_stats(warehouse, sorted({*key, *values})))
    return counts


def _json_strings(text: str) -> list[str]:
    """How a JSON document may spell `text` as a string: escaped to ASCII, or as it is."""
    return sorted({json.dumps(text), json.dumps(text, ensure_ascii=False)})


def erase_record_traces(warehouse: Warehouse, records: str) -> dict[str, int]:
    """Delete what the journal holds about the raw records in `records` (load_id, origin,
    line_no): their type errors and quarantine rows. Returns rows deleted per table."""
    return {
        "meta.type_errors": delete_type_errors_of_records(warehouse, records),
        "meta.quarantine": delete_quarantined_records(warehouse, records),
    }
