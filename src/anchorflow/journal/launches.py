"""`meta.launches`: who delivered the landing chunks that were loaded.

An intake process (a Redis reader, the webhook server) records each of its starts in a launch
manifest beside its chunks (`sources.chunks`); a chunk id starts with its launch id. The first
time a chunk of a launch is loaded, the launch is recorded here, in the chunk's transaction.
A raw row is traced by its load: `meta.loads` (`window_key` is the chunk id, `run_id` the
loader run, `meta.runs`), then the launch whose id starts the chunk id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from anchorflow.journal.schema import utcnow
from anchorflow.warehouse import Warehouse


def record_launches(warehouse: Warehouse, launches: Sequence[dict[str, Any]], load_id: int) -> int:
    """Record the launches not recorded yet (their first load is `load_id`); how many."""
    ids = list(dict.fromkeys(str(launch["launch_id"]) for launch in launches))
    if not ids:
        return 0
    known = warehouse.query(
        "SELECT launch_id FROM meta.launches WHERE list_contains(?, launch_id)", [ids]
    )
    seen = {str(row[0]) for row in known}
    added = 0
    for launch in launches:
        launch_id = str(launch["launch_id"])
        if launch_id in seen:
            continue
        seen.add(launch_id)
        pid = launch.get("pid")
        warehouse.execute(
            "INSERT INTO meta.launches (launch_id, kind, source, queue, host, pid, started_at, "
            "first_loaded_at, first_load_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                launch_id, str(launch["kind"]), str(launch["source"]), str(launch["queue"]),
                launch.get("host"), int(pid) if isinstance(pid, int) else None,
                _utc(launch.get("started_at")), utcnow(), load_id,
            ],
        )  # fmt: skip
        added += 1
    return added


def _utc(text: Any) -> datetime | None:
    """A manifest's ISO time as a naive UTC datetime (the journal's times), or None."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
