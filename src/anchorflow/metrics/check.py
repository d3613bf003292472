"""`validate`'s check of the semantic layer, on the empty scratch warehouse that holds every
table the project makes: each model's table, time dimension, dimensions, measures and join
keys bound one by one (so a column a mart or an anchor view lacks is named by its key), then
every metric and alert whose models bind, as the query it compiles to."""

from __future__ import annotations

from sqlglot import exp

from anchorflow.config.metrics import MetricsConfig
from anchorflow.config.project import Project
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.marts import BINDING_ERRORS
from anchorflow.metrics.alerts import alert_query
from anchorflow.metrics.compile import (
    _column,
    _table,
    bucket_sql,
    compile_canonical,
    dimension_sql,
    measure_sql,
)
from anchorflow.metrics.plan import allowed_grains, common_dimensions, measures_of, reachable
from anchorflow.metrics.query import MetricQuery
from anchorflow.warehouse import Warehouse


def binding_problems(warehouse: Warehouse, project: Project) -> list[str]:
    """One line per part of `metrics:` whose SQL does not bind, naming its key."""
    section = project.metrics
    label = project.file.name
    problems: list[str] = []
    failed: set[str] = set()
    for name in section.models:
        found = _model_problems(warehouse, section, name)
        if found:
            failed.add(name)
            problems += [f"{label}: {line}" for line in found]
    asked: dict[str, MetricQuery] = {}
    for name in section.metrics:
        models = {m for model, _ in measures_of(section, name) for m in reachable(section, model)}
        if not models & failed:
            asked[f"metrics.metrics.{name}"] = MetricQuery(
                (name,), by=tuple(common_dimensions(section, name)),
                grain=next(iter(allowed_grains(section, name)), None), limit=0,
            )  # fmt: skip
    for name, alert in section.alerts.items():
        try:
            asked[f"metrics.alerts.{name}"] = alert_query(alert)
        except ConfigError as error:
            problems.append(f"{label}: metrics.alerts.{name}.where: {error.problems[0]}")
    for key, query in asked.items():
        try:
            sql, params = compile_canonical(section, query)
        except ConfigError as error:
            problems.append(f"{label}: {key}: {error.problems[0]}")
            continue
        problem = _binds(warehouse, sql, params)
        if problem and not (key.startswith("metrics.alerts.") and failed):
            problems.append(f"{label}: {key}: {problem}")
    return problems


def _binds(warehouse: Warehouse, sql: str, params: list[object] | None = None) -> str | None:
    """None when the engine binds the query, else its binding error (other errors: None)."""
    try:
        warehouse.query(f"SELECT * FROM ({sql}) AS q LIMIT 0", params)
    except WarehouseError as error:
        kind, _, message = str(error).split("\n")[0].partition(": ")
        if kind in BINDING_ERRORS:
            return message
    return None


def _model_problems(warehouse: Warehouse, section: MetricsConfig, name: str) -> list[str]:
    model = section.models[name]
    where = f"metrics.models.{name}"
    source = _table(model, "t")
    key = f"{where}.{'model' if model.model else 'table'}"
    problem = _binds(warehouse, exp.select("*").from_(source).sql("duckdb"))
    if problem:
        return [f"{key}: {problem}"]
    parts: dict[str, exp.Expr] = {}
    if model.time is not None:
        time = dimension_sql(model, model.time.dimension_name, "t")
        parts[f"{where}.time"] = bucket_sql(time, model.time.grains[0])
    for dimension in model.dimensions:
        parts[f"{where}.dimensions.{dimension}"] = dimension_sql(model, dimension, "t")
    for measure in model.measures:
        parts[f"{where}.measures.{measure}"] = measure_sql(model, measure, "t")
    problems = []
    for part, sql in parts.items():
        problem = _binds(warehouse, exp.select(sql).from_(source.copy()).sql("duckdb"))
        if problem:
            problems.append(f"{part}: {problem}")
    for join_name, join in model.joins.items():
        other = _table(section.models[join.model], "j")
        on = exp.and_(*[
            exp.EQ(this=_column(mine, "t"), expression=_column(theirs, "j"))
            for mine, theirs in join.on.items()
        ])  # fmt: skip
        select = exp.select("*").from_(source.copy()).join(other, on=on)
        problem = _binds(warehouse, select.sql("duckdb"))
        if problem:
            problems.append(f"{where}.joins.{join_name}: {problem}")
    return problems
