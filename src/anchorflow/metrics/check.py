"""`validate`'s check of the semantic layer: every metric's SQL and every alert's query bound
on the empty scratch warehouse that holds every table the project makes, so a column a model
names that its table lacks, or an expression the engine cannot bind, is found before a run."""

from __future__ import annotations

from anchorflow.config.project import Project
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.marts import BINDING_ERRORS
from anchorflow.metrics.alerts import alert_query
from anchorflow.metrics.compile import compile_canonical
from anchorflow.metrics.plan import allowed_grains, common_dimensions
from anchorflow.metrics.query import MetricQuery
from anchorflow.warehouse import Warehouse


def binding_problems(warehouse: Warehouse, project: Project) -> list[str]:
    """One line per metric or alert whose SQL does not bind, naming it and the key."""
    section = project.metrics
    label = project.file.name
    problems: list[str] = []
    asked = {
        f"metrics.metrics.{name}": MetricQuery(
            (name,), by=tuple(common_dimensions(section, name)),
            grain=next(iter(allowed_grains(section, name)), None), limit=0,
        )
        for name in section.metrics
    }  # fmt: skip
    for name, alert in section.alerts.items():
        try:
            asked[f"metrics.alerts.{name}"] = alert_query(alert)
        except ConfigError as error:
            problems.append(f"{label}: metrics.alerts.{name}.where: {error.problems[0]}")
    for key, query in asked.items():
        try:
            sql, params = compile_canonical(section, query)
            warehouse.query(f"SELECT * FROM ({sql}) AS q LIMIT 0", params)
        except ConfigError as error:
            problems.append(f"{label}: {key}: {error.problems[0]}")
        except WarehouseError as error:
            kind, _, message = str(error).split("\n")[0].partition(": ")
            if kind in BINDING_ERRORS:
                problems.append(f"{label}: {key}: {message}")
    return problems
