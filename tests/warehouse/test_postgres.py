"""The PostgreSQL adapter against a real server (a throwaway cluster): what differs from DuckDB.

The Warehouse contract itself (transactions, inserts, Arrow) runs on both engines in
test_duckdb.py through the parametrized `warehouse` fixture.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from anchorflow.errors import WarehouseError
from anchorflow.warehouse.postgres import PostgresWarehouse, transpile
from anchorflow.warehouse.postgres.dialect import to_char_format
from tests import engines

pytestmark = pytest.mark.integration


@pytest.fixture
def dsn(tmp_path: Path) -> Iterator[str]:
    try:
        yield engines.database_for(tmp_path)
    finally:
        engines.drop_databases()


@pytest.mark.unit
def test_strftime_letters_are_literal_text() -> None:
    # Unquoted, the T of 20240301T05 would read as an ordinal suffix (05th).
    assert to_char_format("%Y%m%dT%H") == 'YYYYMMDD"T"HH24'
    assert "TO_CHAR" in transpile("SELECT strftime(ts, '%Y%m%dT%H') FROM t")


@pytest.mark.unit
def test_try_cast_is_never_a_plain_cast() -> None:
    sql = transpile("SELECT TRY_CAST(x AS BIGINT), TRY_CAST(x AS DECIMAL(5, 2)) FROM t")
    assert "af_try_bigint" in sql and "af_try_numeric" in sql
    assert "CAST(x AS BIGINT)" not in sql


def test_canonical_sql_runs_with_exact_meanings(dsn: str) -> None:
    with PostgresWarehouse(dsn) as wh:
        row = wh.query(
            "SELECT TRY_CAST('12' AS BIGINT), TRY_CAST('1x' AS BIGINT), "
            "TRY_CAST('123.456' AS DECIMAL(5, 2)), TRY_CAST('1234.5' AS DECIMAL(5, 2)), "
            "strftime(TIMESTAMP '2024-03-01 05:00:00', '%Y%m%dT%H'), 7 % 4, ? || '%'",
            ["50"],
        )[0]
    assert row == (12, None, Decimal("123.46"), None, "20240301T05", 3, "50%")


def test_latest_skips_nulls_like_duckdb(dsn: str) -> None:
    with PostgresWarehouse(dsn) as wh:
        value = wh.scalar(
            "SELECT arg_max(v, o) FROM (VALUES (1, NULL), (NULL, 3), (2, 2)) AS t(v, o)"
        )
    assert value == 2


def test_arrow_in_keeps_empty_text_apart_from_null_and_lists(dsn: str) -> None:
    data = pa.table({"s": ["", None, 'a,"b"\n'], "l": [[1, 2], None, []]})
    with PostgresWarehouse(dsn) as wh:
        wh.execute("CREATE TABLE t (s VARCHAR, l BIGINT[])")
        assert wh.insert_arrow("public", "t", data) == 3
        rows = wh.query("SELECT s, l FROM t ORDER BY s NULLS LAST")
    assert rows == [("", [1, 2]), ('a,"b"\n', []), (None, None)]


def test_a_second_writer_waits_for_the_first_then_fails_naming_it(dsn: str) -> None:
    first = PostgresWarehouse(dsn)
    try:
        with pytest.raises(WarehouseError, match=r"is written by PID \d+ \(anchorflow\)"):
            PostgresWarehouse(dsn, lock_timeout=0.3)
        # readers are never blocked by the writer
        with PostgresWarehouse(dsn, read_only=True) as reader:
            assert reader.scalar("SELECT 1") == 1
    finally:
        first.close()
    with PostgresWarehouse(dsn, lock_timeout=0.3) as second:  # the claim went with the first
        assert second.scalar("SELECT 1") == 1


def test_a_reader_sees_the_last_commit_while_a_load_is_open(dsn: str) -> None:
    with PostgresWarehouse(dsn) as writer:
        writer.execute("CREATE TABLE t (i BIGINT)")
        writer.execute("INSERT INTO t VALUES (1)")
        seen: list[int] = []
        with writer.transaction():
            writer.execute("INSERT INTO t VALUES (2)")
            reader_thread = threading.Thread(
                target=lambda: seen.append(
                    PostgresWarehouse(dsn, read_only=True).scalar("SELECT count(*) FROM t")
                )
            )
            reader_thread.start()
            reader_thread.join(timeout=30)
        assert seen == [1]
        assert writer.scalar("SELECT count(*) FROM t") == 2


def test_read_only_refuses_writes(dsn: str) -> None:
    with PostgresWarehouse(dsn) as writer:
        writer.execute("CREATE TABLE t (i BIGINT)")
    with (
        PostgresWarehouse(dsn, read_only=True) as reader,
        pytest.raises(WarehouseError, match="read-only"),
    ):
        reader.execute("INSERT INTO t VALUES (1)")


def test_rewrite_drops_the_bytes_of_deleted_rows(dsn: str) -> None:
    with PostgresWarehouse(dsn) as wh:
        wh.create_schema("raw")
        wh.execute(
            "CREATE TABLE raw.t AS SELECT repeat('x', 500) || i AS s FROM range(20000) AS r(i)"
        )
        wh.execute("DELETE FROM raw.t WHERE true")
        result = wh.rewrite()
    assert result.bytes_after < result.bytes_before - 5_000_000


def test_a_wrong_password_is_not_in_the_error(dsn: str) -> None:
    wrong = dsn.replace("postgres@", "nobody:hunter22@").rsplit("/", 1)[0] + "/missing_db"
    with pytest.raises(WarehouseError) as raised:
        PostgresWarehouse(wrong)
    assert "hunter22" not in str(raised.value)
    assert "***" in str(raised.value)


def test_arrow_out_keeps_types_of_empty_and_null_columns(dsn: str) -> None:
    with PostgresWarehouse(dsn) as wh:
        wh.execute("CREATE TABLE t (i BIGINT, u UUID, ts TIMESTAMP, s VARCHAR)")
        empty = wh.query_arrow("SELECT * FROM t")
        wh.execute(
            "INSERT INTO t VALUES (NULL, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL, NULL)"
        )
        one = wh.query_arrow("SELECT * FROM t")
    assert [f.type for f in empty.schema] == [
        pa.int64(),
        pa.string(),
        pa.timestamp("us"),
        pa.string(),
    ]
    assert one.schema == empty.schema
    assert one.column("u").to_pylist() == ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]


def test_dates_are_read_in_iso_8601_only_as_on_duckdb(dsn: str) -> None:
    with PostgresWarehouse(dsn) as wh:
        row = wh.query(
            "SELECT TRY_CAST('today' AS DATE), TRY_CAST('January 8, 1999' AS TIMESTAMP), "
            "TRY_CAST('2024-03-01T05:06:07Z' AS TIMESTAMPTZ) IS NOT NULL, "
            "TRY_CAST('2024-03-01' AS DATE) IS NOT NULL, TRY_CAST('300' AS TINYINT)"
        )[0]
    assert row == (None, None, True, True, None)


def test_json_paths_do_not_look_inside_arrays(dsn: str) -> None:
    with PostgresWarehouse(dsn) as wh:
        text = wh.sql.json_text_at("?", "?")
        found = wh.scalar(f"SELECT {text}", ['{"user": [{"id": "u1"}]}', '$."user"."id"'])
        direct = wh.scalar(f"SELECT {text}", ['{"user": {"id": "u1"}}', '$."user"."id"'])
    assert (found, direct) == (None, "u1")


def test_a_malformed_dsn_is_one_line_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError) as raised:
        PostgresWarehouse("host=127.0.0.1 password=s3cr3t-pw junk")
    assert "s3cr3t" not in str(raised.value)


def test_error_catching_helpers_run_in_a_query_the_planner_makes_parallel(dsn: str) -> None:
    # A PL/pgSQL EXCEPTION block opens a subtransaction, which a parallel query refuses: the
    # helpers that catch errors must keep the planner from going parallel (found at 1M events).
    with PostgresWarehouse(dsn) as wh:
        wh.execute("SET parallel_setup_cost = 0")
        wh.execute("SET parallel_tuple_cost = 0")
        wh.execute("SET min_parallel_table_scan_size = 0")
        wh.execute("CREATE TABLE t AS SELECT CAST(i AS VARCHAR) AS s FROM range(50000) AS r(i)")
        wh.execute("ANALYZE t")
        found = wh.scalar(
            "SELECT count(*) FROM t WHERE TRY_CAST(s AS TIMESTAMP) IS NULL "
            f"AND {wh.sql.json_valid('s')} AND TRY_CAST(s AS DECIMAL(10, 2)) IS NOT NULL"
        )
    assert found == 50000
