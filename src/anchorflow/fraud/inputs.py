"""The rules' inputs as the project maps them: one SELECT per input, renaming and typing the
mapped table's columns to the input's (`config.fraud.INPUT_COLUMNS`), prepended to a rule's
query as CTEs, so a rule reads `clicks`, `registrations` and `events` and never a project table.

An input column the mapped table lacks (and that the project does not compute) is NULL and
listed as missing: a rule that reads it is skipped with one line naming it, never run on NULLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from anchorflow.config.fraud import INPUT_COLUMNS, INPUTS, ColumnSql
from anchorflow.config.project import Project
from anchorflow.warehouse import Warehouse, ident, table

# The catalogue's data files, loaded into tables of the fraud schema at each run.
DATA_TABLES = ("dc_ranges", "bot_agents")


@dataclass
class Inputs:
    """Per input, its SELECT (absent when it cannot be read) and the columns it lacks."""

    selects: dict[str, str] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def lacking(self, needs: dict[str, tuple[str, ...]]) -> str | None:
        """Why a rule that reads `needs` (input → columns) cannot run, or None."""
        for name, columns in needs.items():
            if name in self.unavailable:
                return self.unavailable[name]
            absent = [c for c in columns if c in self.missing.get(name, [])]
            if absent:
                shown = ", ".join(absent)
                return f"input {name} has no {shown} (map it under fraud.inputs.{name}.columns)"
        return None


def resolve_inputs(warehouse: Warehouse, project: Project) -> Inputs:
    """Each mapped input whose table exists, as a SELECT of the input's columns."""
    found = Inputs()
    for name in INPUTS:
        spec = project.fraud.inputs.get(name)
        if spec is None:
            found.unavailable[name] = f"input {name} is not mapped (fraud.inputs.{name})"
            continue
        schema, relation = spec.schema_and_name
        columns = _columns_of(warehouse, schema, relation)
        if not columns:
            found.unavailable[name] = (
                f"input {name} reads {schema}.{relation}, which is not in the warehouse yet"
            )
            continue
        selected, missing = [], []
        for column, sql_type in INPUT_COLUMNS[name].items():
            source = spec.columns.get(column, column)
            if isinstance(source, ColumnSql):
                value = f"({source.sql})"
            elif source.lower() in columns:
                value = ident(columns[source.lower()])
            else:
                value = "NULL"
                missing.append(column)
            selected.append(f"CAST({value} AS {sql_type}) AS {ident(column)}")
        found.selects[name] = f"SELECT {', '.join(selected)} FROM {table(schema, relation)}"
        found.missing[name] = missing
    return found


def with_inputs(tree: exp.Query, inputs: Inputs, names: list[str]) -> exp.Query:
    """`tree` with CTEs for the inputs and data tables it reads, ahead of its own."""
    tree = tree.copy()
    ctes = []
    for name in names:
        select = inputs.selects.get(name) or f"SELECT * FROM {table('fraud', name)}"
        ctes.append(
            exp.CTE(
                this=sqlglot.parse_one(select, dialect="duckdb"),
                alias=exp.TableAlias(this=exp.to_identifier(name)),
            )
        )
    existing = tree.args.get("with_")
    if existing is not None:
        existing.set("expressions", ctes + list(existing.expressions))
    else:
        tree.set("with_", exp.With(expressions=ctes))
    return tree


def _columns_of(warehouse: Warehouse, schema: str, relation: str) -> dict[str, str]:
    """The table's (or view's) columns, lower case → as spelled; empty when it is not there."""
    rows = warehouse.query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND lower(table_name) = lower(?) ORDER BY ordinal_position",
        [schema, relation],
    )
    return {str(row[0]).lower(): str(row[0]) for row in rows}
