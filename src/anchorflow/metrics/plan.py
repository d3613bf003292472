"""Where each name of a query lives: the metrics' measures, and the dimensions reachable from
each measure's model without fanning it out.

From a model, a join is followed towards the "one" side only: along a declared `many_to_one`
or `one_to_one` join, or back along a `one_to_one` join declared by the other model. A
dimension found only on the "many" side of a join is refused, because every row of the
measure's model would count once per matching row there.
"""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass

from anchorflow.config.metrics import GRAINS, MetricsConfig, SemanticModel
from anchorflow.errors import ConfigError


@dataclass(frozen=True)
class Hop:
    """One join followed: to `model` (as `alias`), on (column of the previous, column here)."""

    join: str
    model: str
    alias: str
    on: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Path:
    """A model reached from the measure's model, by the joins followed to it."""

    hops: tuple[Hop, ...]

    @property
    def alias(self) -> str:
        return self.hops[-1].alias if self.hops else "t"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(hop.join for hop in self.hops)


def edges(section: MetricsConfig, name: str) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(join name, model, key pairs) of the joins a measure of `name` may follow."""
    model = section.models[name]
    found = [(j, join.model, tuple(join.on.items())) for j, join in model.joins.items()]
    for other_name, other in section.models.items():
        for join in other.joins.values():
            if join.model == name and join.relationship == "one_to_one":
                pairs = tuple((mine, theirs) for theirs, mine in join.on.items())
                found.append((f"{other_name}", other_name, pairs))
    return found


def reachable(section: MetricsConfig, name: str) -> dict[str, list[Path]]:
    """Every model a measure of `name` may read dimensions from, by model, nearest first
    (breadth first; a model met again on a longer path is reached by both)."""
    found: dict[str, list[Path]] = {name: [Path(())]}
    queue = deque([(name, Path(()), frozenset([name]))])
    count = 0
    while queue:
        current, path, seen = queue.popleft()
        for join_name, target, on in edges(section, current):
            if target in seen:
                continue
            count += 1
            next_path = Path((*path.hops, Hop(join_name, target, f"j{count}", on)))
            found.setdefault(target, []).append(next_path)
            queue.append((target, next_path, seen | {target}))
    return found


def fan_out_models(section: MetricsConfig, name: str) -> set[str]:
    """The models joined to the reachable ones on their "many" side."""
    near = set(reachable(section, name))
    return {
        other_name
        for other_name, other in section.models.items()
        if other_name not in near
        for join in other.joins.values()
        if join.model in near and join.relationship == "many_to_one"
    }


@dataclass(frozen=True)
class DimensionRef:
    name: str  # as asked
    model: str  # the model that has it
    dimension: str  # its name there
    path: Path
    is_time: bool = False


def model_dimensions(model: SemanticModel) -> list[str]:
    names = list(model.dimensions)
    return ([model.time.dimension_name] if model.time else []) + names


def resolve_dimension(section: MetricsConfig, measure_model: str, asked: str) -> DimensionRef:
    """The dimension `asked` (bare, or `<join>.<dimension>`) as a measure of `measure_model`
    reaches it; ConfigError naming what exists, or refusing a fan-out."""
    paths = reachable(section, measure_model)
    if "." in asked:
        join, _, dimension = asked.partition(".")
        for model, model_paths in paths.items():
            for path in model_paths:
                if path.names[-1:] == (join,) and dimension in section.models[model].dimensions:
                    return DimensionRef(asked, model, dimension, path)
    else:
        own = section.models[measure_model]
        if own.time is not None and asked == own.time.dimension_name:
            return DimensionRef(asked, measure_model, asked, Path(()), is_time=True)
        candidates = sorted(
            (len(path.hops), model, path)
            for model, model_paths in paths.items()
            for path in model_paths
            if asked in section.models[model].dimensions
        )
        if candidates:
            nearest = [c for c in candidates if c[0] == candidates[0][0]]
            if len(nearest) > 1:
                shown = ", ".join(f"{'.'.join(c[2].names)}.{asked}" for c in nearest)
                raise ConfigError([
                    f"metrics: dimension {asked!r} is on several models joined to "
                    f"{measure_model}; name one: {shown}"
                ])  # fmt: skip
            _, model, path = candidates[0]
            return DimensionRef(asked, model, asked, path)
    raise ConfigError([_unknown_dimension(section, measure_model, asked)])


def _unknown_dimension(section: MetricsConfig, measure_model: str, asked: str) -> str:
    bare = asked.rpartition(".")[2]
    for other in sorted(fan_out_models(section, measure_model)):
        if bare in model_dimensions(section.models[other]):
            return (
                f"metrics: refused: dimension {asked!r} is on {other}, on the many side of a "
                f"join from {measure_model} (one_to_many): each {measure_model} row would count "
                f"once per {other} row; ask a metric of {other} for it"
            )
    known = available_dimensions(section, measure_model)
    close = difflib.get_close_matches(asked, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"metrics: model {measure_model} reaches no dimension {asked!r} ({hint}"
        f"dimensions: {', '.join(known) or 'none'})"
    )


def available_dimensions(section: MetricsConfig, measure_model: str) -> list[str]:
    """The dimension names a measure of the model can be grouped or filtered by."""
    names: list[str] = []
    for model, paths in reachable(section, measure_model).items():
        for path in paths:
            spec = section.models[model]
            if not path.hops:
                names += model_dimensions(spec)
                continue
            for dimension in spec.dimensions:
                try:
                    found = resolve_dimension(section, measure_model, dimension)
                except ConfigError:
                    found = None
                names.append(
                    dimension
                    if found is not None and found.path == path
                    else f"{path.names[-1]}.{dimension}"
                )
    return list(dict.fromkeys(names))


def measures_of(section: MetricsConfig, metric: str) -> list[tuple[str, str]]:
    """(model, measure) of every measure the metric is computed from, in order."""
    spec = section.metrics[metric]
    if spec.measure is not None:
        return [spec.model_and_measure]
    assert spec.ratio is not None
    return [m for operand in spec.ratio for m in measures_of(section, operand)]


def metric_models(section: MetricsConfig, metric: str) -> list[str]:
    return list(dict.fromkeys(model for model, _ in measures_of(section, metric)))


def allowed_grains(section: MetricsConfig, metric: str) -> list[str]:
    """The grains every model of the metric has (none where one has no time dimension)."""
    grains = set(GRAINS)
    for model in metric_models(section, metric):
        time = section.models[model].time
        grains &= set(time.grains) if time else set()
    return [g for g in GRAINS if g in grains]


def common_dimensions(section: MetricsConfig, metric: str) -> list[str]:
    """The dimension names every model of the metric reaches (without its time dimension)."""
    models = metric_models(section, metric)
    lists = [available_dimensions(section, m) for m in models]
    times = {t.dimension_name for m in models if (t := section.models[m].time) is not None}
    first = [d for d in lists[0] if d not in times] if lists else []
    return [d for d in first if all(d in other for other in lists[1:])]


def known_metric(section: MetricsConfig, name: str) -> None:
    if name not in section.metrics:
        known = list(section.metrics)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            [f"metrics: unknown metric {name!r} ({hint}metrics: {', '.join(known) or 'none'})"]
        )
