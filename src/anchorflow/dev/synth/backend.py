"""Synthetic backend events: what the app's own services push to Redis (the demo's `redis`
source). Three models, each a JSON object with a `type`: `payment` (the billing service, on a
stream), `subscription_change` and `support_ticket` (on a list). About 300 bytes each.

The users are the Amplitude traffic's (`user_<n>`, heavy users first), so the backend rows join
the anchor model's users. The same seed gives the same events, ids included: a second push of
the same events is deduplicated by the staging models' `unique_key`.

Built with numpy and one f-string per event (no per-event work beyond formatting): a few hundred
thousand events take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

PLANS = ("free", "plus", "pro", "team")
CURRENCIES = ("EUR", "USD", "GBP")
METHODS = ("card", "paypal", "apple_pay", "google_pay", "sepa")
STATUSES = ("succeeded", "succeeded", "succeeded", "succeeded", "failed", "refunded")
REASONS = ("upgrade", "downgrade", "cancel")
PRIORITIES = ("low", "normal", "normal", "high", "urgent")
CHANNELS = ("email", "chat", "in_app", "phone")
TOPICS = ("billing", "login", "bug", "feature_request", "account", "payout")
SERVICES = ("billing-api", "accounts-api", "helpdesk-api")


@dataclass(frozen=True)
class BackendEvents:
    """The events of each queue, as JSON bytes."""

    events: list[bytes]  # subscription_change and support_ticket: the Redis list
    payments: list[bytes]  # payment: the Redis stream

    @property
    def count(self) -> int:
        return len(self.events) + len(self.payments)


def _users(rng: np.random.Generator, n: int, users: int) -> list[int]:
    """Heavy users and a long tail, like the Amplitude traffic's."""
    picked = np.minimum((rng.pareto(1.2, n) * users / 20).astype(np.int64), users - 1)
    return list(picked.tolist())


def _times(rng: np.random.Generator, n: int, start: datetime, hours: int) -> list[str]:
    """`n` sorted instants in the `hours` from `start`, as 'YYYY-MM-DD HH:MM:SS.mmm'."""
    offsets = np.sort(rng.integers(0, hours * 3_600_000, n))
    base = np.datetime64(start.replace(tzinfo=None), "ms")
    stamps = np.datetime_as_string(base + offsets.astype("timedelta64[ms]"), unit="ms")
    return [s.replace("T", " ") for s in stamps.tolist()]


def _pick(rng: np.random.Generator, values: tuple[str, ...], n: int) -> list[str]:
    return [values[i] for i in rng.integers(0, len(values), n).tolist()]


def payments(
    rng: np.random.Generator, n: int, start: datetime, hours: int, users: int
) -> list[bytes]:
    amount = np.round(rng.lognormal(2.6, 0.8, n), 2).tolist()
    return [
        f'{{"type":"payment","id":"pay_{i:08d}","user_id":"user_{u}","occurred_at":"{t}",'
        f'"amount":{a:.2f},"currency":"{c}","method":"{m}","status":"{s}",'
        f'"invoice":"inv_{i:08d}","service":"billing-api","attempt":1,'
        f'"meta":{{"plan":"{p}","country_code":"{c[:2]}",'
        f'"trace_id":"{i * 2654435761 % 2**32:08x}"}}}}'.encode()
        for i, u, t, a, c, m, s, p in zip(
            range(n), _users(rng, n, users), _times(rng, n, start, hours), amount,
            _pick(rng, CURRENCIES, n), _pick(rng, METHODS, n), _pick(rng, STATUSES, n),
            _pick(rng, PLANS[1:], n), strict=True,
        )
    ]  # fmt: skip


def subscription_changes(
    rng: np.random.Generator, n: int, start: datetime, hours: int, users: int
) -> list[bytes]:
    old = rng.integers(0, len(PLANS), n)
    new = (old + rng.integers(1, len(PLANS), n)) % len(PLANS)  # always a different plan
    mrr = np.round(new * 9.99, 2).tolist()
    reason = np.where(new > old, 0, np.where(new == 0, 2, 1)).tolist()
    return [
        f'{{"type":"subscription_change","id":"sub_{i:08d}","user_id":"user_{u}",'
        f'"occurred_at":"{t}","from_plan":"{PLANS[o]}","to_plan":"{PLANS[w]}",'
        f'"reason":"{REASONS[r]}","mrr":{m:.2f},"service":"accounts-api",'
        f'"meta":{{"source":"web","trace_id":"{i * 2246822519 % 2**32:08x}"}}}}'.encode()
        for i, u, t, o, w, r, m in zip(
            range(n), _users(rng, n, users), _times(rng, n, start, hours), old.tolist(),
            new.tolist(), reason, mrr, strict=True,
        )
    ]  # fmt: skip


def support_tickets(
    rng: np.random.Generator, n: int, start: datetime, hours: int, users: int
) -> list[bytes]:
    minutes = rng.integers(1, 2880, n).tolist()
    return [
        f'{{"type":"support_ticket","id":"tkt_{i:08d}","user_id":"user_{u}",'
        f'"occurred_at":"{t}","priority":"{p}","channel":"{c}","topic":"{k}",'
        f'"subject":"{k.replace("_", " ")} issue #{i}","first_response_minutes":{m},'
        f'"service":"helpdesk-api","meta":{{"trace_id":"{i * 3266489917 % 2**32:08x}"}}}}'.encode()
        for i, u, t, p, c, k, m in zip(
            range(n), _users(rng, n, users), _times(rng, n, start, hours),
            _pick(rng, PRIORITIES, n), _pick(rng, CHANNELS, n), _pick(rng, TOPICS, n), minutes,
            strict=True,
        )
    ]  # fmt: skip


def backend_events(
    total: int, start: datetime, hours: int, seed: int = 42, users: int = 60_000
) -> BackendEvents:
    """About `total` events over `hours` from `start`: a fifth payments, half subscription
    changes, the rest support tickets."""
    rng = np.random.default_rng([seed, 7])
    n_pay, n_sub = total // 5, total // 2
    n_tkt = total - n_pay - n_sub
    changes = subscription_changes(rng, n_sub, start, hours, users)
    tickets = support_tickets(rng, n_tkt, start, hours, users)
    mixed = changes + tickets  # the two services push to one list, interleaved
    return BackendEvents(
        events=[mixed[i] for i in rng.permutation(len(mixed)).tolist()],
        payments=payments(rng, n_pay, start, hours, users),
    )
