"""A `MetricQuery` compiled to one SELECT with sqlglot, in the engine's dialect.

Each semantic model whose measures are asked is aggregated on its own, to the grain and the
dimensions asked (one common table expression per model: its table, the joins towards the
"one" side that its dimensions need, the filters); when several models are asked, their
aggregates are stacked and collapsed on the grain and dimensions, so that no measure is ever
counted once per row of another model's table. Ratios are computed last, from the aggregates.

Every identifier is quoted; every value of a filter or of the time range is a parameter (`?`);
the SQL of the project file (dimension expressions, measure filters) is parsed, its columns
qualified with the model's alias. The SQL is built in DuckDB's spelling and transpiled for
PostgreSQL by the engine's dialect.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import sqlglot
from sqlglot import exp

from anchorflow.config.metrics import GRAINS, MetricsConfig, SemanticModel
from anchorflow.errors import ConfigError
from anchorflow.metrics.plan import (
    DimensionRef,
    Path,
    allowed_grains,
    known_metric,
    measures_of,
    resolve_dimension,
)
from anchorflow.metrics.query import Filter, MetricQuery

# Grains of a day or longer are dates; hours are timestamps.
DATE_GRAINS = ("day", "week", "month", "quarter", "year")
COMBINED = "measures"
COUNTS = ("count", "count_distinct", "approx_count_distinct")


def quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _column(name: str, table: str | None = None) -> exp.Column:
    return exp.column(quoted(name), table=quoted(table) if table else None)


def _table(model: SemanticModel, alias: str) -> exp.Table:
    schema, name = model.schema_and_name
    return exp.Table(this=quoted(name), db=quoted(schema), alias=exp.TableAlias(this=quoted(alias)))


def _parse(sql: str, alias: str) -> exp.Expr:
    """The project's SQL expression, its columns qualified with the model's alias."""
    tree = sqlglot.parse_one(sql, dialect="duckdb")

    def qualify(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table:
            return exp.column(node.this, table=quoted(alias))
        return node

    return tree.transform(qualify)


def dimension_sql(model: SemanticModel, dimension: str, alias: str) -> exp.Expr:
    """A dimension (or the time dimension, by its name) of `model` read through `alias`."""
    if model.time is not None and dimension == model.time.dimension_name:
        time = model.time
        return _column(time.column, alias) if time.column else _parse(time.sql or "", alias)
    spec = model.dimensions[dimension]
    if spec.column is not None:
        return _column(spec.column, alias)
    return exp.paren(_parse(spec.sql or "", alias), copy=False)


def bucket_sql(time: exp.Expr, grain: str) -> exp.Expr:
    """The start of the grain's period holding `time` (weeks start on Monday): a date for a
    day or longer, a timestamp for an hour."""
    as_timestamp = exp.cast(time, exp.DataType.build("TIMESTAMP"))
    truncated = exp.func("date_trunc", exp.Literal.string(grain), as_timestamp, dialect="duckdb")
    return exp.cast(truncated, exp.DataType.build("DATE")) if grain in DATE_GRAINS else truncated


def measure_sql(model: SemanticModel, measure: str, alias: str) -> exp.Expr:
    spec = model.measures[measure]
    operand: exp.Expr
    if spec.column is not None:
        operand = _column(spec.column, alias)
    elif spec.sql is not None:
        operand = exp.paren(_parse(spec.sql, alias), copy=False)
    else:
        operand = exp.Star()
    aggregate: exp.Expr
    if spec.agg == "count_distinct":
        aggregate = exp.Count(this=exp.Distinct(expressions=[operand]))
    elif spec.agg == "approx_count_distinct":  # DuckDB's HyperLogLog; exact on PostgreSQL
        aggregate = exp.ApproxDistinct(this=operand)
    elif spec.agg == "count":
        aggregate = exp.Count(this=operand)
    elif spec.agg == "avg":
        aggregate = exp.cast(exp.Avg(this=operand), exp.DataType.build("DOUBLE"))
    else:
        aggregate = {"sum": exp.Sum, "min": exp.Min, "max": exp.Max}[spec.agg](this=operand)
    if spec.filter is None:
        return aggregate
    inner = aggregate.this if isinstance(aggregate, exp.Cast) else aggregate
    filtered = exp.Filter(this=inner, expression=exp.Where(this=_parse(spec.filter, alias)))
    if isinstance(aggregate, exp.Cast):
        return exp.cast(filtered, exp.DataType.build("DOUBLE"))
    return filtered


@dataclass
class _Part:
    """One model's aggregate: its measures, by their column in the combined rows."""

    model: str
    measures: dict[str, str] = field(default_factory=dict)  # measure → column name


def _condition(target: exp.Expr, item: Filter, params: list[Any]) -> exp.Expr:
    if item.op in ("in", "not in"):
        values = item.value if isinstance(item.value, tuple) else (item.value,)
        params.extend(values)
        condition: exp.Expr = exp.In(this=target, expressions=[exp.Placeholder() for _ in values])
        return exp.Not(this=condition) if item.op == "not in" else condition
    params.append(item.value)
    kinds = {"=": exp.EQ, "!=": exp.NEQ, ">": exp.GT, ">=": exp.GTE, "<": exp.LT, "<=": exp.LTE}
    return kinds[item.op](this=target, expression=exp.Placeholder())


def _joins(select: exp.Select, section: MetricsConfig, paths: list[Path]) -> exp.Select:
    """LEFT JOIN every hop of the paths the dimensions need, once each, nearest first."""
    done: set[str] = set()
    for path in sorted(paths, key=lambda p: len(p.hops)):
        previous = "t"
        for hop in path.hops:
            if hop.alias not in done:
                done.add(hop.alias)
                on = exp.and_(*[
                    exp.EQ(this=_column(mine, previous), expression=_column(theirs, hop.alias))
                    for mine, theirs in hop.on
                ])  # fmt: skip
                select = select.join(
                    _table(section.models[hop.model], hop.alias), on=on, join_type="LEFT"
                )
            previous = hop.alias
    return select


def _model_select(
    section: MetricsConfig, query: MetricQuery, part: _Part, params: list[Any]
) -> exp.Select:
    model = section.models[part.model]
    dims = [resolve_dimension(section, part.model, name) for name in query.by]
    filters = [(resolve_dimension(section, part.model, f.dimension), f) for f in query.where]
    columns: list[exp.Expr] = []
    if query.grain is not None:
        time = _time(section, part.model, query.grain)
        columns.append(exp.alias_(bucket_sql(time, query.grain), quoted(query.grain)))
    columns += [exp.alias_(_ref_sql(section, ref), quoted(ref.name)) for ref in dims]
    columns += [
        exp.alias_(measure_sql(model, measure, "t"), quoted(column))
        for measure, column in part.measures.items()
    ]
    select = exp.select(*columns).from_(_table(model, "t"))
    select = _joins(select, section, [ref.path for ref in dims + [r for r, _ in filters]])
    conditions: list[exp.Expr] = []
    if query.start is not None or query.end is not None:
        time = _time(section, part.model, None)
        for bound, kind in ((query.start, exp.GTE), (query.end, exp.LT)):
            if bound is not None:
                params.append(bound)
                conditions.append(kind(this=time.copy(), expression=exp.Placeholder()))
    conditions += [_condition(_ref_sql(section, ref), item, params) for ref, item in filters]
    if conditions:
        select = select.where(exp.and_(*conditions))
    keys = len(dims) + (query.grain is not None)
    if keys:
        select = select.group_by(*[exp.Literal.number(i) for i in range(1, keys + 1)])
    return select


def _ref_sql(section: MetricsConfig, ref: DimensionRef) -> exp.Expr:
    return dimension_sql(section.models[ref.model], ref.dimension, ref.path.alias)


def _time(section: MetricsConfig, model_name: str, grain: str | None) -> exp.Expr:
    model = section.models[model_name]
    if model.time is None:
        raise ConfigError([
            f"metrics: model {model_name} has no time dimension (time:), so it has no grain "
            "and no --from/--to"
        ])  # fmt: skip
    if grain is not None and grain not in model.time.grains:
        raise ConfigError([
            f"metrics: model {model_name} has no grain {grain!r} (grains: "
            f"{', '.join(model.time.grains)})"
        ])  # fmt: skip
    return dimension_sql(model, model.time.dimension_name, "t")


def _metric_sql(
    section: MetricsConfig, metric: str, columns: dict[tuple[str, str], str], stacked: bool
) -> exp.Expr:
    """The metric over the aggregates. Where models were stacked, a count of a model that has
    no row for a group is 0 there (as a count over no rows is)."""
    spec = section.metrics[metric]
    if spec.measure is not None:
        model, measure = spec.model_and_measure
        column = _column(columns[(model, measure)])
        if stacked and section.models[model].measures[measure].agg in COUNTS:
            return exp.func("coalesce", column, exp.Literal.number(0))
        return column
    assert spec.ratio is not None
    numerator, denominator = (_metric_sql(section, m, columns, stacked) for m in spec.ratio)
    return exp.Div(
        this=exp.cast(numerator, exp.DataType.build("DOUBLE")),
        expression=exp.func("nullif", denominator, exp.Literal.number(0)),
    )


def _check(section: MetricsConfig, query: MetricQuery) -> None:
    if not query.metrics:
        raise ConfigError(["metrics: name at least one metric"])
    for name in query.metrics:
        known_metric(section, name)
    if query.grain is not None and query.grain not in GRAINS:
        raise ConfigError([f"metrics: unknown grain {query.grain!r} (grains: {', '.join(GRAINS)})"])
    if query.grain is not None:
        for name in query.metrics:
            if query.grain not in allowed_grains(section, name):
                shown = ", ".join(allowed_grains(section, name)) or "none: no time dimension"
                raise ConfigError([f"metrics: {name} has no grain {query.grain!r} ({shown})"])
    taken = {query.grain, *query.by}
    if len(taken) != len(query.by) + 1 or any(m in taken for m in query.metrics):
        raise ConfigError(["metrics: a column is asked twice (grain, --by and metrics differ)"])
    if query.order is not None and query.order not in query.metrics:
        raise ConfigError([f"metrics: order {query.order!r} is not one of the metrics asked"])
    if query.limit is not None and query.limit < 0:
        raise ConfigError(["metrics: limit must be 0 or more"])


def compile_canonical(section: MetricsConfig, query: MetricQuery) -> tuple[str, list[Any]]:
    """The query in DuckDB's spelling (which the warehouse adapters take), and its values."""
    _check(section, query)
    parts: dict[str, _Part] = {}
    columns: dict[tuple[str, str], str] = {}
    for metric in query.metrics:
        for model, measure in measures_of(section, metric):
            if (model, measure) not in columns:
                columns[(model, measure)] = f"m{len(columns) + 1}"
                parts.setdefault(model, _Part(model)).measures[measure] = columns[(model, measure)]
    params: list[Any] = []
    keys = ([query.grain] if query.grain else []) + list(query.by)
    on_metrics = [f for f in query.where if f.dimension in query.metrics]
    on_rows = replace(query, where=tuple(f for f in query.where if f not in on_metrics))
    ctes = {
        f"m_{name}": _model_select(section, on_rows, part, params) for name, part in parts.items()
    }
    final = exp.select(
        *[_column(key) for key in keys],
        *[
            exp.alias_(_metric_sql(section, m, columns, len(parts) > 1), quoted(m))
            for m in query.metrics
        ],
    )
    if len(ctes) == 1:
        final = final.from_(quoted(next(iter(ctes))))
    else:
        final = final.from_(quoted(COMBINED))
        ctes[COMBINED] = _combined(keys, parts, list(ctes))
    for name, select in ctes.items():
        final = final.with_(quoted(name), as_=select)
    if on_metrics:  # on the aggregates: after the rows' filters, as their values are
        stacked = len(parts) > 1
        final = final.where(exp.and_(*[
            _condition(_metric_sql(section, f.dimension, columns, stacked), f, params)
            for f in on_metrics
        ]))  # fmt: skip
    order = (
        [exp.Ordered(this=_column(query.order), desc=True, nulls_first=False)]
        if query.order
        else []
    )
    order += [exp.Ordered(this=_column(k), nulls_first=False) for k in keys]
    if order:
        final = final.order_by(*order)
    if query.limit is not None:
        final = final.limit(exp.Literal.number(query.limit))
    return final.sql(dialect="duckdb"), params


def _combined(keys: list[str], parts: dict[str, _Part], ctes: list[str]) -> exp.Select:
    """Each model's aggregate stacked, then one row per grain and dimensions: every model has
    at most one row there, so MAX picks its value (NULL where it has none)."""
    every = [c for part in parts.values() for c in part.measures.values()]
    branches = []
    for cte, part in zip(ctes, parts.values(), strict=True):
        mine = set(part.measures.values())
        branches.append(
            exp.select(
                *[_column(k) for k in keys],
                *[_column(c) if c in mine else exp.alias_(exp.null(), quoted(c)) for c in every],
            ).from_(quoted(cte))
        )
    stacked: exp.Query = branches[0]
    for branch in branches[1:]:
        stacked = exp.union(stacked, branch, distinct=False)
    select = exp.select(
        *[_column(k) for k in keys],
        *[exp.alias_(exp.Max(this=_column(c)), quoted(c)) for c in every],
    ).from_(exp.Subquery(this=stacked, alias=exp.TableAlias(this=quoted("stacked"))))
    if keys:
        select = select.group_by(*[exp.Literal.number(i) for i in range(1, len(keys) + 1)])
    return select


def compile_query(
    metrics: MetricsConfig, query: MetricQuery, dialect: str
) -> tuple[str, list[Any]]:
    """The query as the engine `dialect` (duckdb, postgres, spark) runs it, with its
    placeholders (`?` for DuckDB and Spark, `%s` for PostgreSQL's driver), and the values bound
    to them in order."""
    sql, params = compile_canonical(metrics, query)
    if dialect == "postgres":
        from anchorflow.warehouse.postgres.dialect import bind, transpile

        return bind(transpile(sql), True), params
    if dialect == "spark":
        from anchorflow.warehouse.spark.dialect import parse, to_spark

        return to_spark(parse(sql)[0]), params
    if dialect != "duckdb":
        raise ConfigError([f"metrics: no SQL for the engine {dialect!r} (duckdb, postgres, spark)"])
    return sql, params
