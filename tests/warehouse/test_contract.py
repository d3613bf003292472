"""The Warehouse interface's contract, on every engine (the `warehouse` fixture is parametrized)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anchorflow.errors import WarehouseError
from anchorflow.warehouse import Warehouse, ident, literal, table
from anchorflow.warehouse.duckdb import DuckDBWarehouse

pytestmark = pytest.mark.integration


@pytest.fixture
def warehouse(warehouse: Warehouse) -> Warehouse:
    """The tests' shared fresh warehouse, with a table raw.t (id, name)."""
    warehouse.execute("CREATE TABLE raw.t (id BIGINT, name VARCHAR)")
    return warehouse


def test_a_failed_transaction_leaves_nothing(warehouse: Warehouse) -> None:
    with pytest.raises(RuntimeError), warehouse.transaction():
        warehouse.execute("INSERT INTO raw.t VALUES (1, 'a')")
        raise RuntimeError("crash between two statements")
    assert warehouse.scalar("SELECT count(*) FROM raw.t") == 0


def test_a_nested_transaction_commits_with_the_outer_one(warehouse: Warehouse) -> None:
    with pytest.raises(RuntimeError), warehouse.transaction():
        with warehouse.transaction():
            warehouse.execute("INSERT INTO raw.t VALUES (1, 'a')")
        raise RuntimeError("the outer block fails after the inner one finished")
    assert warehouse.scalar("SELECT count(*) FROM raw.t") == 0


def test_insert_returns_the_rows_inserted(warehouse: Warehouse) -> None:
    assert warehouse.insert("INSERT INTO raw.t SELECT i, 'x' FROM range(5) AS r(i)") == 5


def test_bulk_insert_from_arrow_by_column_name(warehouse: Warehouse) -> None:
    data = pa.table({"name": ["b", "a"], "id": [2, 1]})  # columns in another order
    assert warehouse.insert_arrow("raw", "t", data) == 2
    assert warehouse.query("SELECT id, name FROM raw.t ORDER BY id") == [(1, "a"), (2, "b")]


def test_bulk_insert_from_parquet_and_ndjson_files(warehouse: Warehouse, tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [1, 2], "name": ["p", "q"]}), tmp_path / "a.parquet")
    (tmp_path / "b.ndjson").write_text(
        "\n".join(json.dumps({"id": i, "name": n}) for i, n in [(3, "r"), (4, "s")])
    )
    assert warehouse.insert_files("raw", "t", [tmp_path / "a.parquet"], "parquet") == 2
    assert warehouse.insert_files("raw", "t", [tmp_path / "b.ndjson"], "ndjson") == 2
    names = warehouse.query_arrow("SELECT name FROM raw.t ORDER BY id").column("name")
    assert names.to_pylist() == ["p", "q", "r", "s"]
    with pytest.raises(WarehouseError, match="format 'csv'"):
        warehouse.insert_files("raw", "t", [tmp_path / "a.parquet"], "csv")


def test_query_arrow_takes_parameters(warehouse: Warehouse) -> None:
    warehouse.execute("INSERT INTO raw.t VALUES (1, 'a'), (2, 'b')")
    result = warehouse.query_arrow("SELECT name FROM raw.t WHERE id = ?", [2])
    assert result.column("name").to_pylist() == ["b"]


def test_a_view_reads_its_tables_as_they_are_when_it_is_queried(warehouse: Warehouse) -> None:
    """A view of a (lake) schema over a table: rows written after the view was made, and
    after it was read once, are in it (Spark read the view as a table without files)."""
    warehouse.execute("CREATE VIEW staging.named AS SELECT id, name FROM raw.t WHERE id > 1")
    assert warehouse.query("SELECT count(*) FROM staging.named") == [(0,)]
    warehouse.execute("INSERT INTO raw.t VALUES (1, 'a'), (2, 'b')")
    assert warehouse.query("SELECT id, name FROM staging.named") == [(2, "b")]
    warehouse.insert_arrow("raw", "t", pa.table({"id": [3], "name": ["c"]}))
    rows = warehouse.query("SELECT v.name FROM staging.named AS v ORDER BY v.id")
    assert rows == [("b",), ("c",)]


def test_a_worker_reads_the_last_commit_while_a_transaction_is_open(warehouse: Warehouse) -> None:
    """Another connection (a page of `anchorflow serve` while a run writes): it sees what is
    committed, not what an open transaction wrote, and each commit as soon as it is made,
    tables made since it was opened among them."""
    warehouse.execute("INSERT INTO raw.t VALUES (1, 'a')")
    worker = warehouse.worker()
    assert worker is not warehouse
    try:
        assert worker.scalar("SELECT count(*) FROM raw.t") == 1
        with warehouse.transaction():
            warehouse.execute("INSERT INTO raw.t VALUES (2, 'b')")
            warehouse.execute("CREATE TABLE raw.u (id BIGINT)")
            assert worker.scalar("SELECT count(*) FROM raw.t") == 1  # not committed yet
            assert not worker.table_exists("raw", "u")
        assert worker.query("SELECT id, name FROM raw.t ORDER BY id") == [(1, "a"), (2, "b")]
        warehouse.insert_arrow("raw", "u", pa.table({"id": [7]}))
        assert worker.scalar("SELECT sum(id) FROM raw.u") == 7
        with worker.transaction():  # and its own transactions are its own
            worker.execute("INSERT INTO raw.u VALUES (8)")
            assert warehouse.scalar("SELECT sum(id) FROM raw.u") == 7
        assert warehouse.scalar("SELECT sum(id) FROM raw.u") == 15
    finally:
        worker.close()
    assert warehouse.scalar("SELECT count(*) FROM raw.t") == 2  # the warehouse stays open


def test_update_by_condition_and_from_a_source_then_a_rollback(warehouse: Warehouse) -> None:
    """UPDATE as the anchor step's serving tables use it (on Spark: the table written anew):
    by a condition, and FROM a source that two rows of match one target row; the count is of
    the target's rows; a failed transaction leaves the table as it was."""
    warehouse.execute("INSERT INTO raw.t VALUES (1, 'a'), (2, 'b'), (3, NULL)")
    assert warehouse.insert("UPDATE raw.t AS c SET name = upper(c.name) WHERE c.id >= 2") == 2
    changed = warehouse.insert(
        "UPDATE raw.t AS c SET name = n.name || '!' FROM (SELECT 1 AS id, 'x' AS name "
        "UNION ALL SELECT 1, 'x' UNION ALL SELECT 3, 'z') AS n WHERE c.id = n.id"
    )
    assert changed == 2
    expected = [(1, "x!"), (2, "B"), (3, "z!")]
    assert warehouse.query("SELECT id, name FROM raw.t ORDER BY id") == expected
    with pytest.raises(RuntimeError), warehouse.transaction():
        warehouse.execute("UPDATE raw.t AS c SET name = 'gone' WHERE c.id = 1")
        assert warehouse.query("SELECT name FROM raw.t WHERE id = 1") == [("gone",)]
        raise RuntimeError("crash after the update")
    assert warehouse.query("SELECT id, name FROM raw.t ORDER BY id") == expected


def test_the_canonical_spelling_of_seconds_and_patterns_answers_alike(warehouse: Warehouse) -> None:
    """DuckDB's `extract(epoch FROM ...)` of a difference and of a timestamp, and SIMILAR TO
    (a regular expression matched whole), as the fraud catalogue writes them: the same answers
    on every engine (Spark has neither: microseconds since 1970, an anchored RLIKE; PostgreSQL's
    own SIMILAR TO reads `.` as a dot: an anchored `~`)."""
    warehouse.execute(
        "INSERT INTO raw.t VALUES (1, '10.0.0.1'), (2, '10x0x0x1'), (3, 'a 10.0.0.1'), (4, NULL)"
    )
    rows = warehouse.query(
        "SELECT t.id, CAST(extract(epoch FROM CAST('2024-03-01 00:01:30.5' AS TIMESTAMP) "
        "- CAST('2024-03-01 00:00:00' AS TIMESTAMP)) * t.id AS DOUBLE) AS seconds, "
        "CAST(extract(epoch FROM CAST('1970-01-02 00:00:00' AS TIMESTAMP)) AS BIGINT) AS day, "
        "t.name SIMILAR TO '[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}' AS ip, "
        "t.name NOT SIMILAR TO '.*x.*' AS no_x "  # `.`: any character, as on DuckDB
        "FROM raw.t AS t ORDER BY t.id"
    )
    assert rows == [
        (1, 90.5, 86400, True, True),
        (2, 181.0, 86400, False, False),
        (3, 271.5, 86400, False, True),
        (4, 362.0, 86400, None, None),
    ]


def test_table_exists_sees_only_this_warehouse(warehouse: Warehouse) -> None:
    assert warehouse.table_exists("raw", "t")
    assert not warehouse.table_exists("raw", "missing")


def test_engine_errors_become_warehouse_errors(warehouse: Warehouse) -> None:
    with pytest.raises(WarehouseError, match="missing"):
        warehouse.execute("SELECT * FROM raw.missing")


@pytest.mark.parametrize("name", ["a b", 'x"; DROP TABLE raw.t; --', "", "1abc", "a.b"])
def test_identifiers_outside_the_safe_set_are_refused(name: str) -> None:
    with pytest.raises(WarehouseError, match="identifier"):
        ident(name)


def test_identifiers_and_literals_are_quoted() -> None:
    assert table("raw", "amplitude_events") == '"raw"."amplitude_events"'
    assert literal("it's") == "'it''s'"


def test_a_warehouse_file_that_is_not_duckdb_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    path.write_text("not a database")
    with pytest.raises(WarehouseError, match=r"cannot open the DuckDB file .*w\.duckdb"):
        DuckDBWarehouse(path)


def test_writes_go_to_the_file_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with DuckDBWarehouse(path) as wh:
        wh.create_schema("raw")
        wh.execute("CREATE TABLE raw.t AS SELECT range AS id FROM range(10000)")
    with DuckDBWarehouse(path) as wh:
        assert wh.scalar("SELECT sum(id) FROM raw.t") == sum(range(10000))


def test_memory_capped_lowers_duckdbs_limit_inside_the_block_then_restores_it(
    tmp_path: Path,
) -> None:
    from anchorflow.warehouse.duckdb.adapter import memory_bytes

    wh = DuckDBWarehouse(tmp_path / "w.duckdb", memory_limit="2GB")
    try:

        def limit() -> int:
            return memory_bytes(str(wh.scalar("SELECT current_setting('memory_limit')")))

        before = limit()
        with wh.memory_capped("1GB"):
            inside = limit()
            with wh.worker().memory_capped(None):  # (a worker shares the engine's memory)
                assert limit() == inside
        assert limit() == before
        with wh.memory_capped("3GB"):  # never raised above the lower limit already set
            assert limit() == before
        with pytest.raises(RuntimeError), wh.memory_capped("512MB"):
            raise RuntimeError("restored after an error too")
        assert limit() == before
    finally:
        wh.close()
    assert 0.9e9 <= inside <= 1.1e9 and 1.8e9 <= before <= 2.2e9
    with pytest.raises(WarehouseError, match="not a memory size"):
        memory_bytes("lots")


def test_memory_capped_checkpoints_what_the_block_wrote_before_lifting_the_cap(
    tmp_path: Path,
) -> None:
    """Else the checkpoint of a large write would run at the next commit or at close, with
    the memory it took back."""
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    wal = tmp_path / "w.duckdb.wal"
    try:
        wh.create_schema("raw")
        wh.execute("CREATE TABLE raw.t AS SELECT range AS id FROM range(10)")
        with wh.memory_capped("1GB"):
            wh.execute("INSERT INTO raw.t SELECT range AS id FROM range(100)")
            assert wal.exists() and wal.stat().st_size > 0
        assert not wal.exists() or wal.stat().st_size == 0
        with wh.transaction(), wh.memory_capped("1GB"):  # not inside a transaction
            wh.execute("INSERT INTO raw.t SELECT range AS id FROM range(5)")
        assert wh.scalar("SELECT count(*) FROM raw.t") == 115
    finally:
        wh.close()


def test_the_writer_spills_beside_its_file_not_in_the_working_directory(
    tmp_path: Path,
) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        spill = wh.scalar("SELECT current_setting('temp_directory')")
    finally:
        wh.close()
    assert Path(spill) == tmp_path / "w.duckdb.tmp"


def test_memory_capped_restores_duckdbs_own_default(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        before = wh.scalar("SELECT current_setting('memory_limit')")
        with wh.memory_capped("1GB"):
            assert wh.scalar("SELECT current_setting('memory_limit')") != before
        assert wh.scalar("SELECT current_setting('memory_limit')") == before
    finally:
        wh.close()


def test_the_cap_holds_when_the_warehouse_is_let_go_of_and_opened_again(tmp_path: Path) -> None:
    """The land step lets go of the file while a source waits on the network; the connection
    it opens again is under the cap too (it came back with DuckDB's default: 2.8 GB at 5M
    events instead of 1.4 GB). After the block, the configured limit is back."""
    from anchorflow.warehouse.duckdb.adapter import memory_bytes

    wh = DuckDBWarehouse(tmp_path / "w.duckdb", memory_limit="2GB")
    try:

        def limit() -> int:
            return memory_bytes(str(wh.scalar("SELECT current_setting('memory_limit')")))

        with wh.memory_capped("1GB"):
            wh.release()
            assert wh.released
            reopened = limit()  # opens the file again
            with wh.memory_capped("512MB"):
                wh.release()
                inner = limit()
            after_inner = limit()
            wh.release()  # let go of at the end of the block: nothing to restore on it
        assert wh.released
        after = limit()
    finally:
        wh.close()
    assert 0.9e9 <= reopened <= 1.1e9 and 0.45e9 <= inner <= 0.55e9
    assert 0.9e9 <= after_inner <= 1.1e9 and 1.8e9 <= after <= 2.2e9
