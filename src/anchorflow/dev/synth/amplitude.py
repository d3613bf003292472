"""Deterministic Amplitude export events for one hour.

The same (seed, hour) always gives the same events, so the emulator can serve any hour on demand
and tests can compare against known data. Randomness comes from numpy's PCG64 seeded by
(seed, hour); the JSON lines are written by DuckDB from Arrow columns, so generating a million
events takes seconds, not minutes.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa

EVENT_TYPES = np.array(
    [
        "session_start", "page_view", "screen_view", "search", "add_to_cart", "checkout_started",
        "purchase", "sign_up", "login", "bet_placed", "deposit", "session_end",
    ]
)  # fmt: skip
EVENT_WEIGHTS = np.array([8, 30, 20, 8, 6, 3, 2, 1, 5, 9, 2, 6], dtype=float)
PLATFORMS = np.array(["Web", "iOS", "Android"])
OS_BY_PLATFORM = {"Web": ("Windows", "10"), "iOS": ("ios", "17.4"), "Android": ("android", "14")}
COUNTRIES = np.array(["Russia", "Germany", "United States", "Brazil", "India", "Kazakhstan"])
CITIES = np.array(["Moscow", "Berlin", "New York", "São Paulo", "Mumbai", "Almaty"])
REGIONS = np.array(["Moscow", "Berlin", "New York", "São Paulo", "Maharashtra", "Almaty"])
# Two device models per platform, in the order of PLATFORMS.
DEVICES = np.array(["Chrome", "Firefox", "iPhone 15", "iPad Air", "Pixel 8", "Galaxy S24"])
CAMPAIGNS = np.array(
    ["spring_promo", "brand", "retargeting", "affiliate_x", "organic", "cup_final"]
)
SOURCES = np.array(["google", "facebook", "tiktok", "email", "direct", "partner"])
LIBRARIES = {"Web": "amplitude-js/8.21.9", "iOS": "amplitude-ios/8.17.1",
             "Android": "amplitude-android/2.39.8"}  # fmt: skip


@dataclass(frozen=True)
class SynthSpec:
    """What to generate: the seed, the volume and the shape of the traffic."""

    seed: int = 42
    project_id: int = 187520
    events_per_hour: int = 15_000
    users: int = 60_000
    late_fraction: float = 0.05  # events whose client time is hours before the upload hour
    new_field_from: datetime | None = None  # from this hour on, events carry `experiment_arm`
    extra: dict[str, str] = field(default_factory=dict)


def hour_event_count(spec: SynthSpec, hour: datetime) -> int:
    """Events in `hour`: a daily curve around `events_per_hour`, stable for a given hour."""
    phase = (hour.hour - 4) / 24 * 2 * math.pi
    return max(1, int(spec.events_per_hour * (1 - 0.45 * math.cos(phase))))


def _rng(spec: SynthSpec, hour: datetime, salt: int = 0) -> np.random.Generator:
    hour_index = int(hour.replace(tzinfo=UTC).timestamp() // 3600)
    return np.random.Generator(np.random.PCG64([spec.seed, hour_index, salt]))


def hour_events(spec: SynthSpec, hour: datetime) -> pa.Table:
    """The events uploaded during `hour` (UTC, naive), as flat Arrow columns."""
    n = hour_event_count(spec, hour)
    rng = _rng(spec, hour)
    users = np.random.Generator(np.random.PCG64([spec.seed, 0, 1]))
    user_platform = users.integers(0, len(PLATFORMS), spec.users)
    user_geo = users.integers(0, len(COUNTRIES), spec.users)
    user_campaign = users.integers(0, len(CAMPAIGNS), spec.users)
    user_device = users.integers(0, len(DEVICES), spec.users)
    user_signed_up = users.random(spec.users) < 0.7

    # A few heavy users and a long tail, as in real product traffic.
    user = np.minimum((rng.pareto(1.2, n) * spec.users / 20).astype(np.int64), spec.users - 1)
    upload_us = np.sort(rng.integers(0, 3_600_000_000, n))
    late = rng.random(n) < spec.late_fraction
    delay_us = np.where(late, rng.integers(3_600_000_000, 30 * 3_600_000_000, n),
                        rng.integers(50_000, 5_000_000, n))  # fmt: skip
    base_us = int(hour.replace(tzinfo=UTC).timestamp() * 1_000_000)
    upload = base_us + upload_us
    event_time = upload - delay_us
    platform = PLATFORMS[user_platform[user]]
    etype = EVENT_TYPES[rng.choice(len(EVENT_TYPES), n, p=EVENT_WEIGHTS / EVENT_WEIGHTS.sum())]
    ids = rng.integers(0, 2**63 - 1, (n, 4), dtype=np.int64)
    new_field = spec.new_field_from is not None and hour >= spec.new_field_from
    return pa.table(
        {
            "i": np.arange(n, dtype=np.int64),
            "u1": ids[:, 0], "u2": ids[:, 1], "ins": ids[:, 2],
            "event_id": rng.integers(1, 5000, n),
            "event_type": etype,
            "event_time_us": event_time,
            "upload_us": upload,
            "user_index": user,
            "signed_up": user_signed_up[user],
            "platform": platform,
            "geo": user_geo[user],
            "campaign": CAMPAIGNS[user_campaign[user]],
            "utm_source": SOURCES[user_campaign[user]],
            "device_model": DEVICES[user_platform[user] * 2 + user_device[user] % 2],
            "session_ms": (event_time // 1_000) - (event_time // 1_000) % 1_800_000 + user % 977,
            "amount": np.round(rng.gamma(2.0, 25.0, n), 2),
            "page": rng.integers(1, 40, n),
            "ip_a": rng.integers(1, 255, n), "ip_b": rng.integers(0, 255, n),
            "paying": rng.random(n) < 0.1,
            "new_field": np.full(n, new_field),
            "arm": rng.integers(0, 3, n),
        }
    )  # fmt: skip


def _events_sql(spec: SynthSpec) -> str:
    # Column order follows Amplitude's export; every value is derived from the Arrow columns.
    os_case = " ".join(f"WHEN '{p}' THEN '{o}'" for p, (o, _) in OS_BY_PLATFORM.items())
    osv_case = " ".join(f"WHEN '{p}' THEN '{v}'" for p, (_, v) in OS_BY_PLATFORM.items())
    lib_case = " ".join(f"WHEN '{p}' THEN '{lib}'" for p, lib in LIBRARIES.items())
    countries = ", ".join(f"'{c}'" for c in COUNTRIES)
    cities = ", ".join(f"'{c}'" for c in CITIES)
    regions = ", ".join(f"'{c}'" for c in REGIONS)
    ts = "strftime(make_timestamp({}), '%Y-%m-%d %H:%M:%S.%f')"
    uuid = "lower(lpad(to_hex(u1), 16, '0') || lpad(to_hex(u2), 16, '0'))"
    props = """CASE event_type
        WHEN 'purchase' THEN json_object('amount', amount, 'currency', 'EUR',
                                         'items', [page % 5 + 1, page % 7 + 2])
        WHEN 'deposit' THEN json_object('amount', amount, 'method',
                                        CASE page % 3 WHEN 0 THEN 'card' WHEN 1 THEN 'wallet'
                                        ELSE 'bank' END)
        WHEN 'bet_placed' THEN json_object('stake', amount, 'odds', round(1 + page / 10, 2),
                                           'market', 'match_winner')
        WHEN 'search' THEN json_object('query', 'term ' || page, 'results', page * 3)
        WHEN 'page_view' THEN json_object('path', '/p/' || page, 'referrer', utm_source)
        WHEN 'screen_view' THEN json_object('screen', 'screen_' || page % 12)
        ELSE json_object('source', utm_source)
      END"""
    return f"""
    SELECT
      substr({uuid}, 1, 8) || '-' || substr({uuid}, 9, 4) || '-4' || substr({uuid}, 14, 3)
        || '-a' || substr({uuid}, 18, 3) || '-' || substr({uuid}, 21, 12) AS "uuid",
      lower(lpad(to_hex(ins), 16, '0')) || '-' || i AS "$insert_id",
      {spec.project_id} AS "app",
      event_id AS "event_id",
      event_type AS "event_type",
      {ts.format("event_time_us")} AS "event_time",
      {ts.format("event_time_us")} AS "client_event_time",
      {ts.format("upload_us")} AS "client_upload_time",
      {ts.format("upload_us + 20000")} AS "server_upload_time",
      {ts.format("upload_us + 15000")} AS "server_received_time",
      {ts.format("upload_us + 90000")} AS "processed_time",
      CASE WHEN signed_up THEN 'user_' || user_index END AS "user_id",
      lower(lpad(to_hex(hash(user_index, {spec.seed})), 16, '0')) AS "device_id",
      100000000 + user_index AS "amplitude_id",
      session_ms AS "session_id",
      props AS "event_properties",
      json_object(
        'cohort', 'c' || (user_index % 12), 'utm_source', utm_source, 'utm_campaign', campaign,
        'utm_medium', 'cpc', 'initial_referrer', 'https://' || utm_source || '.example/',
        'plan', CASE WHEN paying THEN 'pro' ELSE 'free' END, 'language', 'en',
        'favourite_sport', CASE user_index % 4 WHEN 0 THEN 'football' WHEN 1 THEN 'tennis'
                           WHEN 2 THEN 'hockey' ELSE 'basketball' END,
        'first_seen', {ts.format("event_time_us - user_index * 60000000")},
        'notifications', (user_index % 3) = 0) AS "user_properties",
      json_object() AS "groups",
      json_object() AS "group_properties",
      json_object('path', '/collect', 'user_properties_updated', true,
                  'group_first_event', json_object(), 'group_ids', json_object()) AS "data",
      '10.' || ip_a || '.' || ip_b || '.' || (user_index % 250) AS "ip_address",
      [{countries}][geo + 1] AS "country",
      [{regions}][geo + 1] AS "region",
      [{cities}][geo + 1] AS "city",
      NULL AS "dma",
      platform AS "platform",
      CASE platform {os_case} END AS "os_name",
      CASE platform {osv_case} END AS "os_version",
      CASE WHEN platform = 'iOS' THEN 'Apple' WHEN platform = 'Android' THEN 'Google' END
        AS "device_brand",
      CASE WHEN platform = 'iOS' THEN 'Apple' WHEN platform = 'Android' THEN 'Google' END
        AS "device_manufacturer",
      device_model AS "device_model",
      device_model AS "device_family",
      CASE WHEN platform = 'Web' THEN 'Desktop' ELSE 'Smartphone' END AS "device_type",
      CASE WHEN platform = 'Web' THEN NULL ELSE 'Carrier' END AS "device_carrier",
      CASE platform {lib_case} END AS "library",
      '5.' || (user_index % 9) || '.0' AS "version_name",
      '5.0.0' AS "start_version",
      paying AS "paying",
      'English' AS "language",
      NULL AS "location_lat", NULL AS "location_lng",
      NULL AS "adid", NULL AS "idfa",
      NULL AS "amplitude_event_type",
      false AS "is_attribution_event",
      NULL AS "sample_rate",
      {ts.format("event_time_us - user_index * 60000000")} AS "user_creation_time",
      12 AS "$schema",
      'event' AS "data_type"
    FROM (
      SELECT * REPLACE (
        CASE WHEN new_field
          THEN json_merge_patch(props, json_object('experiment_arm', 'arm_' || arm))
        ELSE props END AS props)
      FROM (SELECT *, {props} AS props FROM events)
    )
    ORDER BY i
    """


def render_ndjson(spec: SynthSpec, hour: datetime) -> bytes:
    """The hour's events as newline-delimited JSON, one event per line, in upload order."""
    events = hour_events(spec, hour)  # noqa: F841 - scanned by DuckDB below
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        query = f"SELECT to_json(e)::VARCHAR FROM ({_events_sql(spec)}) AS e"
        lines = con.sql(query).to_arrow_table().column(0)
    finally:
        con.close()
    return "\n".join(lines.to_pylist()).encode() + b"\n"


def export_file_name(project_id: int, hour: datetime, part: int) -> str:
    """Amplitude's name for part `part` of an hour: `<project>_<YYYY-MM-DD>_<H>#<n>.json.gz`."""
    return f"{project_id}_{hour:%Y-%m-%d}_{hour.hour}#{part}.json.gz"


def hour_files(spec: SynthSpec, hour: datetime, files_per_hour: int = 3) -> dict[str, bytes]:
    """The hour's export as Amplitude ships it: several gzip NDJSON parts, keyed by file name."""
    body = render_ndjson(spec, hour)
    lines = body.split(b"\n")[:-1]
    size = -(-len(lines) // files_per_hour)
    parts = [lines[i : i + size] for i in range(0, len(lines), size)]
    return {
        export_file_name(spec.project_id, hour, n): gzip.compress(b"\n".join(p) + b"\n", 6, mtime=0)
        for n, p in enumerate(parts)
    }


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Every hour from `start` up to but not including `end`."""
    count = int((end - start).total_seconds() // 3600)
    return [start + timedelta(hours=i) for i in range(max(0, count))]
