"""Queue health at each loader run: the depth of every queue in front of a landing directory is
sampled into the journal, and an alert is queued when a queue is too deep (`alert_depth`) or
has grown at every sample for `alert_growing`.

At most one alert per queue per run, and one per episode: a queue whose alarm was already
alerted is alerted again only after `REMIND_AFTER` while the alarm lasts. Sampling needs the
queue (Redis), the loading does not: a queue that does not answer is logged, never a failed
run. A source without alert settings is not contacted at all.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from itertools import pairwise

from anchorflow.alerts import Alert, AlertSender
from anchorflow.journal.queues import depths_since, last_alarm, prune_depths, record_depth
from anchorflow.sources.base import Source
from anchorflow.sources.chunked import ChunkSource
from anchorflow.warehouse import Warehouse

log = logging.getLogger(__name__)
REMIND_AFTER = timedelta(hours=1)
KEEP_AT_LEAST = timedelta(days=1)  # samples kept (more when `alert_growing` is longer)


def watch_queues(warehouse: Warehouse, source: Source, alerts: AlertSender, now: datetime) -> None:
    """Sample the depth of the source's queues (when it has alerts set) and queue its alerts."""
    if not isinstance(source, ChunkSource):
        return
    too_deep, growing_for = source.alert_limits()
    if too_deep is None and growing_for is None:
        return
    for queue in source.config.streams:
        try:
            depth = source.queue_depth(queue)
        except Exception as error:
            log.warning("%s %s: depth not sampled: %s", source.name, queue,
                        source.describe_failure(error))  # fmt: skip
            continue
        if depth is None:
            continue
        alarms = []
        if too_deep is not None and depth > too_deep:
            alarms.append("depth")
        if growing_for is not None and _grew(warehouse, source.name, queue, depth, now,
                                             growing_for):  # fmt: skip
            alarms.append("growing")
        alarm = ",".join(alarms) or None
        alert = alarm is not None and _due(warehouse, source.name, queue, now)
        keep = max(KEEP_AT_LEAST, 2 * (growing_for or timedelta(0)))
        with warehouse.transaction():
            record_depth(warehouse, source.name, queue, now, depth, alarm, alert)
            prune_depths(warehouse, source.name, queue, now - keep)
        if alert:
            alerts.queue(_alert(source.name, queue, depth, alarms, too_deep, growing_for))


def _grew(
    warehouse: Warehouse, source: str, queue: str, depth: int, now: datetime, span: timedelta
) -> bool:
    """Every sample over the last `span` (the last one before it included, so the samples
    cover all of it) is larger than the one before it, `depth` now the last."""
    found = depths_since(warehouse, source, queue, now - span)
    if not found or found[0][0] > now - span:
        return False  # no sample as old as the span: not known to have grown all along
    series = [*(d for _, d in found), depth]
    return all(later > earlier for earlier, later in pairwise(series))


def _due(warehouse: Warehouse, source: str, queue: str, now: datetime) -> bool:
    """A new alarm is alerted; one that lasts, again after `REMIND_AFTER`."""
    previous, alerted_at = last_alarm(warehouse, source, queue)
    return previous is None or alerted_at is None or now - alerted_at >= REMIND_AFTER


def _alert(
    source: str, queue: str, depth: int, alarms: list[str], too_deep: int | None,
    growing_for: timedelta | None,
) -> Alert:  # fmt: skip
    why = []
    if "depth" in alarms:
        why.append(f"holds {depth:,} items (alert_depth {too_deep:,})")
    if "growing" in alarms and growing_for is not None:
        why.append(f"has grown at every sample for {_span(growing_for)} (now {depth:,} items)")
    details = {"source": source, "queue": queue, "depth": depth, "alarms": alarms}
    kind = "queue_depth" if "depth" in alarms else "queue_growing"
    return Alert(kind, f"queue {source}.{queue} " + " and ".join(why), details)


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"
