"""The labelled synthetic marketing traffic: deterministic files, the contract's fields, a truth
that covers every row once, and each fraud pattern and hard negative shaped as the contract says."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from anchorflow.dev.synth.marketing import MarketingFiles, MarketingSpec, write_marketing
from anchorflow.dev.synth.marketing_world import (
    CLICK_ONLY,
    NEGATIVES,
    PATTERNS,
    RESIDENTIAL_PREFIXES,
    VARIANTS,
    dc_ranges,
)  # fmt: skip

pytestmark = pytest.mark.integration

SPEC = MarketingSpec(seed=7, days=2)
FIELDS = {
    "clicks": ["click_id", "clicked_at", "ip", "ua", "device_id", "campaign", "sub_id", "country",
               "platform"],
    "registrations": ["user_id", "registered_at", "click_id", "ip", "user_agent", "device_id",
                      "device_model", "os_version", "campaign", "sub_id", "country", "platform"],
    "events": ["event_id", "user_id", "event_time", "event_type", "ip", "device_id", "user_agent",
               "country", "platform", "channel", "revenue"],
}  # fmt: skip
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$")
TIME_FIELD = {"clicks": "clicked_at", "registrations": "registered_at", "events": "event_time"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MarketingFiles]:
    root = tmp_path_factory.mktemp("marketing")
    return root, write_marketing(root / "out", root / "truth", SPEC)


@pytest.fixture(scope="module")
def con(written: tuple[Path, MarketingFiles]) -> duckdb.DuckDBPyConnection:
    """Views over the written files (every field as text) and the truth."""
    root, _ = written
    con = duckdb.connect()
    for stream, fields in FIELDS.items():
        columns = ", ".join(f"'{f}': 'VARCHAR'" for f in fields)
        con.execute(f"""CREATE VIEW {stream} AS SELECT * FROM read_json(
            '{root}/out/{stream}/*.ndjson.gz', format='newline_delimited', filename=true,
            columns={{{columns}}})""")
    for name in ("users", "events"):
        con.execute(f"CREATE VIEW truth_{name} AS FROM '{root}/truth/{name}.parquet'")
    con.execute("""CREATE VIEW regs AS SELECT r.*, t.fraud, t.pattern, t.variant, t.negative,
          epoch(CAST(r.registered_at AS TIMESTAMP) - CAST(c.clicked_at AS TIMESTAMP)) AS delay
        FROM registrations AS r JOIN truth_users AS t USING (user_id)
        LEFT JOIN clicks AS c USING (click_id)""")
    con.execute("""CREATE MACRO ip_int(ip) AS
        CAST(split_part(ip, '.', 1) AS BIGINT) * 16777216 + CAST(split_part(ip, '.', 2) AS BIGINT)
        * 65536 + CAST(split_part(ip, '.', 3) AS BIGINT) * 256 + CAST(split_part(ip, '.', 4) AS
        BIGINT)""")
    ranges = dc_ranges()
    con.execute("CREATE TABLE ranges (lo BIGINT, hi BIGINT, category VARCHAR)")
    for category, rows in ranges.items():
        con.executemany("INSERT INTO ranges VALUES (?, ?, ?)",
                        [(int(lo), int(hi), category) for lo, hi in rows])  # fmt: skip
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    return con.execute(sql).fetchall()[0][0]


def test_the_same_seed_writes_the_same_bytes_and_identical_files_are_left_alone(
    written: tuple[Path, MarketingFiles], tmp_path: Path
) -> None:
    root, first = written
    again = write_marketing(tmp_path / "out", tmp_path / "truth", SPEC)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 3 * SPEC.days + 2
    for name in files:
        assert (root / name).read_bytes() == (tmp_path / name).read_bytes(), name
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert write_marketing(tmp_path / "out", tmp_path / "truth", SPEC).written == 0
    assert before == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert again.counts == first.counts and first.written == len(files)


def test_another_seed_writes_other_traffic(
    written: tuple[Path, MarketingFiles], tmp_path: Path
) -> None:
    root, _ = written
    other = write_marketing(tmp_path / "out", tmp_path / "truth", MarketingSpec(seed=8, days=2))
    for path in other.clicks + other.registrations + other.events:
        assert path.read_bytes() != (root / "out" / path.parent.name / path.name).read_bytes()


def test_the_truth_holds_every_pattern_variant_and_hard_negative(
    con: duckdb.DuckDBPyConnection,
) -> None:
    users = set(
        con.execute("SELECT DISTINCT pattern, variant FROM truth_users WHERE fraud").fetchall()
    )
    clicks = set(
        con.execute("SELECT DISTINCT pattern, variant FROM truth_events WHERE fraud").fetchall()
    )
    for pattern in PATTERNS:
        for variant in VARIANTS:
            assert (pattern, variant) in (clicks if pattern in CLICK_ONLY else users)
    assert not {p for p, _ in users} & set(CLICK_ONLY)
    negatives = con.execute("SELECT DISTINCT negative FROM truth_users WHERE NOT fraud").fetchall()
    assert {n for (n,) in negatives} == {*NEGATIVES, None}
    assert one(con, "SELECT count(*) FROM truth_users WHERE negative IS NOT NULL AND fraud") == 0
    share = one(con, "SELECT avg(CAST(fraud AS INT)) FROM truth_users")
    assert 0.05 <= float(share) <= 0.08  # type: ignore[arg-type]


def test_the_truth_covers_every_click_event_and_user_exactly_once(
    con: duckdb.DuckDBPyConnection, written: tuple[Path, MarketingFiles]
) -> None:
    _, files = written
    assert (
        one(con, "SELECT count(*) - count(DISTINCT (event_id, event_kind)) FROM truth_events") == 0
    )
    for stream, kind, key in (("clicks", "click", "click_id"), ("events", "event", "event_id")):
        rows = one(con, f"SELECT count(*) FROM {stream}")
        assert (
            rows
            == files.counts[stream]
            == one(con, f"SELECT count(*) FROM truth_events WHERE event_kind = '{kind}'")
        )
        assert (
            one(
                con,
                f"""SELECT count(*) FROM {stream} AS s FULL JOIN (FROM truth_events
            WHERE event_kind = '{kind}') AS t ON t.event_id = s.{key}
            WHERE t.event_id IS NULL OR s.{key} IS NULL""",
            )
            == 0
        )
    assert (
        one(
            con,
            """SELECT count(*) FROM registrations AS r FULL JOIN truth_users AS t
        USING (user_id) WHERE r.user_id IS NULL OR t.user_id IS NULL""",
        )
        == 0
    )
    assert one(con, "SELECT count(*) - count(DISTINCT user_id) FROM truth_users") == 0
    # a click's user in the truth is the user who signed up through it (or who clicked before)
    assert (
        one(
            con,
            """SELECT count(*) FROM registrations AS r JOIN truth_events AS t
        ON t.event_id = r.click_id WHERE t.user_id IS DISTINCT FROM r.user_id""",
        )
        == 0
    )


def test_files_carry_the_contract_fields_in_order_with_iso_times(
    written: tuple[Path, MarketingFiles], con: duckdb.DuckDBPyConnection
) -> None:
    _, files = written
    for stream, fields in FIELDS.items():
        paths = getattr(files, stream)
        assert [p.name for p in paths] == ["2026-11-02.ndjson.gz", "2026-11-03.ndjson.gz"]
        with gzip.open(paths[0], "rt") as handle:
            sample = [json.loads(next(handle)) for _ in range(200)]
        assert all(list(row) == fields for row in sample)
        assert all(TIME.match(row[TIME_FIELD[stream]]) for row in sample)
        elsewhere = f"""SELECT count(*) FROM {stream} WHERE NOT contains(filename,
                          '/' || CAST(CAST({TIME_FIELD[stream]} AS DATE) AS VARCHAR) || '.')"""
        assert one(con, elsewhere) == 0
    assert (
        one(
            con, "SELECT count(*) FROM events WHERE channel NOT IN ('web','ios','android','server')"
        )
        == 0
    )
    assert (
        one(
            con,
            """SELECT count(*) FROM events WHERE (event_type = 'purchase')
                       <> (revenue IS NOT NULL)""",
        )
        == 0
    )
    assert one(con, "SELECT min(CAST(revenue AS DOUBLE)) FROM events") > 0  # type: ignore[operator]
    assert one(con, "SELECT count(*) FROM events WHERE channel = 'server'") > 0
    assert (
        one(
            con,
            "SELECT count(*) FROM registrations WHERE click_id IS NULL AND campaign IS NOT NULL",
        )
        == 0
    )
    assert one(con, "SELECT count(*) FROM registrations WHERE click_id IS NULL") > 0


def test_files_are_one_per_stream_per_utc_day(written: tuple[Path, MarketingFiles]) -> None:
    root, files = written
    for stream in FIELDS:
        for path in getattr(files, stream):
            assert path.parent == root / "out" / stream
            day = datetime.fromisoformat(path.name[:10]).replace(tzinfo=UTC)
            with gzip.open(path, "rt") as handle:
                first = json.loads(next(handle))[TIME_FIELD[stream]]
            assert first.startswith(day.date().isoformat())
    assert not list((root / "out").rglob("*.parquet"))


def test_genuine_sub_campaigns_follow_a_day_curve_and_flooding_ones_do_not(
    con: duckdb.DuckDBPyConnection,
) -> None:
    con.execute("""CREATE OR REPLACE VIEW night AS
        SELECT c.sub_id, t.pattern, CAST(c.clicked_at AS DATE) AS day,
               avg(CAST(hour(CAST(c.clicked_at AS TIMESTAMP)) < 6 AS INT)) AS share, count(*) AS n
        FROM clicks AS c JOIN truth_events AS t ON t.event_id = c.click_id
        WHERE NOT t.fraud OR t.pattern = 'click_flooding' GROUP BY ALL""")
    genuine = con.execute("SELECT max(share), min(n) FROM night WHERE pattern IS NULL").fetchall()
    assert genuine[0][0] <= 0.07 and genuine[0][1] >= 100
    flooding = con.execute(
        "SELECT min(share), min(n), count(*) FROM night WHERE pattern IS NOT NULL"
    )
    share, clicks, rows = flooding.fetchall()[0]
    assert share >= 0.15 and clicks >= 300 and rows == 2 * SPEC.days
    overall = one(con, "SELECT sum(share * n) / sum(n) FROM night WHERE pattern IS NULL")
    assert 0.02 <= float(overall) <= 0.05  # type: ignore[arg-type]


def test_click_to_registration_delays(con: duckdb.DuckDBPyConnection) -> None:
    def delays(where: str) -> tuple[float, float, float, int]:
        row = con.execute(f"SELECT min(delay), max(delay), median(delay), count(*) FROM regs "
                          f"WHERE {where}").fetchall()[0]  # fmt: skip
        return row[0], row[1], row[2], row[3]

    low, high, _, n = delays("pattern = 'click_injection' AND variant = 'plain'")
    assert low >= 1 and high <= 5 and n > 0
    low, high, _, n = delays("pattern = 'click_injection' AND variant = 'evasive'")
    assert low >= 6 and high <= 9 and n > 0
    low, high, _, n = delays("negative = 'fast'")
    assert low >= 12 and high <= 40 and n > 0
    low, _, median, _ = delays(
        "NOT fraud AND negative IS DISTINCT FROM 'fast' AND delay IS NOT NULL"
    )
    assert low >= 30 and 150 <= median <= 220
    low, _, _, _ = delays("pattern = 'click_flooding'")
    assert low >= 1800


def test_ips_and_user_agents_sit_where_the_rules_expect(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE OR REPLACE VIEW placed AS SELECT r.*, (SELECT max(category) FROM ranges
        WHERE ip_int(r.ip) BETWEEN lo AND hi) AS category FROM regs AS r""")
    rows = con.execute("SELECT pattern, variant, negative, category, count(*) FROM placed "
                       "GROUP BY ALL").fetchall()  # fmt: skip
    for pattern, _, negative, category, _ in rows:
        expected = "hosting" if pattern == "datacenter_ip" else "vpn" if negative == "vpn" else None
        assert category == expected, (pattern, negative, category)
    first_octets = {int(p) for p in RESIDENTIAL_PREFIXES}
    ranges = dc_ranges()
    assert not any(int(lo) >> 24 in first_octets for rows_ in ranges.values() for lo, _ in rows_)
    patterns = [
        line.strip()
        for line in (Path(__file__).parents[2] / "src/anchorflow/fraud/data/bot_agents.txt")
        .read_text()
        .splitlines()
        if line and not line.startswith("#")
    ]
    con.execute("CREATE OR REPLACE TABLE bots AS SELECT unnest(?) AS pattern", [patterns])
    bot = """EXISTS (SELECT 1 FROM bots WHERE lower(user_agent) LIKE pattern)"""
    assert one(con, f"SELECT count(*) FROM regs WHERE {bot} AND pattern IS DISTINCT FROM "
                    "'bot_user_agent'") == 0  # fmt: skip
    assert one(con, f"SELECT bool_and({bot}) FROM regs WHERE pattern = 'bot_user_agent'")
    assert one(con, "SELECT count(DISTINCT user_agent) FROM regs WHERE NOT fraud") >= 100
    assert one(con, "SELECT count(DISTINCT device_model || os_version) FROM regs") >= 60


def test_registration_patterns_have_their_group_sizes(con: duckdb.DuckDBPyConnection) -> None:
    multi = con.execute("""SELECT variant, ip, count(*) AS n, count(DISTINCT user_agent) AS agents,
          count(DISTINCT sub_id) AS subs, epoch(max(CAST(registered_at AS TIMESTAMP))
          - min(CAST(registered_at AS TIMESTAMP))) AS span
        FROM regs WHERE pattern = 'multi_registration_ip' GROUP BY ALL""").fetchall()
    for variant, _, n, agents, sub_count, span in multi:
        assert sub_count == 1
        if variant == "plain":
            assert 8 <= n <= 15 and agents <= 2 and span <= 7200
        else:
            assert 4 <= n <= 5 and agents <= 2
    cgnat = con.execute("""SELECT max(n), min(users), max(users), min(agents) FROM (
        SELECT ip, day, max(n) AS n, sum(n) AS users, min(agents) AS agents FROM (
          SELECT ip, sub_id, CAST(registered_at AS DATE) AS day, count(*) AS n,
                 count(DISTINCT user_agent) AS agents
          FROM regs WHERE negative = 'cgnat' GROUP BY ALL) GROUP BY ALL)""").fetchall()[0]
    most_in_one_sub, fewest, most, _ = cgnat
    assert most_in_one_sub <= 3 and fewest >= 15 and most <= 55
    devices = con.execute("""SELECT variant, count(*) FROM regs WHERE pattern = 'device_velocity'
                             GROUP BY variant, device_id""").fetchall()
    assert {n for v, n in devices if v == "plain"} <= set(range(8, 13))
    assert {n for v, n in devices if v == "evasive"} <= {1, 2, 3} and (("evasive", 3) in devices)
    genuine_shared = one(
        con,
        """SELECT max(n) FROM (SELECT count(*) AS n FROM regs WHERE NOT fraud
                                 GROUP BY device_id)""",
    )
    assert genuine_shared == 2
    farm = con.execute("""SELECT variant, CAST(registered_at AS DATE), count(*),
          count(DISTINCT device_model || os_version) FROM regs WHERE pattern = 'device_farm'
          GROUP BY ALL""").fetchall()
    assert {(v, combos) for v, _, n, combos in farm} == {("plain", 1), ("evasive", 2)}
    assert min(n for _, _, n, _ in farm) >= 25
    top = one(
        con,
        """SELECT max(share) FROM (SELECT max(n) / sum(n) AS share FROM (
        SELECT sub_id, CAST(registered_at AS DATE) AS day, device_model, os_version,
               count(*) AS n FROM regs WHERE NOT fraud AND sub_id IS NOT NULL GROUP BY ALL)
        GROUP BY sub_id, day)""",
    )
    assert float(top) <= 0.2  # type: ignore[arg-type]


def test_sub_campaign_conversion(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE OR REPLACE VIEW rates AS
        WITH k AS (SELECT campaign, sub_id, count(*) AS clicks FROM clicks GROUP BY ALL),
        r AS (SELECT campaign, sub_id, count(*) AS regs, any_value(pattern) AS pattern,
                     bool_or(fraud AND pattern IN ('conversion_anomaly', 'device_farm',
                     'no_activity', 'click_flooding')) AS fraud_sub, any_value(variant) AS variant
              FROM regs WHERE click_id IS NOT NULL GROUP BY ALL),
        s AS (SELECT k.campaign, k.sub_id, k.clicks, r.regs, r.fraud_sub, r.pattern, r.variant
              FROM k JOIN r USING (campaign, sub_id))
        SELECT s.*, s.regs / s.clicks / (sum(s.regs) FILTER (WHERE NOT s.fraud_sub) OVER w
               / sum(s.clicks) FILTER (WHERE NOT s.fraud_sub) OVER w) AS ratio
        FROM s WINDOW w AS (PARTITION BY s.campaign)""")
    ratios = dict(
        con.execute("""SELECT variant, ratio FROM rates WHERE fraud_sub
                                 AND pattern = 'conversion_anomaly'""").fetchall()
    )
    assert ratios["plain"] >= 3 and 2 <= ratios["evasive"] < 3
    low, high = con.execute(
        "SELECT min(ratio), max(ratio) FROM rates WHERE NOT fraud_sub"
    ).fetchall()[0]
    assert low >= 0.7 and high <= 1.3


def test_activity_after_sign_up(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE OR REPLACE VIEW activity AS
        SELECT r.user_id, r.pattern, r.variant, r.fraud, r.negative,
               count(e.event_id) AS events,
               count(e.event_id) FILTER (WHERE e.channel = 'server') AS server,
               min(e.event_time) FILTER (WHERE e.channel <> 'server') AS first_front,
               min(e.event_time) FILTER (WHERE e.channel = 'server') AS first_server
        FROM regs AS r LEFT JOIN events AS e USING (user_id) GROUP BY ALL""")
    idle = dict(
        con.execute("""SELECT coalesce(pattern, 'genuine') || '/' || coalesce(variant, ''),
        avg(CAST(events = 0 AS INT)) FROM activity WHERE pattern IS NULL OR pattern = 'no_activity'
        GROUP BY ALL""").fetchall()
    )
    assert idle["no_activity/plain"] == 1 and 0.55 <= idle["no_activity/evasive"] <= 0.85
    assert 0.2 <= idle["genuine/"] <= 0.3
    api = con.execute("""SELECT variant, min(server), max(server), max(events - server)
                         FROM activity WHERE pattern = 'api_only' GROUP BY ALL""").fetchall()
    assert {
        (v, (lo >= 5 and hi <= 30) or (lo, hi) == (3, 3), front) for v, lo, hi, front in api
    } == {("plain", True, 0), ("evasive", True, 0)}
    assert (
        one(
            con,
            """SELECT count(*) FROM activity WHERE pattern IS DISTINCT FROM 'api_only'
                       AND first_server IS NOT NULL
                       AND (first_front IS NULL OR first_server < first_front)""",
        )
        == 0
    )


def test_country_changes(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE OR REPLACE VIEW hops AS SELECT r.pattern, r.variant, r.negative,
        r.user_id, count(DISTINCT e.country) AS countries,
        epoch(max(CAST(e.event_time AS TIMESTAMP)) FILTER (WHERE e.country <> r.country)
              - max(CAST(e.event_time AS TIMESTAMP)) FILTER (WHERE e.country = r.country
              AND CAST(e.event_time AS TIMESTAMP) < (SELECT min(CAST(x.event_time AS TIMESTAMP))
              FROM events AS x WHERE x.user_id = r.user_id AND x.country <> r.country))) AS gap
        FROM regs AS r JOIN events AS e USING (user_id) GROUP BY ALL""")
    plain = con.execute("""SELECT min(countries), max(countries) FROM hops
                           WHERE pattern = 'impossible_travel' AND variant = 'plain'""")
    assert plain.fetchall()[0] == (3, 3)
    evasive = con.execute("""SELECT min(countries), max(countries) FROM hops
                             WHERE pattern = 'impossible_travel' AND variant = 'evasive'""")
    assert evasive.fetchall()[0] == (2, 2)
    travellers = con.execute(
        "SELECT max(countries), min(gap) FROM hops WHERE negative = 'traveler'"
    )
    countries, gap = travellers.fetchall()[0]
    assert countries == 2 and gap >= 6 * 3600
    assert (
        one(
            con,
            """SELECT max(countries) FROM hops WHERE NOT coalesce(pattern =
                       'impossible_travel', false) AND negative IS DISTINCT FROM 'traveler'""",
        )
        == 1
    )


def test_click_only_patterns(con: duckdb.DuckDBPyConnection) -> None:
    per_ip = con.execute("""SELECT t.variant, count(*) FROM clicks AS c JOIN truth_events AS t
        ON t.event_id = c.click_id WHERE t.pattern = 'ip_velocity'
        GROUP BY t.variant, c.ip, CAST(c.clicked_at AS DATE)""").fetchall()
    assert all(150 <= n <= 300 for v, n in per_ip if v == "plain")
    assert all(40 <= n <= 60 for v, n in per_ip if v == "evasive")
    assert (
        one(
            con,
            """SELECT count(*) FROM registrations WHERE ip IN (SELECT c.ip FROM clicks
        AS c JOIN truth_events AS t ON t.event_id = c.click_id WHERE t.pattern = 'ip_velocity')""",
        )
        == 0
    )
    con.execute("""CREATE OR REPLACE VIEW gaps AS SELECT t.pattern, t.variant, epoch(
        CAST(c.clicked_at AS TIMESTAMP) - lag(CAST(c.clicked_at AS TIMESTAMP)) OVER (PARTITION BY
        c.ip, c.device_id, c.campaign, c.sub_id ORDER BY c.clicked_at)) AS gap
        FROM clicks AS c JOIN truth_events AS t ON t.event_id = c.click_id""")
    gaps = dict(
        ((p, v), (lo, hi))
        for p, v, lo, hi in con.execute(
            "SELECT pattern, variant, min(gap), max(gap) FROM gaps GROUP BY ALL"
        ).fetchall()
    )
    assert gaps[("duplicate_clicks", "plain")][1] < 10
    assert (
        gaps[("duplicate_clicks", "evasive")][0] >= 3
        and gaps[("duplicate_clicks", "evasive")][1] <= 8
    )
    assert gaps[(None, None)][0] >= 120  # a genuine device clicks again minutes later


@pytest.mark.unit
def test_a_spec_starts_at_a_utc_midnight_and_the_truth_stays_out_of_out(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="midnight"):
        MarketingSpec(start=datetime(2026, 11, 2, 5, tzinfo=UTC))
    with pytest.raises(ValueError, match="UTC"):
        MarketingSpec(start=datetime(2026, 11, 2))
    with pytest.raises(ValueError, match="must not be under"):
        write_marketing(tmp_path, tmp_path / "truth", MarketingSpec(days=1))
    assert not list(tmp_path.iterdir())
