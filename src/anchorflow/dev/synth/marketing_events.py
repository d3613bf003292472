"""What users do after signing up, as numpy columns: front-end sessions (session_start, page or
screen views, searches, carts, purchases with revenue, session_end), then server-API events
(payment_webhook after a purchase, subscription_renewal); api_only users get server events only,
travellers and impossible travellers change country. One row per event, unsorted."""

from __future__ import annotations

import numpy as np

from anchorflow.dev.synth.marketing_traffic import HOUR, MINUTE, SECOND, Block
from anchorflow.dev.synth.marketing_world import COUNTRIES, EVENT_TYPES, SERVER_TYPES, combos

_T = {name: i for i, name in enumerate(EVENT_TYPES)}
_MIDDLE = np.array([_T["page_view"], _T["search"], _T["add_to_cart"], _T["purchase"]])
_MIDDLE_P = np.array([0.78, 0.09, 0.09, 0.04])
# where an event's IP and country come from: the user's, the user's other, a third one
HOME, AWAY, THIRD = 0, 1, 2


def _within_groups(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows grouped by `sizes`: each row's group and its position in the group."""
    group = np.repeat(np.arange(len(sizes)), sizes)
    starts = np.cumsum(sizes) - sizes
    return group, np.arange(int(sizes.sum())) - starts[group]


def _rows(user: np.ndarray, t: np.ndarray, kind: np.ndarray | int, place: int = HOME) -> Block:
    n = len(user)
    return {
        "user": user.astype(np.int64),
        "t": t.astype(np.int64),
        "type": np.broadcast_to(np.asarray(kind, dtype=np.int8), (n,)).copy(),
        "place": np.full(n, place, dtype=np.int8),
        "revenue": np.full(n, np.nan),
    }


def sessions(rng: np.random.Generator, users: Block, per_user: float, per_session: float) -> Block:
    """Front-end sessions of active users: the first within 2 min of signing up, the others over
    the next three days; events ~25 s apart; a purchase carries a revenue."""
    active = users["activity"] == 1
    count = np.where(active, 1 + rng.poisson(per_user - 1, len(active)), 0)
    count[users["travel"] == 1] = np.maximum(count[users["travel"] == 1], 3)
    owner, position = _within_groups(count)
    offset = np.where(position == 0, rng.integers(5, 120, len(owner)) * SECOND,
                      rng.integers(HOUR // 2, 72 * HOUR, len(owner)))  # fmt: skip
    start = users["reg"][owner] + offset
    size = 2 + rng.poisson(per_session - 2, len(owner))
    session, step = _within_groups(size)
    gap = rng.exponential(25 * SECOND, len(session)).astype(np.int64)
    gap[step == 0] = 0
    elapsed = np.cumsum(gap)
    elapsed -= elapsed[np.cumsum(size) - size][session]
    kind = _MIDDLE[rng.choice(len(_MIDDLE), len(session), p=_MIDDLE_P)]
    app = combos().platform[users["combo"][owner[session]]] != 0
    kind[(kind == _T["page_view"]) & app] = _T["screen_view"]
    kind[step == 0] = _T["session_start"]
    kind[step == size[session] - 1] = _T["session_end"]
    rows = _rows(owner[session], start[session] + elapsed, kind)
    bought = kind == _T["purchase"]
    rows["revenue"][bought] = np.round(rng.lognormal(np.log(25), 0.8, int(bought.sum())), 2)
    rows["first"] = (position[session] == 0) & (step == 0)
    return rows


def server_events(rng: np.random.Generator, users: Block, front: Block, end_us: int) -> list[Block]:
    """payment_webhook 2–10 s after each purchase; a renewal for 10% of active users a day or
    more after signing up; api_only users' 5–30 (plain) or 3 (evasive) server events alone,
    within 48 h of signing up and before the end of the traffic (so none is cut off)."""
    bought = front["type"] == _T["purchase"]
    webhook = _rows(front["user"][bought],
                    front["t"][bought] + rng.integers(2 * SECOND, 10 * SECOND, int(bought.sum())),
                    _T["payment_webhook"])  # fmt: skip
    renewing = np.flatnonzero((users["activity"] == 1) & (rng.random(len(users["reg"])) < 0.1))
    renewal = _rows(renewing, users["reg"][renewing] + rng.integers(24 * HOUR, 72 * HOUR,
                    len(renewing)), _T["subscription_renewal"])  # fmt: skip
    api = np.flatnonzero(users["activity"] >= 2)
    count = np.where(users["activity"][api] == 2, rng.integers(5, 31, len(api)), 3)
    owner, _ = _within_groups(count)
    reg = users["reg"][api][owner]
    span = np.minimum(48 * HOUR, end_us - 1 - reg)
    at = reg + 1 + (rng.random(len(owner)) * np.maximum(span - 1, 0)).astype(np.int64)
    kinds = np.array(SERVER_TYPES)[rng.integers(0, len(SERVER_TYPES), len(owner))]
    return [webhook, renewal, _rows(api[owner], at, kinds)]


def impossible_trips(rng: np.random.Generator, users: Block, front: Block) -> list[Block]:
    """Plain: a view from a second country 5–12 min and from a third 14–24 min after the first
    session starts; evasive: a view from a second country 40–45 min after."""
    first = front["first"]
    owner, start = front["user"][first], front["t"][first]
    travel = users["travel"][owner]
    plain, evasive = travel == 2, travel == 3
    kind = _T["page_view"]
    return [
        _rows(owner[plain], start[plain] + rng.integers(5 * MINUTE, 12 * MINUTE, plain.sum()),
              kind, AWAY),
        _rows(owner[plain], start[plain] + rng.integers(14 * MINUTE, 24 * MINUTE, plain.sum()),
              kind, THIRD),
        _rows(owner[evasive],
              start[evasive] + rng.integers(40 * MINUTE, 45 * MINUTE, evasive.sum()), kind, AWAY),
    ]  # fmt: skip


def travel_once(rng: np.random.Generator, users: Block, rows: Block) -> None:
    """Travellers: events after a point 2–24 h after sign-up move 6 h later and abroad."""
    split = users["reg"] + rng.integers(2 * HOUR, 24 * HOUR, len(users["reg"]))
    moved = (users["travel"][rows["user"]] == 1) & (rows["t"] >= split[rows["user"]])
    rows["t"][moved] += 6 * HOUR
    rows["place"][moved] = AWAY


def user_events(
    rng: np.random.Generator, users: Block, end_us: int, per_user: float, per_session: float
) -> Block:
    """Every event of `users` before `end_us`, with each event's user row and place."""
    front = sessions(rng, users, per_user, per_session)
    parts = [front, *server_events(rng, users, front, end_us), *impossible_trips(rng, users, front)]
    front.pop("first")
    rows = {k: np.concatenate([p[k] for p in parts]) for k in front}
    travel_once(rng, users, rows)
    keep = rows["t"] < end_us
    return {k: v[keep] for k, v in rows.items()}


def third_country(users: Block) -> np.ndarray:
    """A country that is neither the user's nor the user's other one."""
    n = len(COUNTRIES)
    third = (users["alt_country"] + 1) % n
    return np.where(third == users["country"], (third + 1) % n, third).astype(np.int8)
