"""The `anchor:` section of the project file: entities, attributes, ties and knots.

```yaml
anchor:
  knots:
    Platform: {type: VARCHAR}                  # a small shared value set: anchor.Platform
  entities:
    User:
      key: user_id                             # natural key column(s) of anchor.User
      sources: [events]                        # staging models whose rows carry the key
      changed_at: event_time                   # default for the attributes below
      attributes:                              # one table each: anchor.User_country, ...
        country: {model: events, history: scd2}
        first_platform: {model: events, value: platform, knot: Platform, history: scd0}
  ties:
    Device_User:                               # anchor.Device_User (device_id, user_id, ...)
      model: events
      roles: {Device: device_id, User: user_id}
      identifier: [Device]                     # a device has one user at a time (scd2)
      history: scd2
      changed_at: event_time
```

Everything here is checked against the staging models at load, so a typo is one line that names
the key, never a failure in the middle of a load.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from anchorflow.config.staging import staging_columns
from anchorflow.project_types import Identifier, MemorySize, Strict, canonical_type

History = Literal["scd0", "scd1", "scd2"]

# The columns anchorflow adds to the anchor tables; `anchor.ddl` makes the tables from these, so
# a natural key or a tie role checked against them cannot take a name the engine would refuse.
SURROGATE = {"id": "BIGINT"}  # entities and knots, before their key (or value)
LOAD_AUDIT = {"load_id": "BIGINT", "loaded_at": "TIMESTAMP"}  # entities and knots, last
HISTORY_AUDIT = {"changed_at": "TIMESTAMP", "load_id": "BIGINT"}  # attributes and ties, last


def _names(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Names = Annotated[list[Identifier], BeforeValidator(_names)]


class Knot(Strict):
    """A small shared value set (country, platform): anchor.<Knot> (id, value)."""

    type: str = "VARCHAR"
    description: str | None = None

    @field_validator("type")
    @classmethod
    def _type_is_sql(cls, value: str) -> str:
        return canonical_type(value)


class Attribute(Strict):
    """One attribute of an entity: anchor.<Entity>_<name> (id, value, changed_at, load_id)."""

    model: Identifier
    value: Identifier | None = None  # the staging column; default: the attribute's name
    key: Names | None = None  # the model's columns for the entity's key; default: its names
    type: str | None = None  # default: the staging column's type
    knot: Identifier | None = None
    history: History = "scd2"
    changed_at: Identifier | None = None  # default: the entity's changed_at
    description: str | None = None

    @field_validator("type")
    @classmethod
    def _type_is_sql(cls, value: str | None) -> str | None:
        return None if value is None else canonical_type(value)


def _attribute(value: Any) -> Any:
    # `country: events` is shorthand for {model: events}
    return {"model": value} if isinstance(value, str) else value


def _sources(value: Any) -> Any:
    # `sources: events` or `[events, sessions]` or `{events: [user_id]}`: model → key columns
    if isinstance(value, str):
        return {value: None}
    if isinstance(value, list):
        return dict.fromkeys(value)
    return value


class Entity(Strict):
    key: Names
    sources: Annotated[dict[Identifier, Names | None], BeforeValidator(_sources)] = {}
    changed_at: Identifier | None = None
    description: str | None = None
    attributes: dict[Identifier, Annotated[Attribute, BeforeValidator(_attribute)]] = {}


def _role(value: Any) -> Any:
    # `Device: device_id` → {entity: Device, key: [device_id]} (the role is named after it)
    if isinstance(value, str | list):
        return {"key": value}
    return value


class Role(Strict):
    entity: Identifier | None = None  # default: the role's name
    key: Names  # the model's columns holding that entity's natural key


class Tie(Strict):
    """A relation between two or more entities: anchor.<name> (one <role>_id each, ...)."""

    model: Identifier
    roles: dict[Identifier, Annotated[Role, BeforeValidator(_role)]]
    identifier: Names | None = None  # the roles one instance is about; default: all of them
    history: History = "scd2"
    changed_at: Identifier
    description: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Tie:
        if len(self.roles) < 2:
            raise ValueError("a tie needs at least two roles")
        unknown = [r for r in self.identifier or [] if r not in self.roles]
        if unknown:
            raise ValueError(f"identifier: {unknown[0]!r} is not one of the roles")
        return self

    def entity_of(self, role: str) -> str:
        return self.roles[role].entity or role

    @property
    def identifier_roles(self) -> list[str]:
        return list(self.identifier or self.roles)

    @property
    def value_roles(self) -> list[str]:
        return [r for r in self.roles if r not in self.identifier_roles]


class AnchorSpec(Strict):
    workers: int | None = Field(
        default=None, ge=1, le=16, description="connections loading attributes and ties at once"
    )
    verify: Literal["history", "counts"] = Field(
        default="history",
        description="after each load, check every observation against the history (history) "
        "or only ids, duplicates and row counts (counts)",
    )
    batch_rows: int = Field(
        default=8_000_000,
        ge=1,
        description="staged rows one attribute or tie takes at once; more are loaded in passes "
        "by key (in the same transaction), which bounds the memory of a large batch",
    )
    group_rows: int | None = Field(
        default=10_000_000,
        ge=1,
        description="staged rows the anchor step takes at once: more pending loads are "
        "anchored in groups of consecutive loads under this budget, each group committed "
        "before the next (a load bigger than it goes alone), with DuckDB's memory capped at "
        "group_memory_limit meanwhile, which bounds the memory of a large batch; null: every "
        "pending load at once",
    )
    group_memory_limit: MemorySize | None = Field(
        default="2500MB",
        description="DuckDB: the engine's memory while a batch larger than group_rows is "
        "anchored in groups (the lower of it and memory_limit); null: no cap for groups",
    )
    memory_limit: MemorySize | None = Field(
        default=None,
        description="DuckDB: the engine's memory while it anchors (its cache of what it read "
        "included; beyond it, temporary data spills to disk), so that a large batch does not "
        "grow the process to most of the RAM; a lower warehouse memory_limit is kept; "
        "null (the default): the warehouse's",
    )
    knots: dict[Identifier, Knot] = {}
    entities: dict[Identifier, Entity] = {}
    ties: dict[Identifier, Tie] = Field(default_factory=dict)

    def tables(self) -> list[tuple[str, str]]:
        """Every table, view and macro of the anchor schema, with the key that makes it."""
        found = [(name, f"knots.{name}") for name in self.knots]
        for name, entity in self.entities.items():
            found.append((name, f"entities.{name}"))
            for view in ("latest", "as_of", "history"):
                found.append((f"{name}_{view}", f"entities.{name} (its {view} perspective)"))
            found.append((f"{name}_current", f"entities.{name} (its serving table)"))
            for attr_name in entity.attributes:
                found.append((f"{name}_{attr_name}", f"entities.{name}.attributes.{attr_name}"))
        return found + [(name, f"ties.{name}") for name in self.ties]

    def problems(self, staging: dict[str, Any]) -> list[str]:
        """Every reference checked against the staging models: `anchor.<path>: <problem>`."""
        problems: list[str] = []

        def column(where: str, model: str, name: str) -> str | None:
            if model not in staging:
                known = ", ".join(sorted(staging)) or "none"
                problems.append(f"anchor.{where}: unknown staging model {model!r} ({known})")
                return None
            stored = staging_columns(staging[model])
            if name not in stored:
                problems.append(
                    f"anchor.{where}: staging.{model} has no column {name!r} "
                    f"(columns: {', '.join(stored)})"
                )
                return None
            return stored[name]

        tables: dict[str, str] = {}

        def claim(name: str, where: str) -> None:
            if len(name) > 63:
                problems.append(
                    f"anchor.{where}: its table name {name!r} is longer than 63 characters; "
                    "shorten the name"
                )
                return
            other = tables.setdefault(name.lower(), where)
            if other != where:
                problems.append(f"anchor.{where}: its table anchor.{name} clashes with {other}")

        for name, where in self.tables():
            claim(name, where)
        for name, entity in self.entities.items():
            self._check_entity_key(name, entity, problems)
            own = {c.lower() for c in [*SURROGATE, *entity.key]}
            taken = [a for a in entity.attributes if a.lower() in own]
            if taken:
                problems.append(
                    f"anchor.entities.{name}.attributes.{taken[0]}: the name is taken by the "
                    "entity's id or natural key (names ignore case)"
                )
            for model, keys in entity.sources.items():
                self._check_keys(f"entities.{name}.sources.{model}", entity, keys, model, column,
                                 problems)  # fmt: skip
            for attr_name, attr in entity.attributes.items():
                where = f"entities.{name}.attributes.{attr_name}"
                self._check_keys(where, entity, attr.key, attr.model, column, problems)
                value_type = column(f"{where}.value", attr.model, attr.value or attr_name)
                changed_at = attr.changed_at or entity.changed_at
                if changed_at is None:
                    problems.append(
                        f"anchor.{where}: changed_at is missing: name the column that says when "
                        "the value became true (here or on the entity)"
                    )
                else:
                    column(f"{where}.changed_at", attr.model, changed_at)
                if attr.knot and attr.knot not in self.knots:
                    problems.append(f"anchor.{where}.knot: unknown knot {attr.knot!r}")
                elif attr.knot and value_type and value_type != self.knots[attr.knot].type:
                    problems.append(
                        f"anchor.{where}: staging type {value_type} differs from knot "
                        f"{attr.knot}'s type {self.knots[attr.knot].type}"
                    )
        for name, tie in self.ties.items():
            for role_name, role in tie.roles.items():
                entity_name = tie.entity_of(role_name)
                where = f"ties.{name}.roles.{role_name}"
                if entity_name not in self.entities:
                    problems.append(f"anchor.{where}: unknown entity {entity_name!r}")
                    continue
                self._check_keys(where, self.entities[entity_name], role.key, tie.model, column,
                                 problems)  # fmt: skip
            column(f"ties.{name}.changed_at", tie.model, tie.changed_at)
            id_columns = [role_column(r) for r in tie.roles]
            if len({c.lower() for c in id_columns}) != len(id_columns):
                problems.append(f"anchor.ties.{name}: role names must differ in more than case")
            for role_name in tie.roles:
                if role_column(role_name) in HISTORY_AUDIT:
                    problems.append(
                        f"anchor.ties.{name}.roles.{role_name}: its column "
                        f"{role_column(role_name)} is one anchorflow adds to every tie "
                        f"({', '.join(HISTORY_AUDIT)}); rename the role and name its entity "
                        f"with entity: {tie.entity_of(role_name)}"
                    )
        return problems

    @staticmethod
    def _check_entity_key(name: str, entity: Entity, problems: list[str]) -> None:
        """The key's columns sit in anchor.<name> next to the ones anchorflow adds."""
        added = [*SURROGATE, *LOAD_AUDIT]
        model = next(iter(entity.sources), "<model>")
        seen: dict[str, str] = {}
        for key in entity.key:
            if key.lower() in added:
                problems.append(
                    f"anchor.entities.{name}.key: {key!r} is a column anchorflow adds to "
                    f"anchor.{name} ({', '.join(added)}); name the key otherwise and map the "
                    f"model's column to it: sources: {{{model}: [{key}]}}"
                )
            elif seen.setdefault(key.lower(), key) != key:
                problems.append(
                    f"anchor.entities.{name}.key: {seen[key.lower()]!r} and {key!r} differ only "
                    "in case, and the engine's names ignore case"
                )

    @staticmethod
    def _check_keys(where, entity, keys, model, column, problems) -> None:  # type: ignore[no-untyped-def]
        keys = keys or entity.key
        if len(keys) != len(entity.key):
            problems.append(
                f"anchor.{where}: {len(keys)} key column(s) for a key of {len(entity.key)}"
            )
            return
        for key in keys:
            column(where, model, key)


def role_column(role: str) -> str:
    return f"{role.lower()}_id"
