"""How a mart's rows reach `marts.<name>`: a view, a table rebuilt whole, or the periods of an
incremental table that new loads touched, deleted and inserted again.

The periods an incremental build redoes are found by running the mart's SQL with each input
that gained loads narrowed to those loads' rows: the values of its time column there, cut to
the grain, are the periods those rows count in. Each period is then deleted and computed again
from all of its inputs' rows, in the caller's transaction.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from anchorflow.crashpoints import crash_point
from anchorflow.errors import WarehouseError
from anchorflow.warehouse import Warehouse, table

# Where a mart's new rows wait while views depend on its table (`replace_mart`).
NEXT = "af__next_mart"
PERIODS = "af__mart_periods"


def relations(warehouse: Warehouse) -> dict[str, str]:
    """Every table and view of the marts schema: name → BASE TABLE or VIEW."""
    rows = warehouse.query(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = 'marts'"
    )
    return {str(r[0]): "VIEW" if "VIEW" in str(r[1]).upper() else "BASE TABLE" for r in rows}


def create_view(warehouse: Warehouse, name: str, sql: str, existing: str | None) -> None:
    target = table("marts", name)
    if existing == "BASE TABLE":
        warehouse.execute(f"DROP TABLE {target}")
    warehouse.execute(warehouse.sql.replace_view(target, sql))


def replace_mart(warehouse: Warehouse, name: str, sql: str, existing: str | None = None) -> None:
    """`marts.<name>` rebuilt from `sql`. Where views depend on the table and the engine would
    refuse to drop it under them (PostgreSQL: a BI tool's or an analyst's view on a mart), its
    rows are replaced in place instead, so those views survive (and readers keep seeing the
    last commit meanwhile); when the mart's columns change under such views, the error names
    them."""
    target = table("marts", name)
    if existing == "VIEW":
        warehouse.execute(f"DROP VIEW {target}")
    query = warehouse.sql.dependent_views()
    views = warehouse.query(query, ["marts", name]) if query and existing else []
    if not views:
        warehouse.execute(warehouse.sql.create_or_replace_table(target, sql))
        return
    scratch = table("marts", NEXT)
    warehouse.execute(warehouse.sql.create_or_replace_table(scratch, sql))
    if columns(warehouse, name) != columns(warehouse, NEXT):
        shown = ", ".join(f"{schema}.{view}" for schema, view in views)
        raise WarehouseError(
            f"its columns changed, and views depend on marts.{name} ({shown}): drop them "
            "(they are not anchorflow's) or keep the mart's columns and types"
        )
    warehouse.execute(f"DELETE FROM {target}")
    warehouse.execute(f"INSERT INTO {target} SELECT * FROM {scratch}")
    warehouse.execute(f"DROP TABLE {scratch}")


def columns(warehouse: Warehouse, name: str) -> list[tuple[object, ...]]:
    return warehouse.query(
        "SELECT column_name, data_type, numeric_precision, numeric_scale, "
        "character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = 'marts' AND table_name = ? ORDER BY ordinal_position",
        [name],
    )


def column_names(warehouse: Warehouse, name: str) -> list[str]:
    return [str(c[0]) for c in columns(warehouse, name)]


def query_columns(warehouse: Warehouse, sql: str) -> list[str]:
    """The names of the columns the SQL returns (run with no rows)."""
    return list(warehouse.query_arrow(f"SELECT * FROM ({sql}) AS q LIMIT 0").column_names)


def narrowed(tree: exp.Query, schema: str, name: str) -> exp.Query:
    """The mart's SQL with the table `schema.name` narrowed to the rows of the loads given as
    a parameter (a list) at each place it is read; the table keeps its name or alias."""
    tree = tree.copy()
    source = sqlglot.parse_one(
        f"SELECT * FROM {table(schema, name)} WHERE list_contains(?, load_id)", dialect="duckdb"
    )
    for found in list(tree.find_all(exp.Table)):
        if found.db.lower() == schema and found.name.lower() == name.lower():
            alias = exp.TableAlias(this=exp.to_identifier(found.alias_or_name, quoted=True))
            found.replace(exp.Subquery(this=source.copy(), alias=alias))
    return tree


def _period(column: str, grain: str, qualifier: str | None = None) -> exp.Expr:
    value = exp.column(column, table=qualifier, quoted=True)
    return exp.func(
        "date_trunc",
        exp.Literal.string(grain),
        exp.Cast(this=value, to=exp.DataType.build("TIMESTAMP")),
    )


def _in_periods(column: str, grain: str, periods: str, qualifier: str | None = None) -> str:
    """Rows whose period is one of `periods` (a table), NULL time with the NULL period."""
    period = _period(column, grain, qualifier).sql("duckdb")
    value = exp.column(column, table=qualifier, quoted=True).sql("duckdb")
    return (
        f"({period} IN (SELECT period FROM {periods}) OR ({value} IS NULL AND EXISTS "
        f"(SELECT 1 FROM {periods} WHERE period IS NULL)))"
    )


def rebuild_periods(
    warehouse: Warehouse,
    name: str,
    sql: str,
    time_column: str,
    grain: str,
    narrowed_sql: list[tuple[str, list[int], int]],
) -> int:
    """Delete and insert again the periods in which the narrowed queries (each with the new
    load ids it reads, and how many times it reads them) have rows; returns how many."""
    target = table("marts", name)
    periods = warehouse.sql.temp_table(PERIODS)
    selects, params = [], []
    for narrow, load_ids, reads in narrowed_sql:
        selects.append(
            f"SELECT DISTINCT {_period(time_column, grain, 'q').sql('duckdb')} AS period "
            f"FROM ({narrow}) AS q"
        )
        params += [load_ids] * reads
    warehouse.execute(f"DROP TABLE IF EXISTS {periods}")
    warehouse.execute(f"CREATE TEMP TABLE {PERIODS} AS " + " UNION ".join(selects), params)
    count = int(warehouse.scalar(f"SELECT count(*) FROM {periods}"))
    if count:
        warehouse.execute(f"DELETE FROM {target} WHERE {_in_periods(time_column, grain, periods)}")
        crash_point("mart_periods_deleted")
        warehouse.execute(
            f"INSERT INTO {target} SELECT * FROM ({sql}) AS q "
            f"WHERE {_in_periods(time_column, grain, periods, 'q')}"
        )
    warehouse.execute(f"DROP TABLE {periods}")
    return count
