"""The anchor declaration resolved against staging: every table, its columns and where they
come from. Loading, DDL, views and queries all read this one plan, never the raw spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from anchorflow.config.anchor import role_column
from anchorflow.config.project import Project
from anchorflow.config.staging import staging_columns
from anchorflow.warehouse import table

SCHEMA = "anchor"


def anchor_table(name: str) -> str:
    """`"anchor"."<name>"`, validated and quoted."""
    return table(SCHEMA, name)


@dataclass(frozen=True)
class EntityPlan:
    name: str
    key: list[str]  # natural key columns of anchor.<name>
    key_types: list[str]
    # staging model → its column sets holding the key: one per role or attribute that reads a
    # different column of that model (a referrer_id besides the user_id)
    sources: dict[str, list[list[str]]]


@dataclass(frozen=True)
class KnotPlan:
    name: str
    type: str
    feeders: list[tuple[str, str]]  # (staging model, value column)


@dataclass(frozen=True)
class RolePlan:
    role: str
    entity: str
    column: str  # the id column in the target table
    model_key: list[str]  # the model's columns holding the entity's natural key


@dataclass(frozen=True)
class TargetPlan:
    """An attribute or a tie: a historized relation of identifier ids → value(s) over time."""

    kind: str  # attribute | tie
    table: str
    model: str
    history: str
    changed_at: str  # the staging column
    identifiers: list[RolePlan]
    values: list[RolePlan] = field(default_factory=list)  # a tie's other roles
    value: str | None = None  # an attribute's staging column
    value_type: str | None = None  # what anchor.<table>.value holds (BIGINT for a knot)
    knot: str | None = None
    entity: str | None = None  # an attribute's entity
    attribute: str | None = None  # an attribute's name

    @property
    def key_columns(self) -> list[str]:
        return [r.column for r in self.identifiers]

    @property
    def value_columns(self) -> list[str]:
        return ["value"] if self.kind == "attribute" else [r.column for r in self.values]

    @property
    def roles(self) -> list[RolePlan]:
        return self.identifiers + self.values

    @property
    def effective_history(self) -> str:
        """A tie of identifiers only holds no value: it records when each pair was first seen."""
        return "scd0" if not self.value_columns else self.history


@dataclass
class AnchorPlan:
    entities: dict[str, EntityPlan]
    knots: dict[str, KnotPlan]
    targets: dict[str, TargetPlan]

    @cached_property
    def models(self) -> set[str]:
        found = {m for e in self.entities.values() for m in e.sources}
        return found | {t.model for t in self.targets.values()}

    def attributes_of(self, entity: str) -> list[TargetPlan]:
        return [t for t in self.targets.values() if t.entity == entity]

    def ties_of(self, entity: str) -> list[TargetPlan]:
        return [
            t for t in self.targets.values()
            if t.kind == "tie" and any(r.entity == entity for r in t.roles)
        ]  # fmt: skip


def build_plan(project: Project) -> AnchorPlan:
    spec = project.anchor
    feeders: dict[str, dict[str, list[list[str]]]] = {name: {} for name in spec.entities}

    def feed(entity: str, model: str, keys: list[str]) -> None:
        column_sets = feeders[entity].setdefault(model, [])
        if keys not in column_sets:
            column_sets.append(keys)

    knot_feeders: dict[str, list[tuple[str, str]]] = {name: [] for name in spec.knots}
    targets: dict[str, TargetPlan] = {}
    for name, entity in spec.entities.items():
        for model, keys in entity.sources.items():
            feed(name, model, list(keys or entity.key))
        for attr_name, attr in entity.attributes.items():
            keys = list(attr.key or entity.key)
            feed(name, attr.model, keys)
            value = attr.value or attr_name
            staged_type = staging_columns(project.staging[attr.model])[value]
            if attr.knot:
                knot_feeders[attr.knot].append((attr.model, value))
            table = f"{name}_{attr_name}"
            targets[table] = TargetPlan(
                kind="attribute", table=table, model=attr.model, history=attr.history,
                changed_at=attr.changed_at or entity.changed_at or "",
                identifiers=[RolePlan(name, name, "id", keys)], value=value,
                value_type="BIGINT" if attr.knot else (attr.type or staged_type),
                knot=attr.knot, entity=name, attribute=attr_name,
            )  # fmt: skip
    for name, tie in spec.ties.items():
        roles = {}
        for role_name, role in tie.roles.items():
            entity_name = tie.entity_of(role_name)
            feed(entity_name, tie.model, list(role.key))
            roles[role_name] = RolePlan(role_name, entity_name, role_column(role_name), role.key)
        targets[name] = TargetPlan(
            kind="tie", table=name, model=tie.model, history=tie.history,
            changed_at=tie.changed_at,
            identifiers=[roles[r] for r in tie.identifier_roles],
            values=[roles[r] for r in tie.value_roles],
        )  # fmt: skip
    entities = {}
    for name, entity in spec.entities.items():
        sources = feeders[name]
        first_model, first_sets = next(iter(sources.items()), (None, [entity.key]))
        first_keys = first_sets[0]
        types = (
            [staging_columns(project.staging[first_model])[k] for k in first_keys]
            if first_model else ["VARCHAR"] * len(entity.key)
        )  # fmt: skip
        entities[name] = EntityPlan(name, list(entity.key), types, sources)
    knots = {n: KnotPlan(n, k.type, knot_feeders[n]) for n, k in spec.knots.items()}
    return AnchorPlan(entities, knots, targets)
