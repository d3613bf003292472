"""The `metrics:` section: the semantic layer's models, metrics and threshold alerts.

A semantic model reads one table the project makes (a staging model, a mart, an anchor
perspective) and names what may be asked of it: a time dimension with its grains, dimensions
(columns or SQL expressions over the table's columns), measures (an aggregate, optionally over
the rows a filter keeps), and joins to other semantic models with a declared relationship. A
metric is a named measure with a label, or the ratio of two metrics:

```yaml
metrics:
  models:
    events:
      model: events                       # staging.events; or table: marts.daily_active_users
      time: {column: event_time, grains: [hour, day, week, month]}
      dimensions: {country: country, platform: platform, paying: {sql: "amount > 0"}}
      measures:
        events: {agg: count}
        active_users: {agg: count_distinct, sql: "coalesce(user_id, device_id)"}
        revenue: {agg: sum, column: amount, filter: "event_type = 'purchase'"}
      joins:
        account: {model: accounts, relationship: many_to_one, on: {user_id: user_id}}
  metrics:
    revenue: {measure: events.revenue, label: Revenue, format: currency}
    conversion: {ratio: [purchasers, active_users], label: Purchase conversion, format: percent}
  alerts:
    revenue_drop: {metric: revenue, grain: day, change: {by: -30%, against: previous_period}}
```

A join is followed only from the measure's model towards the "one" side (`many_to_one`,
`one_to_one`), so a measure is never counted once per row of another table (fan-out).

Pure: nothing here opens a database. `metric_problems` checks the references that the project
file alone can answer (tables, staging columns, joins, metrics of ratios and alerts).
"""

from __future__ import annotations

import difflib
import graphlib
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from anchorflow.config.tables import TableRef, sql_expression
from anchorflow.project_types import IDENTIFIER, Duration, Identifier, Strict

if TYPE_CHECKING:
    from anchorflow.config.project import Project

GRAINS = ("hour", "day", "week", "month", "quarter", "year")
AGGREGATES = ("count", "count_distinct", "approx_count_distinct", "sum", "avg", "min", "max")
PERCENT = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*%\s*$")


class Dimension(Strict):
    """A column of the model's table (`country: country` for short), or a SQL expression over
    its columns (`{sql: "amount > 0"}`)."""

    column: Identifier | None = None
    sql: str | None = None
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return {"column": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> Dimension:
        if (self.column is None) == (self.sql is None):
            raise ValueError("give the dimension a column: or an sql: expression")
        if self.sql is not None:
            sql_expression(self.sql)
        return self


class TimeDimension(Strict):
    column: Identifier | None = None
    sql: str | None = None
    name: Identifier | None = Field(
        default=None, description="what filters call it (default: the column's name, or time)"
    )
    grains: list[Literal["hour", "day", "week", "month", "quarter", "year"]] = [
        "day", "week", "month",
    ]  # fmt: skip

    @model_validator(mode="after")
    def _one_source(self) -> TimeDimension:
        if (self.column is None) == (self.sql is None):
            raise ValueError("give the time dimension a column: or an sql: expression")
        if self.sql is not None:
            sql_expression(self.sql)
        if not self.grains:
            raise ValueError("grains: name at least one of " + ", ".join(GRAINS))
        return self

    @property
    def dimension_name(self) -> str:
        return self.name or self.column or "time"


class Measure(Strict):
    agg: Literal["count", "count_distinct", "approx_count_distinct", "sum", "avg", "min", "max"]
    column: Identifier | None = None
    sql: str | None = None
    filter: str | None = Field(default=None, description="only the rows this SQL keeps")

    @field_validator("sql", "filter")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        return None if value is None else sql_expression(value)

    @model_validator(mode="after")
    def _operand(self) -> Measure:
        if self.column is not None and self.sql is not None:
            raise ValueError("give a measure column: or sql:, not both")
        if self.agg != "count" and self.column is None and self.sql is None:
            raise ValueError(f"agg {self.agg} needs column: or sql:")
        return self


class Join(Strict):
    model: Identifier = Field(description="the semantic model joined")
    relationship: Literal["many_to_one", "one_to_one"]
    on: dict[Identifier, Identifier] = Field(
        description="this model's column → the joined model's column"
    )

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: object) -> object:
        """YAML 1.1 reads the key `on` as true: take it back."""
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data

    @field_validator("on")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("name at least one key column: {this_column: other_column}")
        return value


class SemanticModel(TableRef):
    description: str | None = None
    time: TimeDimension | None = None
    dimensions: dict[Identifier, Dimension] = {}
    measures: dict[Identifier, Measure] = {}
    joins: dict[Identifier, Join] = {}

    @model_validator(mode="after")
    def _time_apart(self) -> SemanticModel:
        if self.time is not None and self.time.dimension_name in self.dimensions:
            raise ValueError(f"dimensions.{self.time.dimension_name}: the time dimension's name")
        return self


class Metric(Strict):
    measure: str | None = Field(default=None, description="<model>.<measure>")
    ratio: tuple[Identifier, Identifier] | None = Field(
        default=None, description="[numerator metric, denominator metric]"
    )
    label: str | None = None
    description: str | None = None
    format: Literal["number", "integer", "percent", "currency", "duration"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Metric:
        if (self.measure is None) == (self.ratio is None):
            raise ValueError("a metric is a measure: <model>.<measure> or a ratio: [a, b]")
        if self.measure is not None:
            model, _, measure = self.measure.partition(".")
            if not (IDENTIFIER.match(model) and IDENTIFIER.match(measure)):
                raise ValueError(f"measure: expected <model>.<measure>, got {self.measure!r}")
        return self

    @property
    def model_and_measure(self) -> tuple[str, str]:
        model, _, measure = (self.measure or "").partition(".")
        return model, measure


class Change(Strict):
    by: float = Field(description="a percentage: -30% (a drop), 20% (a rise), ±: either")
    against: Literal["previous_period"] = "previous_period"

    @field_validator("by", mode="before")
    @classmethod
    def _percent(cls, value: object) -> float:
        match = PERCENT.match(str(value))
        if not match:
            raise ValueError(f"expected a percentage such as -30% or 20%, got {value!r}")
        number = float(match.group(1))
        if number == 0:
            raise ValueError("a change of 0% is every change")
        return number


class MetricAlert(Strict):
    """A threshold on a metric at a grain: the latest complete period is compared."""

    metric: Identifier
    grain: Literal["hour", "day", "week", "month", "quarter", "year"] = "day"
    above: float | None = None
    below: float | None = None
    change: Change | None = None
    by: list[str] = Field(default=[], description="dimensions: one state per value")
    where: list[str] = Field(default=[], description="filters such as `country = DE`")
    lag: Duration = Field(
        default=timedelta(0),
        description="how long after a period ends its data is complete (late loads)",
    )
    description: str | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> MetricAlert:
        if sum(c is not None for c in (self.above, self.below, self.change)) != 1:
            raise ValueError("give the alert one condition: above:, below: or change:")
        return self

    def condition(self) -> str:
        if self.above is not None:
            return f"above {self.above:g}"
        if self.below is not None:
            return f"below {self.below:g}"
        assert self.change is not None
        return f"change {self.change.by:+g}% against the previous {self.grain}"


class MetricsConfig(Strict):
    models: dict[Identifier, SemanticModel] = {}
    metrics: dict[Identifier, Metric] = {}
    alerts: dict[Identifier, MetricAlert] = {}

    @property
    def configured(self) -> bool:
        return bool(self.metrics)

    def formats(self) -> dict[str, str | None]:
        """Each metric's display format (number, integer, percent, currency, duration)."""
        return {name: metric.format for name, metric in self.metrics.items()}

    @model_validator(mode="after")
    def _references(self) -> MetricsConfig:
        problems = self.reference_problems()
        if problems:
            raise ValueError(problems[0])
        return self

    def reference_problems(self) -> list[str]:
        """One line per reference inside the section that names nothing, or joins in a loop."""
        problems: list[str] = []
        for name, model in self.models.items():
            for join_name, join in model.joins.items():
                if join.model not in self.models:
                    problems.append(
                        f"metrics.models.{name}.joins.{join_name}.model: unknown model "
                        f"{join.model!r}{_suggest(join.model, self.models)}"
                    )
        for name, metric in self.metrics.items():
            where = f"metrics.metrics.{name}"
            if metric.measure is not None:
                owner, measure = metric.model_and_measure
                if owner not in self.models:
                    problems.append(
                        f"{where}.measure: unknown model {owner!r}{_suggest(owner, self.models)}"
                    )
                elif measure not in self.models[owner].measures:
                    measures = self.models[owner].measures
                    problems.append(
                        f"{where}.measure: model {owner} has no measure {measure!r}"
                        f"{_suggest(measure, measures)}"
                    )
            for operand in metric.ratio or ():
                if operand not in self.metrics:
                    problems.append(
                        f"{where}.ratio: unknown metric {operand!r}"
                        f"{_suggest(operand, self.metrics)}"
                    )
        for name, alert in self.alerts.items():
            if alert.metric not in self.metrics:
                problems.append(
                    f"metrics.alerts.{name}.metric: unknown metric {alert.metric!r}"
                    f"{_suggest(alert.metric, self.metrics)}"
                )
        return problems or self._cycles() or self._alert_grains()

    def _models_of(self, metric: str, seen: frozenset[str] = frozenset()) -> set[str]:
        spec = self.metrics[metric]
        if spec.ratio is None:
            return {spec.model_and_measure[0]}
        if metric in seen:
            return set()
        return {m for operand in spec.ratio for m in self._models_of(operand, seen | {metric})}

    def _alert_grains(self) -> list[str]:
        problems = []
        for name, alert in self.alerts.items():
            for model in sorted(self._models_of(alert.metric)):
                time = self.models[model].time
                if time is None or alert.grain not in time.grains:
                    grains = ", ".join(time.grains) if time else "none: it has no time:"
                    problems.append(
                        f"metrics.alerts.{name}.grain: model {model} (of metric {alert.metric}) "
                        f"has no grain {alert.grain!r} (grains: {grains})"
                    )
        return problems

    def _cycles(self) -> list[str]:
        joins = {name: {j.model for j in m.joins.values()} for name, m in self.models.items()}
        ratios = {name: set(m.ratio or ()) for name, m in self.metrics.items()}
        for graph, what in (
            (joins, "metrics.models: their joins"),
            (ratios, "metrics.metrics: their ratios"),
        ):
            try:
                graphlib.TopologicalSorter(graph).prepare()
            except graphlib.CycleError as error:
                return [f"{what} form a cycle: {' → '.join(error.args[1])}"]
        return []


def _suggest(name: str, known: object) -> str:
    names = list(known)  # type: ignore[call-overload]
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(names) or 'none'})"


def model_columns(name: str, model: SemanticModel) -> dict[str, str]:
    """Every column the semantic model names on its table, with the key naming it."""
    used: dict[str, str] = {}
    where = f"metrics.models.{name}"
    if model.time is not None and model.time.column is not None:
        used[f"{where}.time.column"] = model.time.column
    for dim_name, dim in model.dimensions.items():
        if dim.column is not None:
            used[f"{where}.dimensions.{dim_name}"] = dim.column
    for measure_name, measure in model.measures.items():
        if measure.column is not None:
            used[f"{where}.measures.{measure_name}.column"] = measure.column
    for join_name, join in model.joins.items():
        for key in join.on:
            used[f"{where}.joins.{join_name}.on.{key}"] = key
    return used


def metric_problems(project: Project, marts: list[str]) -> list[str]:
    """One line per table the project does not make, and per column a staging model lacks."""
    from anchorflow.config.staging import staging_columns

    section = project.metrics
    anchor = {name.lower() for name, _ in project.anchor.tables()}
    known = {"marts": {m.lower() for m in marts}, "anchor": anchor}
    problems = []
    for name, model in section.models.items():
        schema, table = model.schema_and_name
        if schema == "staging":
            if table not in project.staging:
                problems.append(
                    f"metrics.models.{name}.model: unknown staging model {table!r}"
                    f"{_suggest(table, project.staging)}"
                )
                continue
            stored = {"load_id", *staging_columns(project.staging[table])}
            problems += [
                f"{key}: staging.{table} has no column {column!r}{_suggest(column, stored)}"
                for key, column in model_columns(name, model).items()
                if column not in stored
            ]
        elif table.lower() not in known[schema]:
            problems.append(
                f"metrics.models.{name}.table: the project makes no {schema}.{table}"
                f"{_suggest(table, sorted(known[schema]))}"
            )
    for name, model in section.models.items():
        for join_name, join in model.joins.items():
            other = section.models[join.model]
            if other.model is not None and other.model in project.staging:
                stored = {"load_id", *staging_columns(project.staging[other.model])}
                problems += [
                    f"metrics.models.{name}.joins.{join_name}.on.{key}: staging.{other.model} "
                    f"has no column {column!r}"
                    for key, column in join.on.items()
                    if column not in stored
                ]
    return problems
