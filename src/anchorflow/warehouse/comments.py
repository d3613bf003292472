"""The warehouse's own comments on tables and columns, kept equal to the project's descriptions.

Tools that browse the database (a BI tool's field list, DBeaver, `duckdb_columns()`) show these;
they are set with `COMMENT ON`, only where they differ, so applying them again changes nothing.
A table or column the warehouse does not hold (yet) is left alone.
"""

from __future__ import annotations

from anchorflow.config.descriptions import TableDoc
from anchorflow.warehouse.base import Warehouse, ident, literal, table


def apply_comments(warehouse: Warehouse, schema: str, docs: dict[str, TableDoc]) -> int:
    """Make the comments of `schema`'s documented tables (and their columns) say what `docs`
    says; a comment without a description is removed. Returns how many comments changed."""
    if not docs:
        return 0
    tables = dict(warehouse.query(warehouse.sql.table_comments(), [schema]))
    columns: dict[tuple[str, str], str | None] = {
        (name, column): comment
        for name, column, comment in warehouse.query(warehouse.sql.column_comments(), [schema])
    }
    statements = []
    for name, doc in docs.items():
        if name not in tables:
            continue
        if tables[name] != doc.description:
            statements.append(
                warehouse.sql.comment_on_table(table(schema, name), _text(doc.description))
            )
        for (owner, column), comment in columns.items():
            wanted = doc.columns.get(column)
            if owner == name and comment != wanted:
                target = f"{table(schema, name)}.{ident(column)}"
                statements.append(f"COMMENT ON COLUMN {target} IS {_text(wanted)}")
    for statement in statements:
        warehouse.execute(statement)
    return len(statements)


def _text(description: str | None) -> str:
    return "NULL" if description is None else literal(description)
