"""Labelled synthetic marketing traffic for the fraud catalogue: clicks, registrations and events
as a tracker would export them (one gzip NDJSON file per stream per UTC day), and the truth (which
user and which click or event is fraud, of which pattern and variant, which genuine user is a hard
negative) in Parquet apart from them, where no rule can read it.

numpy draws the traffic (marketing_traffic, marketing_fraud, marketing_events); DuckDB turns the
Arrow columns into JSON lines, so ten million rows take seconds, not a Python loop per row. The
same spec writes byte-identical files, and a file already identical is left alone (the `files`
source would see a new version of a rewritten file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from anchorflow.dev.synth.marketing_events import AWAY, THIRD, third_country, user_events
from anchorflow.dev.synth.marketing_files import FileWriter
from anchorflow.dev.synth.marketing_fraud import PATTERN_WRITERS
from anchorflow.dev.synth.marketing_traffic import DAY, MINUTE, Block, Day, genuine_day
from anchorflow.dev.synth.marketing_world import (
    CAMPAIGNS,
    COUNTRIES,
    EVENT_TYPES,
    NEGATIVES,
    PATTERNS,
    PLATFORMS,
    SERVER_TYPES,
    VARIANTS,
    combos,
    subs,
)  # fmt: skip

STREAMS = ("clicks", "registrations", "events")


@dataclass(frozen=True)
class MarketingSpec:
    """What to generate. `fraud_users` is the number of users per variant per day of each simple
    user-level pattern at 20,000 clicks a day; the mix scales with `clicks_per_day`."""

    seed: int = 42
    start: datetime = datetime(2026, 11, 2, tzinfo=UTC)
    days: int = 7
    clicks_per_day: int = 20_000
    fraud_users: int = 7
    fraud_scale: float = 1.0  # multiplies the number of groups of every pattern
    vpn_share: float = 0.02  # of genuine converting users: hard negatives
    fast_share: float = 0.015
    traveler_share: float = 0.01
    sessions_per_user: float = 3.0  # mean front-end sessions of an active user
    events_per_session: float = 10.0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() != timedelta(0):
            raise ValueError("MarketingSpec.start must be a UTC datetime")
        if self.start != self.start.replace(hour=0, minute=0, second=0, microsecond=0):
            raise ValueError("MarketingSpec.start must be midnight (UTC days)")
        if self.days < 1 or self.clicks_per_day < 500:
            raise ValueError("MarketingSpec needs days >= 1 and clicks_per_day >= 500")

    @property
    def start_us(self) -> int:
        return int(self.start.timestamp()) * 1_000_000

    @property
    def end_us(self) -> int:
        return self.start_us + self.days * DAY


@dataclass(frozen=True)
class MarketingFiles:
    """The files of one write and the row counts (`written`: files that changed)."""

    clicks: list[Path]
    registrations: list[Path]
    events: list[Path]
    truth_users: Path
    truth_events: Path
    counts: dict[str, int] = field(default_factory=dict)
    written: int = 0


def _concat(blocks: list[Block]) -> Block:
    return {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}


def _take(block: Block, index: np.ndarray) -> Block:
    return {k: v[index] for k, v in block.items()}


def generate_users_clicks(spec: MarketingSpec) -> tuple[Block, Block]:
    """Every user (sorted by sign-up) and every click (sorted by time) of the spec, with the
    row of each user's own click in `click_row`."""
    users_parts: list[Block] = []
    clicks_parts: list[Block] = []
    for index in range(spec.days):
        rng = np.random.default_rng([spec.seed, index])
        day = Day(spec, index, spec.start_us + index * DAY, rng)
        genuine_day(day)
        for write in PATTERN_WRITERS:
            write(day)
        users_parts += day.users
        clicks_parts += day.clicks
    users = _concat(users_parts)
    ok = (users["reg"] < spec.end_us) & (~users["has_click"] | (users["click_t"] >= spec.start_us))
    users = _take(users, np.flatnonzero(ok))
    users = _take(users, np.argsort(users["reg"], kind="stable"))
    rng = np.random.default_rng([spec.seed, spec.days, 1])
    own = np.flatnonzero(users["has_click"])
    extra = np.flatnonzero(users["has_click"] & users["extra_click"])
    earlier = users["click_t"][extra] - rng.integers(2 * MINUTE, 60 * MINUTE, len(extra))
    mine = [_user_clicks(users, own, users["click_t"][own], True),
            _user_clicks(users, extra, earlier, False)]  # fmt: skip
    for part in clicks_parts:
        part["owner"] = np.full(len(part["t"]), -1, dtype=np.int64)
    clicks = _concat(clicks_parts + mine)
    inside = (clicks["t"] >= spec.start_us) & (clicks["t"] < spec.end_us)
    clicks = _take(clicks, np.flatnonzero(inside))
    clicks = _take(clicks, np.argsort(clicks["t"], kind="stable"))
    users["click_row"] = np.full(len(users["reg"]), -1, dtype=np.int64)
    owned = clicks["owner"] >= 0
    users["click_row"][clicks["owner"][owned]] = np.flatnonzero(owned)
    return users, clicks


def _user_clicks(users: Block, rows: np.ndarray, t: np.ndarray, own: bool) -> Block:
    return {
        "t": t,
        "ip": users["click_ip"][rows],
        "dev": users["click_dev"][rows],
        "ua": users["click_ua"][rows].astype(np.int64),
        "sub": users["sub"][rows],
        "country": users["country"][rows],
        "combo": users["combo"][rows],
        "user": rows.astype(np.int64),
        "pattern": users["pattern"][rows],
        "variant": users["variant"][rows],
        "owner": rows.astype(np.int64) if own else np.full(len(rows), -1, dtype=np.int64),
    }


def generate_events(spec: MarketingSpec, users: Block) -> Block:
    """Every event (sorted by time) of the spec's users."""
    rng = np.random.default_rng([spec.seed, spec.days, 2])
    rows = user_events(rng, users, spec.end_us, spec.sessions_per_user, spec.events_per_session)
    return _take(rows, np.argsort(rows["t"], kind="stable"))


def _nullable(values: np.ndarray) -> pa.Array:
    return pa.array(np.where(values < 0, 0, values), mask=values < 0)


def _dimensions(con: duckdb.DuckDBPyConnection) -> None:
    """Small lookup tables the writers join: combos, agents, sub-campaigns, names."""
    c, s = combos(), subs()
    tables = {
        "combo_dim": pa.table({"combo": np.arange(len(c.model), dtype=np.int16),
                               "device_model": c.model, "os_version": c.os_version,
                               "platform": [PLATFORMS[p] for p in c.platform]}),
        "agent_dim": pa.table({"ua": np.arange(len(c.agents), dtype=np.int64), "agent": c.agents}),
        "sub_dim": pa.table({"sub": np.arange(len(s.sub_id), dtype=np.int16), "sub_id": s.sub_id,
                             "campaign": [CAMPAIGNS[i] for i in s.campaign]}),
    }  # fmt: skip
    for name, table in tables.items():
        con.register(name, table)


IP_TEXT = "concat_ws('.', ({0} >> 24) & 255, ({0} >> 16) & 255, ({0} >> 8) & 255, {0} & 255)"
TS_TEXT = "strftime(make_timestamp({0}), '%Y-%m-%dT%H:%M:%S.%f')"


def _uuid(kind: str, seed: int, column: str) -> str:
    """A UUID-shaped id from md5(seed, kind, row): stable for a seed, unique in practice."""
    h = f"md5('{seed}:{kind}:' || {column})"
    return (f"substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-' || substr({h}, 13, 4) || '-'"
            f" || substr({h}, 17, 4) || '-' || substr({h}, 21, 12)")  # fmt: skip


def _label_sql(prefix: str = "") -> str:
    patterns = ", ".join(f"'{p}'" for p in PATTERNS)
    variants = ", ".join(f"'{v}'" for v in VARIANTS)
    return (f"{prefix}pattern IS NOT NULL AS fraud, [{patterns}][{prefix}pattern + 1] AS pattern,"
            f" [{variants}][{prefix}variant + 1] AS variant")  # fmt: skip


def _load(con: duckdb.DuckDBPyConnection, spec: MarketingSpec, users: Block, clicks: Block) -> None:
    """The users table `u` with every string a stream needs, and the clicks table `c`."""
    third = users["alt_ip"] ^ 0x5A5A
    con.register("users_raw", pa.table({
        "row": np.arange(len(users["reg"]), dtype=np.int64), "reg": users["reg"],
        "click_row": _nullable(users["click_row"]), "ip": users["ip"], "alt_ip": users["alt_ip"],
        "third_ip": third, "ua": users["ua"].astype(np.int64), "dev": users["dev"],
        "combo": users["combo"], "sub": _nullable(users["sub"].astype(np.int64)),
        "country": users["country"], "alt_country": users["alt_country"],
        "third_country": third_country(users), "pattern": _nullable(users["pattern"]),
        "variant": _nullable(users["variant"]), "negative": _nullable(users["negative"]),
    }))  # fmt: skip
    countries = "[" + ", ".join(f"'{c}'" for c in COUNTRIES) + "]"
    negatives = "[" + ", ".join(f"'{n}'" for n in NEGATIVES) + "]"
    con.execute(f"""
        CREATE TABLE u AS SELECT r.row, r.reg, r.click_row, r.sub,
          'u_' || substr(md5('{spec.seed}:u:' || r.row), 1, 16) AS user_id,
          {IP_TEXT.format("r.ip")} AS ip, {IP_TEXT.format("r.alt_ip")} AS alt_ip,
          {IP_TEXT.format("r.third_ip")} AS third_ip,
          {_device_sql(spec.seed, "r.dev", "d.platform")} AS device_id,
          a.agent, d.device_model, d.os_version, d.platform, s.sub_id, s.campaign,
          {countries}[r.country + 1] AS country, {countries}[r.alt_country + 1] AS alt_country,
          {countries}[r.third_country + 1] AS third_country,
          {_label_sql("r.")}, {negatives}[r.negative + 1] AS negative
        FROM users_raw AS r JOIN combo_dim AS d USING (combo) JOIN agent_dim AS a USING (ua)
        LEFT JOIN sub_dim AS s USING (sub) ORDER BY r.row""")
    con.register("clicks_raw", pa.table({
        "row": np.arange(len(clicks["t"]), dtype=np.int64), **{
            k: clicks[k] for k in ("t", "ip", "dev", "sub", "country", "combo")},
        "ua": clicks["ua"].astype(np.int64), "user": _nullable(clicks["user"]),
        "pattern": _nullable(clicks["pattern"]), "variant": _nullable(clicks["variant"]),
    }))  # fmt: skip
    con.execute(f"""
        CREATE TABLE c AS SELECT k.row, k.t, {_uuid("c", spec.seed, "k.row")} AS click_id,
          {IP_TEXT.format("k.ip")} AS ip, a.agent AS ua,
          {_device_sql(spec.seed, "k.dev", "d.platform")} AS device_id, s.campaign, s.sub_id,
          {countries}[k.country + 1] AS country, d.platform, uu.user_id, {_label_sql("k.")}
        FROM clicks_raw AS k JOIN combo_dim AS d USING (combo) JOIN agent_dim AS a USING (ua)
        JOIN sub_dim AS s USING (sub) LEFT JOIN u AS uu ON uu.row = k.user ORDER BY k.row""")


def _device_sql(seed: int, dev: str, platform: str) -> str:
    """Device ids as the platforms shape them: IDFV (upper-case UUID), Android id, web cookie."""
    h = f"md5('{seed}:d:' || {dev})"
    return (
        f"CASE {platform} WHEN 'ios' THEN upper({_uuid('d', seed, dev)}) "
        f"WHEN 'android' THEN substr({h}, 1, 16) ELSE 'web-' || substr({h}, 1, 24) END"
    )


USER_STRINGS = (
    "user_id, ip, alt_ip, third_ip, device_id, agent, country, alt_country, third_country,"
    " platform, fraud, pattern, variant"
)


def _events_sql(spec: MarketingSpec) -> str:
    """A day's events (table e_day: the event columns beside their user's strings) as JSON."""
    types = "[" + ", ".join(f"'{t}'" for t in EVENT_TYPES) + "]"
    server = ", ".join(str(t) for t in SERVER_TYPES)
    return f"""
        SELECT {_uuid("e", spec.seed, "row")} AS event_id, user_id,
          {TS_TEXT.format("t")} AS event_time, {types}[type + 1] AS event_type,
          CASE place WHEN {AWAY} THEN alt_ip WHEN {THIRD} THEN third_ip ELSE ip END AS ip,
          device_id, agent AS user_agent,
          CASE place WHEN {AWAY} THEN alt_country WHEN {THIRD} THEN third_country
            ELSE country END AS country,
          platform, CASE WHEN type IN ({server}) THEN 'server' ELSE platform END AS channel,
          revenue
        FROM e_day ORDER BY row"""


CLICK_FIELDS = "click_id, clicked_at, ip, ua, device_id, campaign, sub_id, country, platform"
REGISTRATION_FIELDS = ("user_id, registered_at, click_id, ip, user_agent, device_id, device_model,"
                       " os_version, campaign, sub_id, country, platform")  # fmt: skip
EVENT_FIELDS = ("event_id, user_id, event_time, event_type, ip, device_id, user_agent, country,"
                " platform, channel, revenue")  # fmt: skip


def write_marketing(out: Path, truth: Path, spec: MarketingSpec) -> MarketingFiles:
    """Write `out/{clicks,registrations,events}/<day>.ndjson.gz` and `truth/{users,events}.parquet`
    for `spec`; files already holding the same bytes are not touched."""
    if truth.resolve().is_relative_to(out.resolve()):
        raise ValueError(f"the truth directory {truth} must not be under {out}: rules read out/")
    users, clicks = generate_users_clicks(spec)
    events = generate_events(spec, users)
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET enable_progress_bar = false")
        _dimensions(con)
        _load(con, spec, users, clicks)
        writer = FileWriter(con)
        user_strings = con.sql(f"SELECT {USER_STRINGS} FROM u ORDER BY row").to_arrow_table()
        files, event_ids = _write_days(writer, out, spec, events, user_strings)
        truth_users = writer.parquet(
            "SELECT user_id, fraud, pattern, variant, negative FROM u ORDER BY row",
            truth / "users.parquet",
        )
        clicks_truth = con.sql("""SELECT click_id AS event_id, 'click' AS event_kind, user_id,
            fraud, pattern, variant FROM c ORDER BY row""").to_arrow_table()
        truth_events = writer.parquet_table(
            _events_truth(clicks_truth, event_ids, user_strings, events["user"]),
            truth / "events.parquet",
        )
        writer.close()
    finally:
        con.close()
    counts = {
        "clicks": len(clicks["t"]), "registrations": len(users["reg"]),
        "events": len(events["t"]), "fraud_users": int((users["pattern"] >= 0).sum()),
        "fraud_clicks": int((clicks["pattern"] >= 0).sum()),
    }  # fmt: skip
    return MarketingFiles(
        clicks=files["clicks"], registrations=files["registrations"], events=files["events"],
        truth_users=truth_users, truth_events=truth_events, counts=counts,
        written=writer.written,
    )  # fmt: skip


def _events_truth(
    clicks: pa.Table, event_ids: list[pa.ChunkedArray], users: pa.Table, owner: np.ndarray
) -> pa.Table:
    """The truth of every click, then of every event (labelled as its user)."""
    labels = users.select(["user_id", "fraud", "pattern", "variant"]).take(pa.array(owner))
    kind = pa.DictionaryArray.from_arrays(np.zeros(len(owner), np.int8), ["event"])
    events = pa.table({
        "event_id": pa.chunked_array([c for ids in event_ids for c in ids.chunks], pa.string()),
        "event_kind": kind.cast(pa.string()), **{n: labels[n] for n in labels.column_names},
    })  # fmt: skip
    return pa.concat_tables([clicks, events.cast(clicks.schema)])


def _write_days(
    writer: FileWriter, out: Path, spec: MarketingSpec, events: Block, users: pa.Table
) -> tuple[dict[str, list[Path]], list[pa.ChunkedArray]]:
    """One file per stream per day; each day's events are a slice of the sorted rows beside
    their users' strings (taken by Arrow, no join). Returns the paths and the event ids."""
    paths: dict[str, list[Path]] = {s: [] for s in STREAMS}
    bounds = spec.start_us + DAY * np.arange(spec.days + 1)
    cuts = np.searchsorted(events["t"], bounds)
    event_ids = []
    for index in range(spec.days):
        day = (spec.start + timedelta(days=index)).date().isoformat()
        low, high = int(bounds[index]), int(bounds[index + 1])
        where = f"BETWEEN {low} AND {high - 1}"
        clicks = f"""SELECT click_id, {TS_TEXT.format("t")} AS clicked_at, ip, ua, device_id,
                       campaign, sub_id, country, platform FROM c WHERE t {where} ORDER BY row"""
        paths["clicks"].append(writer.ndjson(clicks, out / "clicks" / f"{day}.ndjson.gz")[0])
        registrations = f"""SELECT u.user_id, {TS_TEXT.format("u.reg")} AS registered_at,
                              c.click_id, u.ip, u.agent AS user_agent, u.device_id, u.device_model,
                              u.os_version, u.campaign, u.sub_id, u.country, u.platform
                            FROM u LEFT JOIN c ON c.row = u.click_row
                            WHERE u.reg {where} ORDER BY u.row"""
        path = out / "registrations" / f"{day}.ndjson.gz"
        paths["registrations"].append(writer.ndjson(registrations, path)[0])
        first, last = int(cuts[index]), int(cuts[index + 1])
        e_day = users.take(pa.array(events["user"][first:last]))
        for name in ("t", "type", "place"):
            e_day = e_day.append_column(name, pa.array(events[name][first:last]))
        e_day = e_day.append_column("row", pa.array(np.arange(first, last, dtype=np.int64)))
        revenue = pa.array(events["revenue"][first:last], from_pandas=True)
        writer.con.register("e_day", e_day.append_column("revenue", revenue))
        path = out / "events" / f"{day}.ndjson.gz"
        path, ids = writer.ndjson(_events_sql(spec), path, keep="event_id")
        paths["events"].append(path)
        event_ids.append(ids)
    return paths, event_ids
