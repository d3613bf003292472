"""The fraud patterns of the contract's table, one function per pattern, each adding its plain
and its evasive variant to a Day's user and click blocks (labelled with pattern and variant)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from anchorflow.dev.synth.marketing_traffic import (
    DAY,
    HOUR,
    SECOND,
    Day,
    clicks_like,
    label,
    registered_at,
    users_like,
)  # fmt: skip
from anchorflow.dev.synth.marketing_world import (
    BOT_AGENTS,
    DAY_CURVE,
    UA_VARIANTS,
    combos,
    range_ips,
    residential_ips,
    subs,
)  # fmt: skip

PLAIN, EVASIVE = 0, 1


def _grouped(day: Day, groups: int, low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    """Group sizes drawn in [low, high] and each member's group."""
    sizes = day.rng.integers(low, high + 1, groups)
    return sizes, np.repeat(np.arange(groups), sizes)


def multi_registration_ip(day: Day) -> None:
    """8–15 sign-ups from one IP in one sub-campaign within 2 h with 1–2 user agents / 4–5
    spread over the day with 2 user agents."""
    rng = day.rng
    for variant, (groups, low, high, agents) in enumerate([(2, 8, 15, 2), (3, 4, 5, 2)]):
        sizes, member = _grouped(day, day.groups(groups), low, high)
        users = users_like(day, len(member), day.genuine_subs(len(sizes))[member])
        if variant == PLAIN:
            agents_of = rng.integers(1, agents + 1, len(sizes))[member]
            start = np.minimum(day.times(len(sizes)), day.start_us + DAY - 2 * HOUR)
            reg = start[member] + rng.integers(0, 2 * HOUR, len(member))
        else:
            agents_of = np.full(len(member), agents)
            reg = day.times(len(member))
        registered_at(users, reg)
        pick = (member * 2 + rng.integers(0, 2, len(member)) % agents_of).astype(np.int64)
        pool = rng.choice(len(combos().platform), 2 * len(sizes), p=combos().weight)
        users["combo"] = pool[pick].astype(np.int16)
        users["ua"] = users["click_ua"] = users["combo"].astype(np.int32) * UA_VARIANTS
        users["ip"] = users["click_ip"] = residential_ips(rng, len(sizes))[member]
        day.users.append(label(users, "multi_registration_ip", variant))


def ip_velocity(day: Day) -> None:
    """One IP clicks 150–300 times a day and never signs up / 40–60 times."""
    for variant, (groups, low, high) in enumerate([(2, 150, 300), (5, 40, 60)]):
        sizes, member = _grouped(day, day.groups(groups), low, high)
        clicks = clicks_like(day, day.genuine_subs(len(member)))
        clicks["ip"] = residential_ips(day.rng, len(sizes))[member]
        day.clicks.append(label(clicks, "ip_velocity", variant))


def device_velocity(day: Day) -> None:
    """One device signs up 8–12 users in a few hours / 3 users over 2 days."""
    rng = day.rng
    for variant, (groups, low, high, span) in enumerate(
        [(2, 8, 12, 6 * HOUR), (3, 3, 3, 40 * HOUR)]
    ):
        sizes, member = _grouped(day, day.groups(groups), low, high)
        users = users_like(day, len(member), day.genuine_subs(len(sizes))[member])
        start = day.times(len(sizes))
        if variant == PLAIN:  # the whole group inside the day
            start = np.minimum(start, day.start_us + DAY - span)
        registered_at(users, start[member] + rng.integers(0, span, len(member)))
        first = np.concatenate([[0], np.cumsum(sizes)[:-1]])[member]
        for column in ("dev", "combo", "ua"):
            users[column] = users[column][first]
        users["click_dev"], users["click_ua"] = users["dev"].copy(), users["ua"].copy()
        day.users.append(label(users, "device_velocity", variant))


def duplicate_clicks(day: Day) -> None:
    """The same ip+device+sub-campaign clicks again within 10 s, 5–20 times / twice 3–8 s apart."""
    rng = day.rng
    for variant, (groups, low, high, gap) in enumerate([(6, 5, 20, (1, 9)), (20, 2, 2, (3, 8))]):
        sizes, member = _grouped(day, day.groups(groups), low, high)
        first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        clicks = clicks_like(day, day.genuine_subs(len(sizes))[member])
        gaps = rng.integers(gap[0] * SECOND, gap[1] * SECOND, len(member))
        gaps[first] = 0
        steps = np.cumsum(gaps)
        clicks["t"] = day.times(len(sizes))[member] + steps - steps[first][member]
        for column in ("ip", "dev", "ua", "country", "combo"):
            clicks[column] = clicks[column][first][member]
        day.clicks.append(label(clicks, "duplicate_clicks", variant))


def click_injection(day: Day) -> None:
    """Sign-ups 1–5 s after their click / 6–9 s."""
    for variant, (low, high) in enumerate([(1, 5), (6, 9)]):
        n = day.groups(day.spec.fraud_users)
        users = users_like(day, n, day.genuine_subs(n))
        users["reg"] = users["click_t"] + day.rng.integers(low * SECOND, high * SECOND, n)
        day.users.append(label(users, "click_injection", variant))


def click_flooding(day: Day) -> None:
    """A publisher's ~400 clicks a day spread flat over 24 h, a few of them claimed by sign-ups
    hours later / a weak day curve (18% of clicks at night), sign-ups 0.5–8 h later."""
    rng = day.rng
    n = max(320, round(400 * day.scale * day.spec.fraud_scale))
    night = round(0.18 * n)
    flat = day.start_us + rng.integers(0, DAY, n)
    weak = np.concatenate(
        [day.start_us + rng.integers(0, 6 * HOUR, night),
         day.times(n - night, np.concatenate([np.zeros(6), DAY_CURVE[6:]]))]
    )  # fmt: skip
    for variant, (times, delay) in enumerate([(flat, (1, 20)), (weak, (0.5, 8))]):
        sub = subs().fraud[("click_flooding", variant)]
        clicks = clicks_like(day, np.full(n, sub), times)
        claimed = rng.random(n) < 0.04
        users = users_like(day, int(claimed.sum()), sub, times[claimed])
        wait = rng.integers(int(delay[0] * HOUR), int(delay[1] * HOUR), len(users["reg"]))
        users["reg"] = users["click_t"] + wait
        for column in ("ip", "dev", "ua"):
            users[f"click_{column}"] = clicks[column][claimed]
        keep = {k: v[~claimed] for k, v in clicks.items()}
        day.users.append(label(users, "click_flooding", variant))
        day.clicks.append(label(keep, "click_flooding", variant))


def datacenter_ip(day: Day) -> None:
    """Click and sign-up from a hosting range / a residential click, a hosting sign-up."""
    for variant in (PLAIN, EVASIVE):
        n = day.groups(day.spec.fraud_users)
        users = users_like(day, n, day.genuine_subs(n))
        users["ip"] = range_ips(day.rng, "hosting", n)
        if variant == PLAIN:
            users["click_ip"] = users["ip"].copy()
        day.users.append(label(users, "datacenter_ip", variant))


def bot_user_agent(day: Day) -> None:
    """Scripts' user agents (python-requests, curl, Go) / a headless Chrome."""
    desktop = combos().model.index("Linux PC")
    first_bot = len(combos().agents) - len(BOT_AGENTS)
    for variant in (PLAIN, EVASIVE):
        n = day.groups(day.spec.fraud_users)
        users = users_like(day, n, day.genuine_subs(n))
        users["combo"][:] = desktop
        agent = day.rng.integers(0, 3, n) if variant == PLAIN else np.full(n, 3)
        users["ua"] = users["click_ua"] = (first_bot + agent).astype(np.int32)
        day.users.append(label(users, "bot_user_agent", variant))


def impossible_travel(day: Day) -> None:
    """Events from 3 countries within 30 min / 2 countries 40 min apart (see marketing_events)."""
    for variant in (PLAIN, EVASIVE):
        n = day.groups(day.spec.fraud_users)
        users = users_like(day, n, day.genuine_subs(n))
        users["activity"][:] = 1
        users["travel"][:] = 2 + variant
        day.users.append(label(users, "impossible_travel", variant))


def _publisher(
    day: Day, pattern: str, variant: int, registrations: int, clicks: int
) -> dict[str, np.ndarray]:
    """A fraudulent sub-campaign's sign-ups and its other clicks (all labelled as the pattern)."""
    sub = subs().fraud[(pattern, variant)]
    users = users_like(day, registrations, sub)
    other = clicks_like(day, np.full(max(clicks - registrations, 0), sub))
    day.clicks.append(label(other, pattern, variant))
    day.users.append(label(users, pattern, variant))
    return users


def device_farm(day: Day) -> None:
    """A publisher's ≥ 25 sign-ups a day all on one device model + OS version / on two."""
    n = max(26, round(26 * day.scale * day.spec.fraud_scale))
    for variant in (PLAIN, EVASIVE):
        rate = subs().rate[subs().fraud[("device_farm", variant)]]
        users = _publisher(day, "device_farm", variant, n, round(n / rate))
        pool = day.rng.choice(np.flatnonzero(combos().platform == 2), 2, replace=False)
        users["combo"] = pool[day.rng.integers(0, variant + 1, n)].astype(np.int16)
        agent = users["combo"].astype(np.int32) * UA_VARIANTS
        users["ua"] = users["click_ua"] = agent + day.rng.integers(0, UA_VARIANTS, n)


def no_activity(day: Day) -> None:
    """A publisher whose sign-ups never come back: 100% / 70%."""
    n = max(24, round(24 * day.scale * day.spec.fraud_scale))
    for variant, active in enumerate([0.0, 0.3]):
        rate = subs().rate[subs().fraud[("no_activity", variant)]]
        users = _publisher(day, "no_activity", variant, n, round(n / rate))
        users["activity"] = (day.rng.random(n) < active).astype(np.int8)


def api_only(day: Day) -> None:
    """5–30 server-API events and no front-end event / 3 server events (see marketing_events)."""
    for variant in (PLAIN, EVASIVE):
        n = day.groups(day.spec.fraud_users)
        users = users_like(day, n, day.genuine_subs(n))
        users["activity"][:] = 2 + variant
        day.users.append(label(users, "api_only", variant))


def conversion_anomaly(day: Day) -> None:
    """A publisher converting 3.5× its campaign's rate / 2.2×."""
    n = max(50, round(50 * day.scale * day.spec.fraud_scale))
    for variant, factor in enumerate([3.5, 2.2]):
        sub = subs().fraud[("conversion_anomaly", variant)]
        rate = subs().rate[sub]
        _publisher(day, "conversion_anomaly", variant, round(factor * rate * n), n)


PATTERN_WRITERS: tuple[Callable[[Day], None], ...] = (
    multi_registration_ip, ip_velocity, device_velocity, duplicate_clicks, click_injection,
    click_flooding, datacenter_ip, bot_user_agent, impossible_travel, device_farm, no_activity,
    api_only, conversion_anomaly,
)  # fmt: skip
