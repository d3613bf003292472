"""Tests on marts, as dbt has them: not_null, unique, accepted_values, relationships, and a
reconciliation of the mart against another table (`row_count`).

Each test is a query of the mart's failing rows (identifiers quoted, the project's values bound
as parameters), counted after the mart is built. The result keeps how many rows failed and the
query that lists them, with the values written out so that it can be pasted into any client;
never the rows themselves (they may hold personal data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from anchorflow.alerts import Alert
from anchorflow.config.mart_settings import (
    AcceptedValues,
    MartTest,
    NotNull,
    Relationships,
    RowCount,
    Unique,
)
from anchorflow.config.marts import known_tables, mart_files
from anchorflow.config.project import Project
from anchorflow.errors import WarehouseError
from anchorflow.journal.marts import TestRecord
from anchorflow.warehouse import Warehouse, ident, table

SAMPLE_ROWS = 100


@dataclass(frozen=True)
class TestResult:
    """One test of a mart as it ran: `failures` counts the mart's rows that fail it (for a
    reconciliation, how far apart the two values are)."""

    mart: str
    test: str  # its name, e.g. unique(day, platform)
    kind: str
    severity: str  # error | warn
    failures: int
    detail: str | None  # what a reconciliation compared
    query: str  # lists the failing rows

    @property
    def passed(self) -> bool:
        return self.failures == 0

    @property
    def status(self) -> str:
        return "pass" if self.passed else "fail"

    def record(self) -> TestRecord:
        return TestRecord(self.mart, self.test, self.kind, self.severity, self.status,
                          self.failures, self.detail, self.query)  # fmt: skip


def test_name(test: MartTest) -> str:
    if isinstance(test, Relationships):
        return f"relationships({test.columns[0]} → {test.to}.{test.field})"
    if isinstance(test, RowCount):
        shown = "" if test.expression == "count(*)" else f"{test.expression} "
        return f"row_count({shown}= {test.equals})"
    return f"{test.kind}({', '.join(test.columns)})"


def _col(name: str, qualifier: str | None = None) -> str:
    return f"{qualifier}.{ident(name)}" if qualifier else ident(name)


def _sql(text: str) -> str:
    """The project's own SQL fragment, parsed and written out again (one expression)."""
    return sqlglot.parse_one(text, dialect="duckdb").sql("duckdb")


def failing_rows(project: Project, mart: str, test: MartTest) -> tuple[str, list[Any], str]:
    """(query of the failing rows, its parameters, what counts them: SQL over the query `f`)."""
    target = table("marts", mart)
    if isinstance(test, NotNull):
        nulls = " OR ".join(f"{_col(c)} IS NULL" for c in test.columns)
        return f"SELECT * FROM {target} WHERE {nulls}", [], "count(*)"
    if isinstance(test, Unique):
        cols = ", ".join(_col(c) for c in test.columns)
        where = f" WHERE {_col(test.columns[0])} IS NOT NULL" if len(test.columns) == 1 else ""
        return (
            f"SELECT {cols}, count(*) AS af_rows FROM {target}{where} GROUP BY {cols} "
            "HAVING count(*) > 1",
            [],
            "coalesce(sum(f.af_rows), 0)",
        )
    if isinstance(test, AcceptedValues):
        column = _col(test.columns[0])
        marks = ", ".join("?" for _ in test.values)
        return (
            f"SELECT {column}, count(*) AS af_rows FROM {target} WHERE {column} IS NOT NULL "
            f"AND {column} NOT IN ({marks}) GROUP BY {column}",
            list(test.values),
            "coalesce(sum(f.af_rows), 0)",
        )
    if isinstance(test, Relationships):
        column = _col(test.columns[0], "c")
        other = _relation(project, test.to)
        return (
            f"SELECT c.* FROM {target} AS c WHERE {column} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {other} AS p WHERE {_col(test.field, 'p')} = {column})",
            [],
            "count(*)",
        )
    assert isinstance(test, RowCount)
    return _reconciliation(project, mart, test), [], ""


def _reconciliation(project: Project, mart: str, test: RowCount) -> str:
    where = f" WHERE {_sql(test.where)}" if test.where else ""
    other_where = f" WHERE {_sql(test.compare_where)}" if test.compare_where else ""
    return (
        f"SELECT (SELECT {_sql(test.expression)} FROM {table('marts', mart)}{where}) AS mart, "
        f"(SELECT {_sql(test.compare_expression)} FROM {_relation(project, test.equals)}"
        f"{other_where}) AS other"
    )


def _relation(project: Project, name: str) -> str:
    """A `schema.table` of the project as the warehouse spells it (names ignore case)."""
    schema, _, relation = name.partition(".")
    known = known_tables(project, mart_files(project.marts_path)).get(schema, {})
    return table(schema, known.get(relation.lower(), relation))


def run_test(warehouse: Warehouse, project: Project, mart: str, test: MartTest) -> TestResult:
    """The test run on the mart; a test the engine cannot run is one line naming both."""
    try:
        return _run_test(warehouse, project, mart, test)
    except WarehouseError as error:
        message = str(error).split("\n")[0]
        raise WarehouseError(f"marts.{mart}: test {test_name(test)}: {message}") from error


def _run_test(warehouse: Warehouse, project: Project, mart: str, test: MartTest) -> TestResult:
    sql, params, counted = failing_rows(project, mart, test)
    shown = shown_query(warehouse, sql, params, isinstance(test, RowCount))
    name = test_name(test)
    if isinstance(test, RowCount):
        value, other = warehouse.query(sql)[0]
        value, other = float(value or 0), float(other or 0)
        difference = abs(value - other)
        failures = 0 if difference <= test.allowed(other) else max(1, round(difference))
        detail = f"marts.{mart}: {_number(value)}, {test.equals}: {_number(other)}"
        return TestResult(mart, name, test.kind, test.severity, failures, detail, shown)
    found = warehouse.scalar(f"SELECT {counted} FROM ({sql}) AS f", params)
    return TestResult(mart, name, test.kind, test.severity, int(found or 0), None, shown)


def _number(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:,.2f}"


def shown_query(warehouse: Warehouse, sql: str, params: list[Any], whole: bool) -> str:
    """The query as a person pastes it: values written out, in the engine's SQL."""
    tree = exp.replace_placeholders(sqlglot.parse_one(sql, dialect="duckdb"), *params)
    text = tree.sql("duckdb") + ("" if whole else f" LIMIT {SAMPLE_ROWS}")
    return warehouse.sql.transpile(text)


def run_tests(
    warehouse: Warehouse, project: Project, mart: str, tests: list[MartTest]
) -> list[TestResult]:
    return [run_test(warehouse, project, mart, test) for test in tests]


def tested_columns(test: MartTest) -> list[str]:
    """The mart's columns a test reads by name (to check they exist)."""
    return [] if isinstance(test, RowCount) else list(test.columns)


def mart_tests_alert(failed: list[Any]) -> Alert:
    """One alert for the marts whose tests failed in a run (`BuiltMart`s), per mart."""
    tests = [t for mart in failed for t in mart.failed_tests]
    errors = sum(1 for t in tests if t.severity == "error")
    subject = (
        f"marts: {len(tests)} test(s) failed in {', '.join(f'marts.{m.name}' for m in failed)}"
        + f" ({errors} error, {len(tests) - errors} warn)"
    )
    details = {
        f"marts.{m.name}": [
            f"{t.severity} {t.test}: {t.failures:,} failing" for t in m.failed_tests
        ]
        for m in failed
    }
    return Alert("mart_tests_failed", subject, details)
