"""What several sections share when they point at a table the project makes (`fraud.inputs`,
`metrics.models`, a dashboard's `events`): a staging model by name (`model:`) or any staging,
anchor or marts table (`table: anchor.User_latest`), and SQL expressions over its columns."""

from __future__ import annotations

from typing import Any

import sqlglot
from pydantic import Field, model_validator
from sqlglot import exp

from anchorflow.project_types import IDENTIFIER, Identifier, Strict

TABLE_SCHEMAS = ("staging", "anchor", "marts")


def sql_expression(value: Any, what: str = "an expression") -> str:
    """One SQL expression over a table's columns (DuckDB's spelling): not a query, and no
    placeholders (values are the project's own SQL, like a mart's)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected {what} in SQL, got {value!r}")
    try:
        tree = sqlglot.parse_one(value, dialect="duckdb")
    except sqlglot.errors.ParseError as error:
        raise ValueError(f"not {what} in SQL ({str(error).splitlines()[0]})") from None
    if isinstance(tree, exp.Query | exp.Command) or tree.find(exp.Query, exp.Placeholder):
        raise ValueError(f"expected {what} over the table's columns, not a query")
    return value


class TableRef(Strict):
    """A staging model (`model:`) or a table of the project (`table: <schema>.<name>`)."""

    model: Identifier | None = Field(default=None, description="a staging model")
    table: str | None = Field(default=None, description="marts.<name>, anchor.<name>, ...")

    @model_validator(mode="after")
    def _one_table(self) -> TableRef:
        if (self.model is None) == (self.table is None):
            raise ValueError("name the table with model: (a staging model) or table:")
        if self.table is not None:
            schema, _, name = self.table.partition(".")
            if schema not in TABLE_SCHEMAS or not name:
                raise ValueError(
                    f"table: expected <schema>.<table> in {', '.join(TABLE_SCHEMAS)}, "
                    f"got {self.table!r}"
                )
            if not IDENTIFIER.match(name.strip('"')):
                raise ValueError(f"table: {name!r} is not a plain table name")
        return self

    @property
    def schema_and_name(self) -> tuple[str, str]:
        if self.model is not None:
            return "staging", self.model
        schema, _, name = (self.table or "").partition(".")
        return schema, name.strip('"')
