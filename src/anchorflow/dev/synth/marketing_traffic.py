"""The users and clicks of one UTC day of synthetic marketing traffic: genuine users (with the hard
negatives among them) and every fraud pattern of the contract, plain and evasive, as numpy columns.

A user block is a dict of equal-length arrays (USER_COLUMNS); a click block likewise (CLICK
COLUMNS). Group sizes of a pattern (8–15 registrations on one IP, 150–300 clicks of one IP) are
fixed by the contract; only the number of groups scales with `clicks_per_day`, so a small spec
still shows every pattern at the size a rule looks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from anchorflow.dev.synth.marketing_world import (
    COUNTRIES,
    COUNTRY_WEIGHTS,
    DAY_CURVE,
    NEGATIVES,
    PATTERNS,
    UA_VARIANTS,
    combos,
    range_ips,
    residential_ips,
    subs,
)  # fmt: skip

if TYPE_CHECKING:
    from anchorflow.dev.synth.marketing import MarketingSpec

Block = dict[str, np.ndarray]
HOUR = 3_600_000_000
MINUTE = 60_000_000
SECOND = 1_000_000
DAY = 24 * HOUR
# activity: 0 never comes back, 1 front-end sessions then server events, 2/3 api_only plain/evasive
# travel: 0 stays, 1 traveler (one switch, ≥ 6 h gap), 2/3 impossible_travel plain/evasive


@dataclass
class Day:
    """One day's generator: its random stream, its start and a counter of fresh device ids."""

    spec: MarketingSpec
    index: int
    start_us: int
    rng: np.random.Generator
    next_device: int = 0
    users: list[Block] = field(default_factory=list)
    clicks: list[Block] = field(default_factory=list)

    @property
    def scale(self) -> float:
        return self.spec.clicks_per_day / 20_000

    def groups(self, base: float) -> int:
        """How many groups (IPs, devices, users) of a pattern today, at least one."""
        return max(1, round(base * self.scale * self.spec.fraud_scale))

    def devices(self, n: int) -> np.ndarray:
        first = self.index * 1_000_000_000 + self.next_device
        self.next_device += n
        return np.arange(first, first + n, dtype=np.int64)

    def times(self, n: int, curve: np.ndarray = DAY_CURVE) -> np.ndarray:
        """n instants of the day following an hourly curve (the genuine one by default)."""
        hour = self.rng.choice(24, n, p=curve / curve.sum())
        return self.start_us + hour * HOUR + self.rng.integers(0, HOUR, n)

    def genuine_subs(self, n: int) -> np.ndarray:
        return self.rng.choice(np.flatnonzero(subs().weight > 0), n).astype(np.int16)


def users_like(day: Day, n: int, sub: np.ndarray | int, click_t: np.ndarray | None = None) -> Block:
    """n users who look genuine: a click on the day curve, a lognormal delay (median ~3 min,
    at least 30 s), a residential IP, their own device, a popular device and user agent."""
    rng = day.rng
    c = combos()
    combo = rng.choice(len(c.platform), n, p=c.weight).astype(np.int16)
    ua = combo.astype(np.int32) * UA_VARIANTS + rng.integers(0, UA_VARIANTS, n).astype(np.int32)
    clicked = day.times(n) if click_t is None else click_t
    delay = ((30 + rng.lognormal(np.log(150), 0.9, n)) * SECOND).astype(np.int64)
    ip = residential_ips(rng, n)
    device = day.devices(n)
    country = rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS / COUNTRY_WEIGHTS.sum())
    return {
        "reg": clicked + delay,
        "has_click": np.ones(n, dtype=bool),
        "extra_click": np.zeros(n, dtype=bool),
        "click_t": clicked,
        "click_ip": ip,
        "click_dev": device,
        "click_ua": ua,
        "sub": np.broadcast_to(np.asarray(sub, dtype=np.int16), (n,)).copy(),
        "ip": ip.copy(),
        "alt_ip": residential_ips(rng, n),
        "ua": ua.copy(),
        "dev": device.copy(),
        "combo": combo,
        "country": country.astype(np.int8),
        "alt_country": ((country + rng.integers(1, len(COUNTRIES), n)) % len(COUNTRIES)).astype(
            np.int8
        ),
        "pattern": np.full(n, -1, dtype=np.int8),
        "variant": np.full(n, -1, dtype=np.int8),
        "negative": np.full(n, -1, dtype=np.int8),
        "activity": (rng.random(n) < 0.75).astype(np.int8),
        "travel": np.zeros(n, dtype=np.int8),
    }


def clicks_like(day: Day, sub: np.ndarray, t: np.ndarray | None = None) -> Block:
    """Clicks that lead nowhere: fresh devices, residential IPs, genuine user agents."""
    n = len(sub)
    c = combos()
    combo = day.rng.choice(len(c.platform), n, p=c.weight).astype(np.int16)
    country = day.rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS / COUNTRY_WEIGHTS.sum())
    return {
        "t": day.times(n) if t is None else t,
        "ip": residential_ips(day.rng, n),
        "dev": day.devices(n),
        "ua": combo.astype(np.int32) * UA_VARIANTS + day.rng.integers(0, UA_VARIANTS, n),
        "sub": sub.astype(np.int16),
        "country": country.astype(np.int8),
        "combo": combo,
        "user": np.full(n, -1, dtype=np.int64),
        "pattern": np.full(n, -1, dtype=np.int8),
        "variant": np.full(n, -1, dtype=np.int8),
    }


def label(block: Block, pattern: str, variant: int) -> Block:
    block["pattern"][:] = PATTERNS.index(pattern)
    block["variant"][:] = variant
    return block


def registered_at(users: Block, reg: np.ndarray) -> Block:
    """Move registrations to `reg`, keeping each one's click-to-registration delay."""
    users["click_t"] = reg - (users["reg"] - users["click_t"])
    users["reg"] = reg
    return users


def genuine_day(day: Day) -> None:
    """The day's genuine clicks and users per genuine sub-campaign, organic sign-ups and the hard
    negatives; about 20% of clicks convert, 10% of converters clicked once before."""
    s = subs()
    rng = day.rng
    index = np.flatnonzero(s.weight > 0)
    n_clicks = np.round(day.spec.clicks_per_day * s.weight[index]).astype(np.int64)
    conv = rng.binomial(n_clicks, s.rate[index])
    users = users_like(day, int(conv.sum()), np.repeat(index, conv))
    users["extra_click"] = rng.random(len(users["reg"])) < 0.1
    extra = np.bincount(users["sub"][users["extra_click"]], minlength=len(s.weight))[index]
    clicks = clicks_like(day, np.repeat(index, np.maximum(n_clicks - conv - extra, 0)))
    organic = users_like(day, round(0.08 * conv.sum()), -1)
    organic["has_click"][:] = False
    hard_negatives(day, users, clicks)
    share_devices(day, users)
    day.users += [users, organic]
    day.clicks.append(clicks)


def hard_negatives(day: Day, users: Block, clicks: Block) -> None:
    """Carrier-grade NAT IPs shared by 20–50 users (and their other clicks), VPN users, fast
    users and travellers: genuine, disjoint, and each labelled in `negative`."""
    rng, spec, n = day.rng, day.spec, len(users["reg"])
    order = rng.permutation(n)
    cgnat_ips = residential_ips(np.random.default_rng([spec.seed, 7]), day.groups(4))
    inside = order[users["reg"][order] < day.start_us + DAY]  # so a sub's day count holds
    chosen, ip = _cgnat_members(users["sub"][inside], rng.integers(20, 51, len(cgnat_ips)))
    chosen_rows = inside[chosen]
    order = order[~np.isin(order, chosen_rows)]
    users["ip"][chosen_rows] = users["click_ip"][chosen_rows] = cgnat_ips[ip]
    users["negative"][chosen_rows] = NEGATIVES.index("cgnat")
    others = rng.choice(len(clicks["t"]), min(4 * len(ip), len(clicks["t"])), replace=False)
    clicks["ip"][others] = np.resize(cgnat_ips[ip], len(others))
    counts = [round(share * n) for share in (spec.vpn_share, spec.fast_share, spec.traveler_share)]
    vpn, fast, traveler = np.split(order[: sum(counts)], np.cumsum(counts)[:2])
    pool = range_ips(np.random.default_rng([spec.seed, 8]), "vpn", 40)
    users["ip"][vpn] = users["click_ip"][vpn] = pool[rng.integers(0, len(pool), len(vpn))]
    users["negative"][vpn] = NEGATIVES.index("vpn")
    users["reg"][fast] = users["click_t"][fast] + rng.integers(12 * SECOND, 40 * SECOND, len(fast))
    users["negative"][fast] = NEGATIVES.index("fast")
    users["travel"][traveler] = 1
    users["activity"][traveler] = 1
    users["negative"][traveler] = NEGATIVES.index("traveler")


def _cgnat_members(sub: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which candidates (positions in `sub`) share each carrier IP, and the IP of each: at most
    3 of one sub-campaign on one IP a day, `sizes[j]` users on IP j (fewer if short)."""
    by_sub = np.argsort(sub, kind="stable")
    starts = np.searchsorted(sub[by_sub], sub[by_sub])
    rank = np.empty(len(sub), dtype=np.int64)
    rank[by_sub] = np.arange(len(sub)) - starts
    members = [np.flatnonzero(rank // 3 == j)[:size] for j, size in enumerate(sizes)]
    return np.concatenate(members), np.repeat(np.arange(len(sizes)), [len(m) for m in members])


def share_devices(day: Day, users: Block) -> None:
    """About 1% of genuine users sign up on a device another user signed up on (a family tablet)."""
    plain = np.flatnonzero(users["negative"] < 0)
    pairs = day.rng.choice(plain, 2 * (len(plain) // 200), replace=False).reshape(2, -1)
    for column in ("dev", "click_dev", "combo", "ua", "click_ua"):
        users[column][pairs[1]] = users[column][pairs[0]]
