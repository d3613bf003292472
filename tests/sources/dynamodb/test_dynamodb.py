"""The `dynamodb` source against moto's server on loopback: every AttributeValue type lands
without loss, 1 and 4 segments land the same rows once, throttles are retried, projection and
the PII policy apply before landing, a crash mid-scan reruns clean, and repeated snapshots add
only the changes to the anchor layer's history."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from anchorflow.config import Project
from anchorflow.crashpoints import CRASH_ENV
from anchorflow.errors import ConfigError, TransientSourceError
from anchorflow.run import Pipeline
from anchorflow.sources.dynamodb.client import projection
from anchorflow.sources.dynamodb.config import DynamoDBConfig, PiiPolicy
from anchorflow.sources.dynamodb.items import PageReader
from anchorflow.sources.dynamodb.source import DynamoDBSource
from tests.builders import build_project
from tests.conftest import env_without_crash, table_rows
from tests.sources.dynamodb.server import ACCESS_KEY, REGION, SECRET, MotoDynamo, ThrottleProxy

pytestmark = pytest.mark.integration
ANCHORFLOW = Path(sys.executable).with_name("anchorflow")
NOW = datetime(2030, 1, 1, 12)
SALT = "pepper-for-the-dynamo-tests"
ENV = {"DYNAMO_KEY": ACCESS_KEY, "DYNAMO_SECRET": SECRET, "DYNAMO_SALT": SALT}
USERS = {
    "source": "users",
    "unique_key": "id",
    "columns": {"id": "VARCHAR", "city": {"path": "profile.city", "type": "VARCHAR"}},
}


def users(count: int, city: str = "Lyon") -> list[dict[str, Any]]:
    return [
        {"id": {"S": f"u{i:04d}"}, "score": {"N": f"{i}.5"},
         "profile": {"M": {"city": {"S": city}, "tags": {"SS": ["a", "b"]}}}}
        for i in range(count)
    ]  # fmt: skip


def project(root: Path, url: str, table: str, staging: dict[str, Any] | None = None,
            anchor: dict[str, Any] | None = None, **source: Any) -> Project:  # fmt: skip
    config = {
        "kind": "dynamodb",
        "table": table,
        "region": REGION,
        "endpoint_url": url,
        "access_key_id": "${DYNAMO_KEY}",
        "secret_access_key": "${DYNAMO_SECRET}",
        "retry": {"attempts": 5, "base_delay": "5ms", "max_delay": "20ms"},
        "timeout": "10s",
        **source,
    }
    return build_project(root, sources={"users": config},
                         staging={"users": USERS} if staging is None else staging,
                         anchor=anchor, env=ENV)  # fmt: skip


def run(project: Project, now: datetime = NOW) -> Any:
    with Pipeline(project, now=now) as pipeline:
        return pipeline.run()


def records(project: Project) -> list[dict[str, Any]]:
    rows = table_rows(project.warehouse_path, "SELECT record FROM raw.users_items")
    return sorted((json.loads(r[0]) for r in rows), key=lambda r: str(r.get("id")))


# -- types --------------------------------------------------------------------------------------


def test_every_attribute_value_type_lands_as_plain_json_without_loss(
    dynamo: MotoDynamo, tmp_path: Path
) -> None:
    blob = bytes(range(256))
    huge = "12345678901234567890123456789.0123456789"  # 38 digits: no float holds it
    item = {
        "id": {"S": "all"}, "s": {"S": "héllo \"q\" {\"S\":1}"}, "n": {"N": huge},
        "neg": {"N": "-0.000000000000000000000000000001"}, "b": {"B": blob},
        "t": {"BOOL": True}, "f": {"BOOL": False}, "nil": {"NULL": True},
        "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2.50"]}, "bs": {"BS": [b"\x00", b"\xff"]},
        "l": {"L": [{"S": "a"}, {"N": "1"}, {"NULL": True}, {"L": [{"BOOL": False}]}]},
        "m": {"M": {"S": {"S": "a key named S"}, "M": {"M": {}}, "deep": {"M": {"x": {"L": []}}}}},
        "Case": {"S": "upper"}, "case": {"S": "lower"}, "when": {"S": "2024-03-01T05:00:00"},
    }  # fmt: skip
    dynamo.create_table("types", [item])
    loaded = project(tmp_path / "p", dynamo.url, "types")
    run(loaded)
    (record,) = records(loaded)
    for name in ("ss", "ns", "bs"):  # a set's order is DynamoDB's own
        record[name] = sorted(record[name])
    assert record == {
        "id": "all", "s": "héllo \"q\" {\"S\":1}", "n": huge,
        "neg": "-0.000000000000000000000000000001", "b": base64.b64encode(blob).decode(),
        "t": True, "f": False, "nil": None, "ss": ["x", "y"], "ns": ["1", "2.50"],
        "bs": sorted(base64.b64encode(b).decode() for b in (b"\x00", b"\xff")),
        "l": ["a", "1", None, [False]], "m": {"S": "a key named S", "M": {}, "deep": {"x": []}},
        "Case": "upper", "case": "lower", "when": "2024-03-01T05:00:00",
    }  # fmt: skip
    assert Decimal(record["n"]) == Decimal(huge)


# -- segments and pages -------------------------------------------------------------------------


@pytest.mark.parametrize("segments", [1, 4])
def test_one_and_four_segments_land_every_item_exactly_once_over_many_pages(
    dynamo: MotoDynamo, tmp_path: Path, segments: int
) -> None:
    dynamo.create_table(f"many{segments}", users(230))
    loaded = project(tmp_path / "p", dynamo.url, f"many{segments}", segments=segments,
                     page_size=9)  # fmt: skip
    summary = run(loaded)
    assert [w.rows for w in summary.windows] == [230]
    assert records(loaded) == [
        {"id": f"u{i:04d}", "score": f"{i}.5", "profile": {"city": "Lyon", "tags": ["a", "b"]}}
        for i in range(230)
    ]
    path = loaded.warehouse_path
    origins = table_rows(path, "SELECT origin, count(*), min(line_no), max(line_no) "
                               "FROM raw.users_items GROUP BY 1")  # fmt: skip
    assert len(origins) >= 230 // 9  # page by page: at most 9 items each, numbered from 1
    assert all(count <= 9 and low == 1 and high == count for _, count, low, high in origins)
    assert {o.split("/")[0] for o, *_ in origins} == {f"segment={s}" for s in range(segments)}
    assert table_rows(path, "SELECT count(*), count(DISTINCT id) FROM staging.users") == [
        (230, 230)
    ]


# -- throttling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("error", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_throttled_scan_calls_are_retried_and_the_scan_completes(
    dynamo: MotoDynamo, tmp_path: Path, error: str
) -> None:
    dynamo.create_table("throttled", users(45))
    with ThrottleProxy(dynamo.url, error) as proxy:
        loaded = project(tmp_path / "p", proxy.url, "throttled", page_size=10)
        proxy.throttles = 3
        summary = run(loaded)
    assert proxy.throttled == 3
    assert proxy.passed == 5  # pages of 10, 10, 10, 10, 5: each call answered once
    assert [w.rows for w in summary.windows] == [45]
    assert len(records(loaded)) == 45


def test_throttling_past_the_retry_budget_fails_clearly_and_commits_nothing(
    dynamo: MotoDynamo, tmp_path: Path
) -> None:
    dynamo.create_table("starved", users(40))
    with ThrottleProxy(dynamo.url) as proxy:
        loaded = project(tmp_path / "p", proxy.url, "starved", page_size=10, segments=2)
        proxy.throttles = 1000
        with pytest.raises(TransientSourceError, match="still failing after 5 attempts") as error:
            run(loaded)
    message = str(error.value)
    assert "ProvisionedThroughputExceededException" in message
    assert SECRET not in message and ACCESS_KEY not in message
    assert table_rows(loaded.warehouse_path, "SELECT count(*) FROM meta.loads") == [(0,)]
    assert table_rows(loaded.warehouse_path, "SELECT count(*) FROM raw.users_items") == [(0,)]


def test_a_call_left_unanswered_is_cut_by_its_deadline_and_retried(
    dynamo: MotoDynamo, tmp_path: Path
) -> None:
    dynamo.create_table("quiet", users(25))
    with ThrottleProxy(dynamo.url) as proxy:
        loaded = project(tmp_path / "p", proxy.url, "quiet", page_size=10, deadline="300ms")
        proxy.stalls = 2
        summary = run(loaded)
    assert proxy.stalled == 2
    assert [w.rows for w in summary.windows] == [25]
    assert len(records(loaded)) == 25


def test_a_page_damaged_on_the_way_fails_its_crc32_and_is_fetched_again(
    dynamo: MotoDynamo, tmp_path: Path
) -> None:
    dynamo.create_table("damaged", users(25))
    with ThrottleProxy(dynamo.url) as proxy:
        loaded = project(tmp_path / "p", proxy.url, "damaged", page_size=10)
        proxy.damages = 2
        run(loaded)
    assert proxy.damaged == 2
    assert records(loaded) == [
        {"id": f"u{i:04d}", "score": f"{i}.5", "profile": {"city": "Lyon", "tags": ["a", "b"]}}
        for i in range(25)
    ]


def test_an_error_answer_quoting_the_secret_is_redacted(dynamo: MotoDynamo, tmp_path: Path) -> None:
    dynamo.create_table("echo", users(3))
    with ThrottleProxy(dynamo.url, "ValidationException", message=f"bad key {SECRET}") as proxy:
        loaded = project(tmp_path / "p", proxy.url, "echo")
        proxy.throttles = 1
        with pytest.raises(Exception, match="ValidationException: bad key") as error:
            run(loaded)
    assert SECRET not in str(error.value)
    assert proxy.throttled == 1  # not retried: a validation error will not pass on retry


def test_a_missing_table_is_a_clear_error(dynamo: MotoDynamo, tmp_path: Path) -> None:
    loaded = project(tmp_path / "p", dynamo.url, "no_such_table")
    with pytest.raises(Exception, match="table no_such_table not found in eu-west-1"):
        run(loaded)


# -- projection and PII -------------------------------------------------------------------------


def test_projection_and_the_pii_policy_apply_before_landing(
    dynamo: MotoDynamo, tmp_path: Path
) -> None:
    item = {
        "id": {"S": "u1"}, "name": {"S": "Ann"}, "status": {"S": "vip"},
        "email": {"S": "ann@example.com"}, "phone": {"S": "+33 6 00"},
        "profile": {"M": {"city": {"S": "Lyon"}, "ssn": {"S": "123"}, "zip": {"N": "69001"}}},
        "secret_notes": {"S": "never read"},
    }  # fmt: skip
    dynamo.create_table("people", [item])
    loaded = project(
        tmp_path / "p", dynamo.url, "people",
        attributes=["id", "name", "status", "email", "phone", "profile.city", "profile.ssn"],
        pii={"drop": ["phone", "profile.ssn"], "hash": ["email"], "salt": "${DYNAMO_SALT}"},
    )  # fmt: skip
    run(loaded)
    digest = hashlib.sha256((SALT + "ann@example.com").encode()).hexdigest()
    assert records(loaded) == [
        {"id": "u1", "name": "Ann", "status": "vip", "email": digest, "profile": {"city": "Lyon"}}
    ]


def test_bad_settings_are_one_line_errors(dynamo: MotoDynamo, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pii\.hash needs pii\.salt"):
        project(tmp_path / "a", dynamo.url, "t1x", pii={"hash": ["email"]})
    with pytest.raises(ConfigError, match="dotted path of names"):
        project(tmp_path / "b", dynamo.url, "t1x", attributes=["a..b"])
    with pytest.raises(ConfigError, match="both access_key_id and secret_access_key"):
        project(tmp_path / "c", dynamo.url, "t1x", secret_access_key=None)


# -- snapshots on a schedule --------------------------------------------------------------------


def test_a_scan_is_due_once_per_every_and_each_is_a_load_of_its_own(
    dynamo: MotoDynamo, tmp_path: Path
) -> None:
    dynamo.create_table("scheduled", users(5))
    loaded = project(tmp_path / "p", dynamo.url, "scheduled", every="1d")
    assert [w.window_key for w in run(loaded).windows] == ["20300101T120000Z"]
    assert run(loaded, NOW + timedelta(hours=23)).windows == []
    assert [w.window_key for w in run(loaded, NOW + timedelta(days=1)).windows] == [
        "20300102T120000Z"
    ]
    assert table_rows(loaded.warehouse_path,
                      "SELECT window_key, rows FROM meta.loads ORDER BY 1") == [
        ("20300101T120000Z", 5), ("20300102T120000Z", 5)
    ]  # fmt: skip


ANCHOR = {
    "entities": {
        "User": {
            "key": "user_id",
            "sources": ["snap"],
            "changed_at": "scanned_at",
            "attributes": {"city": {"model": "snap", "history": "scd2"}},
        }
    }
}
SNAP = {
    "snap": {
        "source": "users",
        "columns": {
            "user_id": {"path": "id", "type": "VARCHAR"},
            "city": {"path": "profile.city", "type": "VARCHAR"},
            "scanned_at": "TIMESTAMP",
        },
    }
}


def test_repeated_snapshots_add_only_the_changes_to_the_history(
    dynamo: MotoDynamo, tmp_path: Path
) -> None:
    dynamo.create_table("snapshots", users(3))
    loaded = project(tmp_path / "p", dynamo.url, "snapshots", staging=SNAP, anchor=ANCHOR,
                     scanned_at_field="scanned_at")  # fmt: skip
    run(loaded)
    run(loaded, NOW + timedelta(hours=1))  # nothing changed
    dynamo.put("snapshots", [users(2, city="Oslo")[1]])  # u0001 moved
    run(loaded, NOW + timedelta(hours=2))
    history = table_rows(
        loaded.warehouse_path,
        'SELECT u.user_id, c.value, c.changed_at FROM anchor."User_city" c '
        'JOIN anchor."User" u ON u.id = c.id ORDER BY 1, 3',
    )
    first, third = NOW, NOW + timedelta(hours=2)
    assert history == [  # three snapshots; the second changed nothing, the third one city
        ("u0000", "Lyon", first), ("u0001", "Lyon", first), ("u0001", "Oslo", third),
        ("u0002", "Lyon", first),
    ]  # fmt: skip
    assert table_rows(loaded.warehouse_path, "SELECT count(*) FROM raw.users_items") == [(9,)]


# -- crash --------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("point", ["dynamodb_mid_scan", "after_land", "before_commit"])
def test_a_crash_mid_scan_then_a_rerun_leaves_what_a_clean_run_leaves(
    dynamo: MotoDynamo, tmp_path: Path, point: str
) -> None:
    dynamo.create_table("crashy", users(60))
    clean = project(tmp_path / "clean", dynamo.url, "crashy", page_size=7, segments=3)
    crashed = project(tmp_path / "crashed", dynamo.url, "crashy", page_size=7, segments=3)
    assert cli_run(clean.root).returncode == 0
    killed = cli_run(crashed.root, crash_at=point)
    assert killed.returncode == 86, killed.stderr
    assert table_rows(crashed.warehouse_path, "SELECT count(*) FROM raw.users_items") == [(0,)]
    rerun = cli_run(crashed.root)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(crashed) == snapshot(clean)
    assert SECRET not in killed.stderr + rerun.stderr


def cli_run(root: Path, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**env_without_crash(), **ENV}
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.run(
        [str(ANCHORFLOW), "run", "--project", str(root), "--now", NOW.strftime("%Y%m%dT%H")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def snapshot(loaded: Project) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "raw": "SELECT load_id, origin, line_no, record FROM raw.users_items ORDER BY ALL",
        "staging": "SELECT * FROM staging.users ORDER BY ALL",
        "loads": "SELECT load_id, window_key, rows, status FROM meta.loads ORDER BY ALL",
        "cursors": "SELECT source, stream, cursor, load_id FROM meta.cursors ORDER BY ALL",
    }
    return {name: table_rows(loaded.warehouse_path, sql) for name, sql in queries.items()}


# -- the pieces, without a server ---------------------------------------------------------------


@pytest.mark.unit
def test_an_item_with_an_unknown_type_is_quarantined_and_its_page_still_lands() -> None:
    body = json.dumps({
        "Items": [{"id": {"S": "a"}}, {"id": {"S": "b"}, "x": {"Q": "?"}}, {"id": {"S": "c"}}],
        "ScannedCount": 3,
    }).encode()  # fmt: skip
    page = PageReader(PiiPolicy()).read("segment=0/page=1", body)
    assert page.records.to_pylist() == [
        {"origin": "segment=0/page=1", "line_no": 1, "record": '{"id":"a"}'},
        {"origin": "segment=0/page=1", "line_no": 3, "record": '{"id":"c"}'},
    ]
    (bad,) = page.rejected
    assert (bad.line_no, bad.text) == (2, '{"id": {"S": "b"}, "x": {"Q": "?"}}')
    assert "unknown AttributeValue type 'Q'" in bad.reason
    assert page.last_key is None


@pytest.mark.unit
def test_an_item_with_half_a_surrogate_pair_is_quarantined_alone() -> None:
    body = b'{"Items": [{"id": {"S": "a"}}, {"id": {"S": "\\ud800"}}, {"id": {"S": "\\u00e9"}}]}'
    page = PageReader(PiiPolicy()).read("segment=0/page=1", body)
    assert [r["record"] for r in page.records.to_pylist()] == ['{"id":"a"}', '{"id":"é"}']
    (bad,) = page.rejected
    assert bad.line_no == 2 and "not valid Unicode" in bad.reason
    assert bad.text == '{"id": {"S": "\\ud800"}}'


@pytest.mark.unit
def test_projection_names_every_step_by_a_placeholder_once() -> None:
    assert projection(["id", "name", "profile.name", "profile.city"]) == {
        "ProjectionExpression": "#a0, #a1, #a2.#a1, #a2.#a3",
        "ExpressionAttributeNames": {"#a0": "id", "#a1": "name", "#a2": "profile", "#a3": "city"},
    }


@pytest.mark.unit
def test_plan_cursor_state_and_backfill_follow_the_scans() -> None:
    config = DynamoDBConfig(kind="dynamodb", table="users", every=timedelta(hours=6))
    source = DynamoDBSource("users", config)
    nothing: Any = lambda stream, keys: set()  # noqa: E731
    (first,) = source.plan("items", None, NOW, nothing)
    assert first.key == "20300101T120000Z"
    cursor = source.cursor_after(first, None, nothing)
    assert cursor == {"last_scan": "20300101T120000Z", "scans": 1}
    assert source.plan("items", cursor, NOW + timedelta(hours=5), nothing) == []
    assert source.state("items", cursor, NOW + timedelta(hours=5)).due == 0
    (second,) = source.plan("items", cursor, NOW + timedelta(hours=6), nothing)
    assert source.cursor_after(second, cursor, nothing) == {"last_scan": second.key, "scans": 2}
    assert source.cursor_after(first, {"last_scan": second.key, "scans": 2}, nothing) is None
    state = source.state("items", cursor, NOW + timedelta(hours=6))
    assert (state.position, state.due) == ("1 scan(s), the last at 20300101T120000Z", 1)
    assert [w.key for w in source.backfill("items", None, None, NOW)] == [first.key]
    with pytest.raises(ConfigError, match="drop --start/--end"):
        source.backfill("items", "2030", None, NOW)
