"""The compiled load's logic, run: the same compiler writes DuckDB's (canonical) spelling,
and two batches run through it on a real DuckDB give the staging tables, the anchor model's
perspectives and the marts that anchorflow's own run gives on the same files. Snowflake and
BigQuery are not here; what this proves is the compiled steps (the journal of loads done, ids,
late data, the serving tables), which the engines' files share statement for statement."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlglot.dialects.duckdb import DuckDB

from anchorflow.compile import compile_files
from anchorflow.config import load_project
from anchorflow.warehouse.compiled import NATIVE, SqlOnlyDialect
from anchorflow.warehouse.dialect import Dialect

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
ANCHORFLOW = Path(sys.executable).parent / "anchorflow"
KIND = "it's an order; DROP TABLE raw.shop_records"


class CanonicalCompiled(SqlOnlyDialect):
    """The compiler's output in DuckDB's spelling; COPY reads the test's staged lines."""

    name = "duckdb"
    sqlglot_dialect = DuckDB
    landing_columns = {"origin": "VARCHAR", "line_no": "BIGINT", "record": "VARCHAR"}  # noqa: RUF012
    parse_record = Dialect.parse_record
    record_field = Dialect.record_field
    json_text = Dialect.json_text
    json_value = Dialect.json_value
    json_type = Dialect.json_type
    json_valid = Dialect.json_valid
    json_array_elements = Dialect.json_array_elements
    json_null_list = Dialect.json_null_list
    is_finite = Dialect.is_finite
    is_whole = Dialect.is_whole
    sha256_hex = Dialect.sha256_hex
    variable = Dialect.variable

    def landed_at(self, location: str) -> tuple[str, str]:
        return "l.origin", "l.line_no"

    def copy_raw(self, landing: str, location: str) -> str:
        return (
            f"{NATIVE}INSERT INTO {landing} (origin, line_no, record) SELECT origin, line_no, "
            f"record FROM staged_files WHERE folder = '{location}'"
        )

    def table_function(self, name: str, params: Any, body: str, rows_like: str) -> str:
        return NATIVE + self.table_macro(name, params, self.transpile(body))


def order(id_: int, user: str, at: str, total: object, skus: list[str] | None, **more: Any) -> str:
    record = {"kind": KIND, "id": id_, "user": {"id": user, "email": f"{user}@example.com"},
              "meta": {"from date": at}, "amount": {"eur": {"v": total}}, "day": at[:10],
              "ref": "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f", "payload": {"n": id_},
              "lines_total": len(skus or []), **more}  # fmt: skip
    if skus is not None:
        record["lines"] = [{"sku": s} for s in skus]
    return json.dumps(record)


BATCHES = [
    [
        order(1, "u1", "2024-03-01T10:00:00Z", "10.00", ["A", "B"]),
        order(2, "u2", "2024-03-01T11:00:00+01:00", 5.5, ["A"]),
        order(3, "u1", "2024-03-03T10:00:00Z", 20, ["C"]),
        order(1, "u1", "2024-03-01T10:00:00Z", "10.00", ["A", "B"]),  # a duplicate
        order(4, "u3", "2024-03-01T12:00:00Z", "n/a", ["B"]),  # a bad value: NULL
        json.dumps({"kind": "refund", "id": 9}),  # not selected
        "{not json",
    ],
    [
        order(5, "u1", "2024-03-02T10:00:00Z", "15", ["B"]),  # late: between 10 and 20
        order(6, "u4", "2024-03-04T00:00:00Z", 1, []),
        order(7, "u2", "2024-03-05T00:00:00Z", 5.5, ["A"]),  # the same value again
        order(8, "u1", "2024-03-01T10:00:00Z", 11, ["A"]),  # a conflict: the larger wins
    ],
]

QUERIES = {
    "Order": 'SELECT "select", "userId", "from", total, email, ref, day, CAST(payload AS VARCHAR) '
    'FROM staging."Order" ORDER BY ALL',
    "Line": 'SELECT "select", line_no_, sku, "userId", "from" FROM staging."Line" ORDER BY ALL',
    "latest": 'SELECT "userId", "Total", "firstDay", email FROM anchor."Customer_latest" '
    "ORDER BY 1",
    "as_of": 'SELECT "userId", "Total", "firstDay" FROM anchor."Customer_as_of"'
    "(TIMESTAMP '2024-03-02 12:00') ORDER BY 1",
    "history": 'SELECT c."userId", h.attribute, h.value, h.changed_at FROM '
    'anchor."Customer_history" AS h JOIN anchor."Customer" AS c ON c.id = h.id ORDER BY ALL',
    "tie": 'SELECT c."userId", s.sku, t.changed_at FROM anchor."Customer_Sku" AS t JOIN '
    'anchor."Customer" AS c ON c.id = t.customer_id JOIN anchor."Sku" AS s ON s.id = t.sku_id '
    "ORDER BY ALL",
    "marts": "SELECT * FROM marts.latest ORDER BY ALL",
    "spend": "SELECT * FROM marts.spend ORDER BY ALL",
}


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {name: con.execute(sql).fetchall() for name, sql in QUERIES.items()}
    finally:
        con.close()


def anchorflow_run(project: Path) -> Path:
    for index, batch in enumerate(BATCHES):
        (project / "exports" / f"batch{index}.json").write_text("\n".join(batch) + "\n")
        done = subprocess.run([str(ANCHORFLOW), "run", "--project", str(project)],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    return project / "warehouse.duckdb"


def compiled_run(project: Path, path: Path) -> Path:
    ddl, views, load = compile_files(load_project(project, env={}), CanonicalCompiled())
    con = duckdb.connect(str(path))
    try:
        for statement in ddl.statements + views.statements:
            con.execute(statement)
        con.execute("SET VARIABLE anchorflow_pii_salt = 'test-salt'")
        con.execute("CREATE TABLE staged_files (folder VARCHAR, origin VARCHAR, line_no BIGINT, "
                    "record VARCHAR)")  # fmt: skip
        for index, batch in enumerate(BATCHES):
            con.execute("DELETE FROM staged_files")
            con.executemany(
                "INSERT INTO staged_files VALUES ('shop_records', ?, ?, ?)",
                [[f"batch{index}.json", n, line] for n, line in enumerate(batch, start=1)],
            )
            for statement in load.statements:
                con.execute(statement)
        left = con.execute('SELECT record FROM raw."__landing_shop_records"').fetchall()
        assert left == [("{not json",)]
    finally:
        con.close()
    return path


def test_the_compiled_load_gives_what_anchorflow_gives(tmp_path: Path) -> None:
    project = tmp_path / "odd"
    shutil.copytree(HERE / "odd_project", project)
    (project / "exports").mkdir()
    expected = rows(anchorflow_run(project))
    got = rows(compiled_run(project, tmp_path / "compiled.duckdb"))
    assert len(expected["Order"]) == 8 and len(expected["Line"]) == 8  # it has data
    changes = {r[:3] for r in expected["history"]}
    assert {("u1", "Total", "15.00"), ("u1", "Total", "11.00")} <= changes  # late; conflict
    for name in QUERIES:
        assert got[name] == expected[name], name
