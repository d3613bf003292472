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
    scan_filter,
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

    def held(rows: int, scan: str = "") -> int:
        data = copies.copy("t", lambda: fetch(rows), scan)
        assert data is not None  # (None: a filtered scan found too many rows)
        return int(data.num_rows)

    copies.changed("t", 2)
    assert held(2) == 2
    assert held(99) == 2  # unchanged: the copy held
    assert held(1, "x > 0") == 1  # a scan of it: a copy of its own
    assert held(99, "x > 0") == 1
    copies.changed("t", 3)  # replaced
    assert held(3) == 3
    assert held(2, "x > 0") == 2
    assert fetched == [2, 1, 3, 2]
    assert copies.small("t")
    copies.changed("t", None)  # rows deleted (how many are left unknown), or dropped
    assert not copies.small("t")
    copies.changed("t", offload.MAX_ROWS + 1)
    assert not copies.small("t")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("sql", "condition"),
    [
        ("SELECT count(*) FROM b WHERE __r IS NOT NULL", "NOT __r IS NULL"),
        (
            "WITH t AS (SELECT *, 1 AS x FROM b AS s WHERE s.__r IS NOT NULL) SELECT * FROM t",
            "NOT __r IS NULL",
        ),
        (
            "SELECT * FROM (SELECT a FROM b WHERE a > 1) UNION ALL SELECT a FROM b WHERE b.a > 1",
            "a > 1",
        ),
        ("SELECT count(*) FROM b", None),  # every row read
        ("SELECT * FROM b WHERE a > 1 UNION ALL SELECT * FROM b WHERE a > 2", None),
        ("SELECT * FROM b JOIN c ON b.a = c.a WHERE b.a > 1", None),
        ("SELECT * FROM b WHERE a > ?", None),  # a parameter: Spark's filter has none
        ("SELECT * FROM b WHERE a IN (SELECT a FROM c)", None),
        ("SELECT * FROM b AS s, c WHERE s.a = c.a", None),
    ],
)
def test_a_large_temporary_table_is_copied_through_its_one_condition(
    sql: str, condition: str | None
) -> None:
    found = scan_filter(parse(sql)[0], "b")
    assert (found.sql() if found is not None else None) == condition


@pytest.mark.integration
def test_a_journal_insert_copies_only_the_rows_its_condition_keeps(
    warehouse: Warehouse, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A temporary table over MAX_ROWS: the journal runs the statement over the rows that pass
    its one condition when they are few enough, and Spark runs it otherwise; the same rows."""
    if engine != "spark":
        pytest.skip("Spark's temporary tables only")
    monkeypatch.setattr(offload, "MAX_ROWS", 3)
    warehouse.execute("CREATE TABLE raw.t (id BIGINT, doc VARCHAR)")
    warehouse.execute("CREATE TABLE meta.offload_probe (n BIGINT, top VARCHAR)")
    warehouse.insert("INSERT INTO raw.t SELECT i, '{\"k' || i || '\": 1}' FROM range(1, 6) AS r(i)")
    warehouse.execute("CREATE TEMP TABLE __batch AS SELECT * FROM raw.t")
    keys = warehouse.sql.json_keys("doc")
    for bound in (3, 1):  # 2 rows pass (copied), then 4 (over MAX_ROWS: Spark runs it)
        warehouse.insert(
            f"INSERT INTO meta.offload_probe SELECT count(*), max(k) FROM "
            f"(SELECT unnest({keys}) AS k FROM __batch WHERE id > {bound})"
        )
    rows = warehouse.query("SELECT n, top FROM meta.offload_probe ORDER BY n")
    assert rows == [(2, "k5"), (4, "k5")]
    held = warehouse._copies._copies  # type: ignore[attr-defined]
    copied = {key: data.num_rows if data is not None else None for key, (_, data) in held.items()}
    assert copied == {("__batch", "id > 3"): 2, ("__batch", "id > 1"): None}


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
