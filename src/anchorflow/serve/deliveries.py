"""A delivery's body as records: the whole body, or one record per element of its array of
events (Wistia), each with the sender's id that deduplicates redeliveries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from anchorflow.sources.webhook.config import WebhookConfig


class BadDelivery(ValueError):
    """The body is not what the source takes (not JSON, no array of events): answered 400."""


@dataclass(frozen=True)
class Records:
    texts: list[bytes]  # one JSON text per record
    ids: list[str | None]  # the sender's id of each, None where it has none


def at_path(value: Any, path: str) -> Any:
    """The value at a dotted path of keys, or None."""
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def sender_id(value: Any) -> str | None:
    """An id as text, spelled as DuckDB's `json_extract_string` spells it (the same id is read
    back from the chunk files at the next start)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def records_of(config: WebhookConfig, body: bytes) -> Records:
    """The records of a delivery. A body that is one record is kept as it arrived; elements of
    an array are written back as compact JSON (one loop per event, never per byte)."""
    try:
        parsed = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        raise BadDelivery("the body is not JSON") from None
    dedup = config.dedup_path
    if config.events is None:
        return Records([body], [sender_id(at_path(parsed, dedup)) if dedup else None])
    events = at_path(parsed, config.events)
    if not isinstance(events, list):
        raise BadDelivery(f"expected an array of events at `{config.events}`")
    texts = [json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode() for e in events]
    ids = [sender_id(at_path(e, dedup)) if dedup else None for e in events]
    return Records(texts, ids)
