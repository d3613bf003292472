"""The fixed world of the synthetic marketing traffic: campaigns and their sub-campaigns, devices,
user agents, countries, IP pools and the day curve. Nothing here depends on the seed, so two seeds
differ in traffic, never in the catalogue of names a rule might key on."""

from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

PATTERNS = (
    "multi_registration_ip", "ip_velocity", "device_velocity", "duplicate_clicks",
    "click_injection", "click_flooding", "datacenter_ip", "bot_user_agent", "impossible_travel",
    "device_farm", "no_activity", "api_only", "conversion_anomaly",
)  # fmt: skip
CLICK_ONLY = ("ip_velocity", "duplicate_clicks")  # no users: counted at event level only
SUB_PATTERNS = ("click_flooding", "device_farm", "no_activity", "conversion_anomaly")
VARIANTS = ("plain", "evasive")
NEGATIVES = ("cgnat", "vpn", "fast", "traveler")
PLATFORMS = ("web", "ios", "android")
CHANNELS = (*PLATFORMS, "server")
EVENT_TYPES = (
    "session_start", "page_view", "screen_view", "search", "add_to_cart", "purchase",
    "session_end", "payment_webhook", "subscription_renewal", "api_login", "balance_sync",
)  # fmt: skip
SERVER_TYPES = (7, 8, 9, 10)  # indexes of the server-API event types above
COUNTRIES = ("DE", "FR", "ES", "IT", "PL", "NL", "GB", "US", "BR", "MX", "IN", "TR")
COUNTRY_WEIGHTS = np.array([14, 11, 9, 9, 8, 5, 10, 12, 8, 5, 5, 4], dtype=float)
CAMPAIGNS = (
    "spring_sale", "brand_search", "app_install", "retargeting", "affiliate_net", "influencer",
)  # fmt: skip
CAMPAIGN_RATES = np.array([0.22, 0.18, 0.25, 0.16, 0.20, 0.19])  # genuine click→registration
SUBS_PER_CAMPAIGN = 8
# Clicks per hour of day (UTC) of genuine traffic: 00–06 holds 3.5% of the day.
DAY_CURVE = np.array(
    [0.9, 0.6, 0.5, 0.5, 0.6, 0.9, 2.5, 4, 5, 6, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 6.5, 7, 7.5, 7.5, 7,
     6, 4.5, 3], dtype=float)  # fmt: skip
NIGHT_SHARE = 0.035
DAY_CURVE[:6] *= NIGHT_SHARE / (1 - NIGHT_SHARE) * DAY_CURVE[6:].sum() / DAY_CURVE[:6].sum()
DAY_CURVE /= DAY_CURVE.sum()
# /8 blocks of consumer ISPs: disjoint from every range of dc_ranges.csv (a test checks it).
RESIDENTIAL_PREFIXES = np.array(
    [2, 5, 24, 31, 37, 46, 62, 73, 77, 79, 84, 86, 93, 95, 109, 176, 178, 186, 187, 188, 189, 201],
    dtype=np.int64,
)
BOT_AGENTS = (
    "python-requests/2.31.0",
    "curl/8.4.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.6099.109 Safari/537.36",
)
UA_VARIANTS = 3  # app or browser versions per device combo

_IOS_MODELS = ("iPhone12,1", "iPhone13,2", "iPhone14,5", "iPhone14,7", "iPhone15,2",
               "iPhone15,3", "iPhone15,4", "iPhone16,1", "iPhone16,2")  # fmt: skip
_IOS_VERSIONS = ("16.6.1", "17.1.2", "17.2", "17.4.1", "18.0")
_ANDROID_MODELS = (
    "SM-S911B", "SM-A546B", "SM-A146P", "Pixel 7", "Pixel 8", "2201117TY", "M2101K6G", "CPH2591",
    "RMX3085", "moto g54 5G", "SM-G991B", "V2109",
)  # fmt: skip
_ANDROID_VERSIONS = ("11", "12", "13", "14")
_WEB = (("Windows PC", "Windows 10"), ("Windows PC", "Windows 11"), ("Macintosh", "macOS 14.1"),
        ("Macintosh", "macOS 13.6"), ("iPhone", "iOS 17.1"), ("Linux PC", "Linux"))  # fmt: skip


@dataclass(frozen=True)
class Combos:
    """Device model + OS version combinations with their platform, popularity and user agents."""

    platform: np.ndarray  # int8 index into PLATFORMS
    model: tuple[str, ...]
    os_version: tuple[str, ...]
    weight: np.ndarray  # popularity, sums to 1; the top combo holds ~6%
    agents: tuple[str, ...]  # UA_VARIANTS per combo, then BOT_AGENTS


def _web_agent(model: str, os_version: str, v: int) -> str:
    chrome = f"Chrome/{119 + v}.0.0.0"
    if model == "Macintosh":
        return (f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/17.{v} Safari/605.1.15")  # fmt: skip
    if model == "iPhone":
        return (f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/17.{v} Mobile/15E148 Safari/604.1")  # fmt: skip
    system = "X11; Linux x86_64" if model == "Linux PC" else "Windows NT 10.0; Win64; x64"
    if v == 2:
        return f"Mozilla/5.0 ({system}; rv:121.0) Gecko/20100101 Firefox/121.0"
    return (f"Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) {chrome} "
            f"Safari/537.36")  # fmt: skip


@cache
def combos() -> Combos:
    rows: list[tuple[int, str, str]] = [(0, m, o) for m, o in _WEB]
    rows += [(1, m, o) for m in _IOS_MODELS for o in _IOS_VERSIONS]
    rows += [(2, m, o) for m in _ANDROID_MODELS for o in _ANDROID_VERSIONS]
    order = np.random.default_rng(20240601).permutation(len(rows))  # popularity rank
    weight = 1.0 / (order + 6.0)
    agents: list[str] = []
    for platform, model, os_version in rows:
        for v in range(UA_VARIANTS):
            if platform == 0:
                agents.append(_web_agent(model, os_version, v))
            elif platform == 1:
                agents.append(f"ShopApp/5.{12 + v}.0 ({model}; iOS {os_version}; Scale/3.00)")
            else:
                build = ("UP1A.231005.007", "TP1A.220624.014", "SKQ1.211006.001")[v]
                agents.append(
                    f"Dalvik/2.1.0 (Linux; U; Android {os_version}; {model} Build/{build})"
                )
    return Combos(
        platform=np.array([r[0] for r in rows], dtype=np.int8),
        model=tuple(r[1] for r in rows),
        os_version=tuple(r[2] for r in rows),
        weight=weight / weight.sum(),
        agents=(*agents, *BOT_AGENTS),
    )


@dataclass(frozen=True)
class Subs:
    """Every sub-campaign (publisher): genuine ones first, then one per fraud pattern × variant."""

    sub_id: tuple[str, ...]
    campaign: np.ndarray  # int16 index into CAMPAIGNS
    weight: np.ndarray  # share of a day's genuine clicks (0 for the fraudulent ones)
    rate: np.ndarray  # genuine click→registration rate
    fraud: dict[tuple[str, int], int]  # (pattern, variant) → sub index


@cache
def subs() -> Subs:
    rng = np.random.default_rng(20240602)
    genuine = len(CAMPAIGNS) * SUBS_PER_CAMPAIGN
    total = genuine + len(SUB_PATTERNS) * len(VARIANTS)
    numbers = rng.choice(np.arange(1000, 9999), total, replace=False)
    campaign = np.concatenate(
        [np.repeat(np.arange(len(CAMPAIGNS)), SUBS_PER_CAMPAIGN), np.arange(total - genuine) % 6]
    ).astype(np.int16)
    weight = np.concatenate([rng.uniform(0.6, 1.4, genuine), np.zeros(total - genuine)])
    rate = CAMPAIGN_RATES[campaign] * rng.uniform(0.9, 1.1, total)
    fraud = {
        (p, v): genuine + i * len(VARIANTS) + v
        for i, p in enumerate(SUB_PATTERNS)
        for v in range(len(VARIANTS))
    }
    return Subs(
        sub_id=tuple(f"pub_{n}" for n in numbers),
        campaign=campaign,
        weight=weight / weight.sum(),
        rate=rate,
        fraud=fraud,
    )


def ip_to_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


@cache
def dc_ranges() -> dict[str, np.ndarray]:
    """The shipped data-centre/VPN ranges as (n, 2) int64 arrays per category."""
    data = resources.files("anchorflow").joinpath("fraud/data/dc_ranges.csv").read_text()
    out: dict[str, list[tuple[int, int]]] = {"hosting": [], "vpn": []}
    for row in csv.DictReader(data.splitlines()):
        out[row["category"]].append((ip_to_int(row["start_ip"]), ip_to_int(row["end_ip"])))
    return {k: np.array(v, dtype=np.int64) for k, v in out.items()}


def residential_ips(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = RESIDENTIAL_PREFIXES[rng.integers(0, len(RESIDENTIAL_PREFIXES), n)]
    return (prefix << 24) | rng.integers(0x000101, 0xFFFFFE, n)


def range_ips(rng: np.random.Generator, category: str, n: int) -> np.ndarray:
    """IPs drawn inside the ranges of one category (`hosting` or `vpn`) of dc_ranges.csv."""
    ranges = dc_ranges()[category]
    pick = ranges[rng.integers(0, len(ranges), n)]
    ips: np.ndarray = (
        pick[:, 0] + 1 + (rng.random(n) * (pick[:, 1] - pick[:, 0] - 1)).astype(np.int64)
    )
    return ips
