"""The benchmark's events: ~300-byte JSON backend events of several models, pushed to a list.

Like the reference article's bus: one Redis list carries several models, told apart by a
`type` field. Event `n` is a pure function of `n`, so every contender drains the same list
(it is filled again, identically, before each one). Built from %-templates, not json.dumps:
filling 10M events must not dominate the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import redis

PUSH_BATCH = 5000  # items per RPUSH
PIPELINE_DEPTH = 20  # RPUSH commands per round trip

_HEAD = '{"type": "%s", "id": %d, "at": "2026-11-30T%02d:%02d:%02d.%06dZ", '
TEMPLATES = [
    ("order_paid", _HEAD + '"user_id": "u%06d", "order_id": "o%09d", "amount": %d.%02d, '
     '"currency": "EUR", "items": %d, "payment": {"method": "card", "provider": "adyen", '
     '"3ds": true}, "coupon": null, "channel": "ios", "app_version": "5.12.%d"}'),
    ("page_view", _HEAD + '"user_id": "u%06d", "session_id": "s%09d", "load_ms": %d.%02d, '
     '"path": "/catalog/shoes/%d", "referrer": "https://www.example.com/search?q=sneakers", '
     '"device": {"os": "android", "model": "Pixel 8"}, "ab": "checkout_v%d"}'),
    ("user_signup", _HEAD + '"user_id": "u%06d", "invite_id": "i%09d", "score": %d.%02d, '
     '"age_bucket": %d, "country": "DE", "language": "de-DE", "marketing_opt_in": false, '
     '"source": {"utm_source": "newsletter", "utm_campaign": "black_friday_%d"}}'),
    ("cart_item_added", _HEAD + '"user_id": "u%06d", "product_id": "p%09d", "price": %d.%02d, '
     '"quantity": %d, "cart": {"size": 3, "currency": "EUR"}, "recommended": true, '
     '"list": "similar_items", "position": %d, "channel": "web", "locale": "de_DE"}'),
]  # fmt: skip


def event(n: int) -> bytes:
    name, template = TEMPLATES[n % len(TEMPLATES)]
    return (template % (
        name, n, n // 3600 % 24, n // 60 % 60, n % 60, n * 7919 % 1_000_000,
        n % 50_000, n * 31 % 10**9, n % 997, n % 100, n % 9 + 1, n % 40,
    )).encode()  # fmt: skip


def events(start: int, stop: int) -> list[bytes]:
    return [event(n) for n in range(start, stop)]


def batches(total: int, size: int = PUSH_BATCH) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


def fill(client: redis.Redis, key: str, total: int) -> int:
    """Push events 0..total-1 to the tail of `key` (empty first); the bytes pushed."""
    client.delete(key)
    pushed = 0
    pipe = client.pipeline(transaction=False)
    for number, (start, stop) in enumerate(batches(total), 1):
        items = events(start, stop)
        pushed += sum(map(len, items))
        pipe.rpush(key, *items)
        if number % PIPELINE_DEPTH == 0:
            pipe.execute()
    pipe.execute()
    length = int(client.llen(key))  # type: ignore[arg-type]
    if length != total:
        raise RuntimeError(f"{key} holds {length} events, expected {total}")
    return pushed


def check_sample() -> None:
    """Every template yields valid JSON with a `type` (a typo in a template would otherwise
    only show up in staging)."""
    for n in range(len(TEMPLATES) * 3):
        assert json.loads(event(n))["type"] == TEMPLATES[n % len(TEMPLATES)][0]
