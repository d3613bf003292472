"""A metric query run on the warehouse, and what the pickers of the Explore page list."""

from __future__ import annotations

import time
from dataclasses import dataclass

from anchorflow.config.project import Project
from anchorflow.metrics.compile import compile_canonical, compile_query
from anchorflow.metrics.plan import allowed_grains, common_dimensions, metric_models
from anchorflow.metrics.query import MetricQuery, MetricResult
from anchorflow.warehouse import Warehouse


def run_query(warehouse: Warehouse, project: Project, query: MetricQuery) -> MetricResult:
    """The query's rows, with the SQL as the engine runs it (shown beside the result)."""
    sql, params = compile_canonical(project.metrics, query)
    shown, _ = compile_query(project.metrics, query, warehouse.dialect)
    started = time.perf_counter()
    rows = warehouse.query(sql, params)
    seconds = time.perf_counter() - started
    columns = ([query.grain] if query.grain else []) + list(query.by) + list(query.metrics)
    return MetricResult(columns, rows, shown, params, seconds, list(query.metrics))


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    model: str  # the model of its measure (a ratio: its models, joined by +)
    description: str | None
    dimensions: list[str]
    time_dimension: str | None
    grains: list[str]
    format: str | None


def describe(project: Project) -> list[MetricInfo]:
    """Every metric with what it can be grouped by and at which grains, in the file's order."""
    section = project.metrics
    infos = []
    for name, spec in section.metrics.items():
        models = metric_models(section, name)
        time = section.models[models[0]].time
        infos.append(
            MetricInfo(
                name=name,
                label=spec.label or name.replace("_", " ").capitalize(),
                model="+".join(models),
                description=spec.description,
                dimensions=common_dimensions(section, name),
                time_dimension=time.dimension_name if time and len(models) == 1 else None,
                grains=allowed_grains(section, name),
                format=spec.format,
            )
        )
    return infos
