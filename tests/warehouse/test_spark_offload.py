"""Statements over Spark's temporary tables that the journal runs (`warehouse.spark.offload`):
the `af_*` fragments written back in the canonical spelling give DuckDB's own answers, the
Arrow copies are refetched when their table changes, and on the Spark engine an INSERT into a
journal table from a temporary table reads its current rows."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from anchorflow.errors import WarehouseError
from anchorflow.journal import lake as manifest
from anchorflow.warehouse import Warehouse
from anchorflow.warehouse.dialect import Dialect
from anchorflow.warehouse.spark import offload
from anchorflow.warehouse.spark.dialect import SparkDialect, parse
from anchorflow.warehouse.spark.offload import (
    TempCopies,
    per_load_counts,
    to_journal,
    translatable,
)

RECORDS = pa.table({"__r": ['{"a": 1, "o": {"k": "x"}}', '{"a": "t", "b": [1, 2]}', None]})


def _run(sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    con.register("__batch", RECORDS)
    return con.execute(sql).fetchall()


@pytest.mark.unit
@pytest.mark.parametrize(
    "fragment",
    [
        lambda d: d.json_types_at("__r", """CAST(['$."a"', '$."o"."k"'] AS VARCHAR[])"""),
        lambda d: d.json_texts_at("__r", """CAST(['$."a"', '$."o"."k"'] AS VARCHAR[])"""),
        lambda d: d.field_paths(d.object_keys("__r", ["o"]), ["o"]),
        lambda d: d.json_text("__r", ["o", "k"]),
        lambda d: d.list_length(d.json_keys("__r")),
    ],
)
def test_fragments_written_back_give_the_canonical_answers(fragment: object) -> None:
    spark_sql = f"SELECT {fragment(SparkDialect())} FROM temp.__batch"  # type: ignore[operator]
    canonical = f"SELECT {fragment(Dialect())} FROM __batch"  # type: ignore[operator]
    tree = parse(spark_sql)[0]
    assert translatable(tree)
    assert _run(to_journal(tree, {"__batch"})) == _run(canonical)


@pytest.mark.unit
def test_the_sampling_hash_stays_on_spark() -> None:
    # The batch's sample was drawn with Spark's hash: the journal's differs.
    tree = parse(f"SELECT {SparkDialect().sample_hash('__r')} FROM __batch")[0]
    assert not translatable(tree)


@pytest.mark.unit
def test_a_copy_is_refetched_when_its_table_changed() -> None:
    copies, fetched = TempCopies(), []

    def fetch(rows: int) -> pa.Table:
        fetched.append(rows)
        return pa.table({"x": list(range(rows))})

    copies.changed("t", 2)
    assert copies.copy("t", lambda: fetch(2)).num_rows == 2
    assert copies.copy("t", lambda: fetch(99)).num_rows == 2  # unchanged: the copy held
    copies.changed("t", 3)  # replaced
    assert copies.copy("t", lambda: fetch(3)).num_rows == 3
    assert fetched == [2, 3]
    assert copies.small("t")
    copies.changed("t", None)  # rows deleted (how many are left unknown), or dropped
    assert not copies.small("t")
    copies.changed("t", offload.MAX_ROWS + 1)
    assert not copies.small("t")


@pytest.mark.integration
def test_a_journal_insert_from_a_temporary_table_reads_its_rows_now(
    warehouse: Warehouse, engine: str
) -> None:
    if engine != "spark":
        pytest.skip("Spark's temporary tables only")
    warehouse.execute("CREATE TABLE raw.t (id BIGINT, doc VARCHAR)")
    warehouse.execute("CREATE TABLE meta.offload_probe (n BIGINT, top VARCHAR)")
    warehouse.insert("""INSERT INTO raw.t VALUES (1, '{"a": 1}'), (2, '{"b": 2}')""")
    warehouse.execute("CREATE TEMP TABLE __batch AS SELECT * FROM raw.t")
    probe = (
        f"INSERT INTO meta.offload_probe SELECT count(*), max(k) FROM "
        f"(SELECT unnest({warehouse.sql.json_keys('doc')}) AS k FROM __batch WHERE id >= ?)"
    )
    assert warehouse.insert(probe, [1]) == 1
    warehouse.execute("DELETE FROM __batch WHERE id = 2")
    assert warehouse.insert(probe, [1]) == 1
    warehouse.execute(
        "CREATE OR REPLACE TEMP TABLE __batch AS SELECT id + 10 AS id, doc FROM raw.t"
    )
    assert warehouse.insert(probe, [12]) == 1
    rows = warehouse.query("SELECT n, top FROM meta.offload_probe ORDER BY n DESC, top")
    assert rows == [(2, "b"), (1, "a"), (1, "b")]


@pytest.mark.integration
def test_a_journal_table_changed_by_lake_rows_is_refused_not_written_to_the_lake(
    warehouse: Warehouse, engine: str
) -> None:
    """UPDATE and DELETE of a journal table by rows of the lake: the Spark engine rewrites lake
    tables only, so it refuses them in one line and the journal's rows stay as they were."""
    if engine != "spark":
        pytest.skip("the Spark engine's rewrites only")
    warehouse.execute("CREATE TABLE raw.t (id BIGINT, doc VARCHAR)")
    warehouse.execute("CREATE TABLE meta.rewrite_probe (id BIGINT, doc VARCHAR)")
    warehouse.insert("INSERT INTO raw.t VALUES (1, 'lake')")
    warehouse.insert("INSERT INTO meta.rewrite_probe VALUES (1, 'journal'), (2, 'journal')")
    with pytest.raises(WarehouseError, match=r"meta\.rewrite_probe"):
        warehouse.execute(
            "UPDATE meta.rewrite_probe AS p SET doc = t.doc FROM raw.t AS t WHERE p.id = t.id"
        )
    with pytest.raises(WarehouseError, match=r"meta\.rewrite_probe"):
        warehouse.execute("DELETE FROM meta.rewrite_probe WHERE id IN (SELECT id FROM raw.t)")
    rows = warehouse.query("SELECT id, doc FROM meta.rewrite_probe ORDER BY id")
    assert rows == [(1, "journal"), (2, "journal")]
    assert manifest.table_files(warehouse.journal, "meta", "rewrite_probe") == []  # type: ignore[attr-defined]


COUNTS = (
    "SELECT l.load_id, coalesce(s.n, 0) FROM (SELECT unnest(CAST(? AS BIGINT[])) AS load_id) AS l "
    "LEFT JOIN (SELECT load_id, count(*) AS n FROM staging.events "
    "WHERE load_id BETWEEN ? AND ? AND list_contains(?, load_id) GROUP BY 1) AS s USING (load_id) "
    "ORDER BY 1"
)


@pytest.mark.unit
def test_counts_per_load_are_read_from_the_manifest() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA meta")
    con.execute(manifest.DDL)
    files = [("staging", "events", 1, "f1", 3), ("staging", "events", 1, "f2", 2),
             ("staging", "events", 2, "f3", 4), ("staging", "other", 1, "f4", 7),
             ("raw", "events", 3, "f5", 5), ("staging", "events", 3, "f6", 0)]  # fmt: skip
    con.executemany(f"INSERT INTO {manifest.TABLE} VALUES (?, ?, ?, ?, ?)", files)
    tree = per_load_counts(parse(COUNTS)[0], lambda t: t.db == "staging")
    assert tree is not None and not any(t.db == "staging" for t in tree.find_all(exp.Table))
    rows = con.execute(tree.sql("duckdb"), [[1, 2, 3, 4], 1, 3, [1, 2, 3]]).fetchall()
    assert rows == [(1, 5), (2, 4), (3, 0), (4, 0)]


@pytest.mark.unit
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT load_id, count(*) AS n FROM staging.events WHERE user_id = ? GROUP BY 1",
        "SELECT load_id, count(DISTINCT user_id) AS n FROM staging.events GROUP BY 1",
        "SELECT user_id, count(*) AS n FROM staging.events GROUP BY 1",
        "SELECT e.load_id, count(*) AS n FROM staging.events AS e JOIN staging.x AS x "
        "USING (load_id) GROUP BY 1",
    ],
)
def test_other_counts_stay_where_they_are(sql: str) -> None:
    assert per_load_counts(parse(sql)[0], lambda t: t.db == "staging") is None


@pytest.mark.unit
def test_a_view_or_a_table_without_partitions_is_not_counted_from_files() -> None:
    assert per_load_counts(parse(COUNTS)[0], lambda t: False) is None


PER_LOAD = "SELECT load_id, count(*) AS n FROM {} WHERE load_id >= ? GROUP BY 1 ORDER BY 1"


@pytest.mark.integration
def test_per_load_counts_and_session_variables_follow_their_changes(
    warehouse: Warehouse, engine: str
) -> None:
    if engine != "spark":
        pytest.skip("the Spark adapter's own shortcuts")
    warehouse.execute("CREATE TABLE raw.t (load_id BIGINT, v VARCHAR)")
    warehouse.insert("INSERT INTO raw.t VALUES (1, 'a'), (1, 'b'), (2, 'c')")
    warehouse.execute("CREATE TABLE staging.c (load_id BIGINT, v VARCHAR)")
    warehouse.insert("INSERT INTO staging.c SELECT * FROM raw.t")
    assert warehouse.query(PER_LOAD.format("staging.c"), [1]) == [(1, 2), (2, 1)]
    assert warehouse.query(PER_LOAD.format("staging.c"), [2]) == [(2, 1)]
    warehouse.execute("DELETE FROM staging.c WHERE load_id = 2")
    assert warehouse.query(PER_LOAD.format("staging.c"), [1]) == [(1, 2)]
    for value in ["x", "y", "y", "x"]:  # set again to the value held: nothing to do
        warehouse.execute("SET VARIABLE probe_salt = ?", [value])
        assert warehouse.scalar("SELECT max(getvariable('probe_salt')) FROM raw.t") == value
