"""Small hand-built data sets, one per built-in rule: the pattern's plain and evasive variants
and the genuine look-alike it must not flag (FRAUD_CONTRACT.md), with the keys the rule must
flag. The window is the UTC day WINDOW_START; rows outside it test the lookback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from anchorflow.fraud.rules import data_tables

WINDOW_START = datetime(2024, 3, 2)
WINDOW_END = WINDOW_START + timedelta(days=1)
DATA = Path(__file__).parent / "data"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"

S, TS, B, F = pa.string(), pa.timestamp("us"), pa.bool_(), pa.float64()
SCHEMAS = {
    "clicks": pa.schema([("click_id", S), ("time", TS), ("ip", S), ("user_agent", S),
                         ("device_id", S), ("campaign", S), ("sub_campaign", S),
                         ("country", S), ("platform", S)]),
    "registrations": pa.schema([("user_id", S), ("time", TS), ("click_id", S), ("ip", S),
                                ("user_agent", S), ("device_id", S), ("device_model", S),
                                ("os_version", S), ("campaign", S), ("sub_campaign", S),
                                ("country", S), ("platform", S)]),
    "events": pa.schema([("event_id", S), ("user_id", S), ("time", TS), ("event_type", S),
                         ("ip", S), ("device_id", S), ("user_agent", S), ("country", S),
                         ("platform", S), ("is_server", B), ("revenue", F)]),
}  # fmt: skip


def at(hour: float, day: int = 2, seconds: float = 0) -> datetime:
    """A time on March `day` 2024, `hour` hours (fractions allowed) and `seconds` after 00:00."""
    return datetime(2024, 3, day) + timedelta(hours=hour, seconds=seconds)


@dataclass
class Case:
    """The rows of the three inputs and the flagged keys expected (tuples of the rule's flag
    columns, in the order user_id, event_id, event_kind, ip, device_id)."""

    clicks: list[dict[str, Any]] = field(default_factory=list)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    expected: set[tuple[Any, ...]] = field(default_factory=set)

    def click(self, click_id: str, time: datetime, **values: Any) -> None:
        self.clicks.append({"click_id": click_id, "time": time, "ip": "81.2.69.1",
                            "user_agent": CHROME, "device_id": f"d-{click_id}",
                            "campaign": "spring", "sub_campaign": "s0", "country": "US",
                            "platform": "web"} | values)  # fmt: skip

    def register(self, user_id: str, time: datetime, **values: Any) -> None:
        self.registrations.append({"user_id": user_id, "time": time, "click_id": None,
                                   "ip": "81.2.69.1", "user_agent": CHROME,
                                   "device_id": f"d-{user_id}", "device_model": "Pixel 7",
                                   "os_version": "14", "campaign": "spring",
                                   "sub_campaign": "s0", "country": "US",
                                   "platform": "android"} | values)  # fmt: skip

    def event(self, event_id: str, user_id: str, time: datetime, **values: Any) -> None:
        self.events.append({"event_id": event_id, "user_id": user_id, "time": time,
                            "event_type": "open", "ip": "81.2.69.1", "device_id": f"d-{user_id}",
                            "user_agent": CHROME, "country": "US", "platform": "web",
                            "is_server": False, "revenue": None} | values)  # fmt: skip

    def tables(self) -> dict[str, pa.Table]:
        rows = {"clicks": self.clicks, "registrations": self.registrations, "events": self.events}
        tables = {name: pa.Table.from_pylist(rows[name], schema=SCHEMAS[name]) for name in rows}
        return tables | data_tables(DATA)


@contextmanager
def registered(warehouse: Any, case: Case) -> Iterator[None]:
    """The case's tables readable by their bare names on a warehouse of any engine."""
    with ExitStack() as stack:
        for name, data in case.tables().items():
            stack.enter_context(warehouse.registered(name, data))
        yield


# -- one case per rule -------------------------------------------------------------------------


def multi_registration_ip() -> Case:
    case = Case()
    for i in range(10):  # plain: 10 sign-ups in 90 minutes, one user agent
        case.register(
            f"plain{i}",
            at(9, seconds=540 * i),
            ip="10.1.1.1",
            sub_campaign="s1",
            device_id=f"farm{i}",
            user_agent="Mozilla/5.0 (Linux; Android 9; SM-A105F)",
        )
        case.expected.add((f"plain{i}", "10.1.1.1"))
    for i, hour in enumerate((2, 8, 15, 22)):  # evasive: 4 over the day, 2 user agents
        case.register(
            f"evasive{i}", at(hour), ip="10.1.1.2", sub_campaign="s2", user_agent=f"agent{i % 2}"
        )
        case.expected.add((f"evasive{i}", "10.1.1.2"))
    for i in range(30):  # cgnat: 30 people on one IP across placements, each their own agent
        sub = "s3" if i < 3 else ("s4" if i < 7 else f"s{5 + i % 6}")
        case.register(
            f"cgnat{i}",
            at(1 + i * 0.7),
            ip="100.64.0.1",
            sub_campaign=sub,
            campaign="spring" if i % 2 else "summer",
            user_agent=f"{CHROME} {i}",
        )
    for i in range(10):  # a farm of the day before: not this window's
        case.register(f"before{i}", at(9, day=1, seconds=60 * i), ip="10.1.1.3")
    for i in range(4):  # a burst across midnight: two sign-ups on each side
        case.register(f"midnight{i}", at(0, seconds=(i - 2) * 900), ip="10.1.1.4")
        case.expected.add((f"midnight{i}", "10.1.1.4"))
    return case


def ip_velocity() -> Case:
    case = Case()
    for i in range(200):  # plain: 200 clicks a day, no sign-up
        case.click(f"plain{i}", at(i * 0.1), ip="198.51.100.1")
        case.expected.add((f"plain{i}", "click", "198.51.100.1"))
    for i in range(45):  # evasive: 45 clicks a day, no sign-up
        case.click(f"evasive{i}", at(i * 0.5), ip="198.51.100.2")
        case.expected.add((f"evasive{i}", "click", "198.51.100.2"))
    for i in range(80):  # cgnat: many clicks, and its people sign up
        case.click(f"cgnat{i}", at(i * 0.25), ip="100.64.0.9")
    for i in range(4):
        case.register(
            f"cgnat_user{i}", at(i * 5, seconds=200), click_id=f"cgnat{i * 20}", ip="100.64.0.9"
        )
    for i in range(40):  # cgnat whose sign-ups come from another IP: their clicks count
        case.click(f"nat{i}", at(i * 0.5), ip="100.64.0.10")
    case.register("nat_user", at(3, seconds=300), click_id="nat5", ip="81.2.69.7")
    for i in range(5):  # an ordinary IP
        case.click(f"home{i}", at(i), ip="81.2.69.3")
    for i in range(100):  # busy the day before: not this window's
        case.click(f"before{i}", at(i * 0.2, day=1), ip="198.51.100.3")
    return case


def device_velocity() -> Case:
    case = Case()
    for i in range(10):  # plain: one device, 10 users
        case.register(f"plain{i}", at(10 + i * 0.1), device_id="dev-plain")
        case.expected.add((f"plain{i}", "dev-plain"))
    case.register("evasive0", at(10, day=1), device_id="dev-evasive")  # evasive: 3 over 2 days
    case.register("evasive1", at(9), device_id="dev-evasive")
    case.register("evasive2", at(18), device_id="dev-evasive")
    case.expected |= {(f"evasive{i}", "dev-evasive") for i in range(3)}
    case.register("alone", at(11), device_id="dev-alone")  # genuine: one device, one or two
    case.register("shared0", at(11), device_id="dev-shared")
    case.register("shared1", at(20), device_id="dev-shared")
    for i in range(3):  # three users long before the lookback, one now: two in the span
        case.register(f"old{i}", datetime(2024, 2, 25, 10 + i), device_id="o")
    case.register("old_now", at(12), device_id="o")
    return case


def duplicate_clicks() -> Case:
    case = Case()
    ip, dev = "81.2.69.50", "dev-dup"
    for i in range(8):  # plain: 8 clicks 2 s apart
        case.click(f"plain{i}", at(10, seconds=2 * i), ip=ip, device_id=dev)
        case.expected.add((f"plain{i}", "click", ip, dev))
    for i, second in enumerate((0, 5)):  # evasive: twice, 5 s apart
        case.click(f"evasive{i}", at(14, seconds=second), ip=ip, device_id=dev)
        case.expected.add((f"evasive{i}", "click", ip, dev))
    for i in range(4):  # genuine: the same device minutes apart
        case.click(f"genuine{i}", at(16, seconds=300 * i), ip=ip, device_id=dev)
    for i in range(4):  # cgnat: other devices on one IP within a second
        case.click(f"cgnat{i}", at(12, seconds=i * 0.3), ip="100.64.0.1", device_id=f"c{i}")
    case.click("midnight0", at(0, seconds=-2), ip=ip, device_id=dev)  # a pair across midnight
    case.click("midnight1", at(0, seconds=3), ip=ip, device_id=dev)
    case.expected |= {(f"midnight{i}", "click", ip, dev) for i in range(2)}
    case.click("yesterday0", at(23, day=1, seconds=10), ip=ip, device_id=dev)  # the day before
    case.click("yesterday1", at(23, day=1, seconds=12), ip=ip, device_id=dev)
    return case


def click_injection() -> Case:
    case = Case()
    for name, gap in (("plain", 3), ("evasive", 8), ("fast", 15), ("fast2", 40), ("slow", 180)):
        case.click(f"c-{name}", at(10))
        case.register(name, at(10, seconds=gap), click_id=f"c-{name}")
    case.click("c-midnight", at(0, seconds=-2))  # the click before the window
    case.register("midnight", at(0, seconds=2), click_id="c-midnight")
    case.register("organic", at(11))
    case.expected = {("plain",), ("evasive",), ("midnight",)}
    return case


def click_flooding() -> Case:
    case = Case()
    placements = {"flood": (300, 0.25), "weak": (200, 0.15), "good": (300, 0.06)}
    for sub, (clicks, night_share) in placements.items():
        night = round(clicks * night_share)
        for i in range(clicks):  # night clicks spread over 00-06, the rest over 06-24
            hour = 6 * i / night if i < night else 6 + 18 * (i - night) / (clicks - night)
            case.click(f"{sub}{i}", at(hour), sub_campaign=sub)
        for i in range(3):
            case.register(f"{sub}_user{i}", at(12 + i), sub_campaign=sub, click_id=f"{sub}{i}")
    for i in range(20):  # a small placement clicked at night only: too few clicks to judge
        case.click(f"tiny{i}", at(1 + i * 0.1), sub_campaign="tiny")
    case.register("tiny_user", at(3), sub_campaign="tiny")
    case.expected = {(f"{sub}_user{i}",) for sub in ("flood", "weak") for i in range(3)}
    return case


def datacenter_ip() -> Case:
    case = Case()
    case.register("plain", at(10), ip="52.1.2.3")  # plain: signs up from AWS
    case.click("c-evasive", at(9), ip="81.2.69.8")  # evasive: clicks from home, signs up in GCP
    case.register("evasive", at(9.5), ip="34.64.10.20", click_id="c-evasive")
    case.register("edge", at(11), ip="52.79.255.255")  # the range's last address
    case.register("vpn", at(12), ip="185.159.157.3")  # a VPN user: category vpn, ignored
    case.register("home", at(13), ip="52.80.0.0")  # just past the range
    case.register("garbled", at(14), ip="a.b.c.d")
    case.register("too_long", at(14), ip="52.1.2.3.4")
    case.register("too_big", at(14), ip="999.52.1.2")
    case.register("missing", at(15), ip=None)
    case.register("yesterday", at(10, day=1), ip="52.1.2.3")
    case.expected = {("plain", "52.1.2.3"), ("evasive", "34.64.10.20"), ("edge", "52.79.255.255")}
    return case


def bot_user_agent() -> Case:
    case = Case()
    bots = {"requests": "python-requests/2.31.0", "curl": "curl/8.4.0",
            "go": "Go-http-client/1.1"}  # fmt: skip
    for user, agent in bots.items():  # plain: script clients sign up
        case.register(user, at(10), user_agent=agent)
    headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari"
    case.register("headless", at(10))  # evasive: a browser-looking sign-up, headless events
    case.event("h1", "headless", at(11), user_agent=headless)
    case.event("h2", "headless", at(12), user_agent=headless)
    genuine = {
        "chrome": CHROME,
        "app": "ShopApp/3.2 CFNetwork/1410 Darwin/22.6.0",
        "cubot": "Mozilla/5.0 (Linux; Android 10; CUBOT X30) Chrome/119.0 Mobile",
    }
    for user, agent in genuine.items():
        case.register(user, at(10), user_agent=agent)
        case.event(f"e-{user}", user, at(11), user_agent=agent)
    case.register("yesterday", at(10, day=1), user_agent="curl/8.4.0")
    case.expected = {(u,) for u in [*bots, "headless"]}
    return case


def impossible_travel() -> Case:
    case = Case()
    for i, (minute, country) in enumerate(((0, "US"), (10, "DE"), (25, "BR"))):  # plain
        case.event(f"p{i}", "plain", at(10 + minute / 60), country=country)
    case.event("e0", "evasive", at(10), country="FR")  # evasive: 2 countries 40 min apart
    case.event("e1", "evasive", at(10 + 40 / 60), country="ES")
    case.event("t0", "traveler", at(8), country="US")  # traveler: once, 7 h apart
    case.event("t1", "traveler", at(15), country="GB")
    for i in range(5):  # a VPN user stays in one country
        case.event(f"v{i}", "vpn", at(9 + i * 0.2), country="NL", ip="185.159.157.3")
    case.event("s0", "server", at(10), country="US")  # a server event from the server's country
    case.event("s1", "server", at(10 + 5 / 60), country="IE", is_server=True)
    case.event("s2", "server", at(11), country="US")
    case.event("m0", "midnight", at(0, seconds=-600), country="US")  # across midnight
    case.event("m1", "midnight", at(0, seconds=600), country="MX")
    case.expected = {("plain",), ("evasive",), ("midnight",)}
    return case


def device_farm() -> Case:
    case = Case()
    for i in range(30):  # plain: 30 sign-ups, one model
        case.register(
            f"plain{i}", at(i * 0.5), sub_campaign="farm1", device_model="SM-A105F", os_version="9"
        )
        case.expected.add((f"plain{i}",))
    for i in range(30):  # evasive: two models, and two people on other phones
        model = ("SM-A105F", "Redmi 9A", "iPhone14,2", "Pixel 6")[i % 2 if i < 28 else i - 26]
        case.register(
            f"evasive{i}", at(i * 0.5), sub_campaign="farm2", device_model=model, os_version="10"
        )
        if i < 28:
            case.expected.add((f"evasive{i}",))
    for i in range(40):  # genuine: 10 models, the top one a fifth of the sign-ups
        case.register(f"good{i}", at(i * 0.5), sub_campaign="good", device_model=f"model{i % 5}"
                      if i < 20 else f"model{i % 10 + 5}", os_version="14")  # fmt: skip
    for i in range(10):  # too few to judge
        case.register(f"tiny{i}", at(i), sub_campaign="tiny", device_model="SM-A105F")
    return case


def no_activity(newest: datetime | None = None) -> Case:
    """Sign-ups judged once 24 h have passed by `newest` (the newest event; default March 4)."""
    case = Case()
    inactive = {"idle1": 20, "idle2": 14, "good": 5}  # of 20 sign-ups each
    for sub, idle in inactive.items():
        for i in range(20):
            user = f"{sub}_{i}"
            case.register(user, at(8 + i * 0.5), sub_campaign=sub)
            if (i * idle) % 20 >= idle:  # the inactive ones spread over the day
                case.event(f"{user}_open", user, at(8 + i * 0.5 + 3))
            elif sub != "good":
                case.expected.add((user,))
    case.event("clock", "someone", newest or at(0, day=4))  # the newest event in the data
    return case


def api_only() -> Case:
    case = Case()
    for i in range(10):  # plain: only server events
        case.event(f"p{i}", "plain", at(10 + i * 0.1), is_server=True)
    for i in range(3):  # evasive: three server events
        case.event(f"e{i}", "evasive", at(12 + i), is_server=True)
    case.event("g0", "genuine", at(9))  # genuine: server events follow front-end ones
    for i in range(5):
        case.event(f"g{i + 1}", "genuine", at(9 + (i + 1) / 60), is_server=True)
    case.event("w0", "weekly", datetime(2024, 2, 28, 10))  # front end 3 days ago
    for i in range(4):
        case.event(f"w{i + 1}", "weekly", at(9 + i), is_server=True)
    case.event("f0", "few", at(9), is_server=True)  # too few to judge
    case.event("f1", "few", at(10), is_server=True)
    case.expected = {("plain",), ("evasive",)}
    return case


def conversion_anomaly() -> Case:
    case = Case()
    # per campaign: four ordinary placements at 10% and one that is not
    plan = {"a": ("plain", 60), "b": ("evasive", 40), "c": ("genuine", 26)}
    for campaign, (odd, odd_regs) in plan.items():
        subs = {f"{campaign}{i}": 20 for i in range(4)} | {odd: odd_regs}
        for sub, regs in subs.items():
            for i in range(200):
                case.click(f"{sub}-c{i}", at(i * 0.1), campaign=campaign, sub_campaign=sub)
            for i in range(regs):
                user = f"{sub}-u{i}"
                case.register(
                    user,
                    at(i * 0.1, seconds=300),
                    click_id=f"{sub}-c{i}",
                    campaign=campaign,
                    sub_campaign=sub,
                )
                if sub in ("plain", "evasive"):
                    case.expected.add((user,))
    return case


CASES: dict[str, Callable[[], Case]] = {
    f.__name__: f
    for f in (multi_registration_ip, ip_velocity, device_velocity, duplicate_clicks,
              click_injection, click_flooding, datacenter_ip, bot_user_agent,
              impossible_travel, device_farm, no_activity, api_only, conversion_anomaly)
}  # fmt: skip
