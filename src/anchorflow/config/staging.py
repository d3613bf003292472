"""The `staging:` section: typed models of raw streams (columns, selectors, explode, policies).

Pure: selectors are parsed and checked by sqlglot here; running them on odd values needs the
engine, which `stage.checks` does as an explicit step of `validate` and `run`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlglot
from pydantic import BeforeValidator, Field, field_validator, model_validator
from sqlglot import exp

from anchorflow.project_types import JSON_KEY as JSON_KEY  # stage.drift reads it from here
from anchorflow.project_types import (
    Duration,
    Identifier,
    Strict,
    canonical_type,
    check_json_path,
)

RESERVED_COLUMNS = {"load_id", "origin", "line_no"}


PII_POLICIES = ("keep", "hash", "drop")
BAD_VALUE_POLICIES = ("null", "quarantine", "fail")
SELECTOR_NODES = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Not, exp.And,
    exp.Or, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Is, exp.Like,
    exp.ILike, exp.Between, exp.Cast, exp.TryCast, exp.DataType, exp.Lower, exp.Upper,
    exp.Coalesce, exp.Neg, exp.Tuple, exp.Length,
)  # fmt: skip


class Column(Strict):
    """One typed staging column: where it is in the JSON, its SQL type, and its handling.

    In a model with `explode`, a path starting with `[]` is read from the array's element:
    `[]` is the element itself, `[].sku` a key of it.
    """

    path: str
    type: str = "VARCHAR"
    description: str | None = None
    nullable: bool = True
    pii: Literal["keep", "hash", "drop"] | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if value == "[]":
            return value
        if value.startswith("[]."):
            return "[]." + check_json_path(value[3:])
        return check_json_path(value)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return canonical_type(value)

    @model_validator(mode="after")
    def _hash_is_text(self) -> Column:
        if self.pii == "hash" and self.type not in {"VARCHAR", "TEXT"}:
            raise ValueError("pii: hash stores a hex digest; the column's type must be VARCHAR")
        return self

    @property
    def in_element(self) -> bool:
        return self.path.startswith("[]")

    @property
    def keys(self) -> list[str]:
        """The keys from the record (or, for `[]` paths, from the array element)."""
        if self.in_element:
            return self.path[3:].split(".") if len(self.path) > 2 else []
        return self.path.split(".")

    @property
    def stored(self) -> bool:
        return self.pii != "drop"


def _column(value: Any) -> Any:
    # `event_type: VARCHAR` is shorthand for {path: event_type, type: VARCHAR}; the key fills in
    # the path in StagingModel.
    if isinstance(value, str):
        return {"type": value}
    return value


class Explode(Strict):
    """One row per element of the array at `path`, numbered from 0 in the `position` column."""

    path: str
    position: Identifier = "position"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_json_path(value)

    @property
    def keys(self) -> list[str]:
        return self.path.split(".")


class Thresholds(Strict):
    """When a model's staging runs: N untyped rows, or H since its last run; B rows per batch."""

    min_rows: int = Field(default=1, ge=1)
    max_age: Duration | None = None
    batch_rows: int = Field(default=2_000_000, ge=1)


class Drift(Strict):
    null_rate_jump: float = Field(default=0.25, gt=0, le=1)
    min_sample: int = Field(default=200, ge=1, description="sampled rows before a rate counts")
    ignore: list[str] = []


class StagingModel(Strict):
    source: Identifier
    stream: Identifier | None = None
    selector: str | None = None
    description: str | None = None
    unique_key: Identifier | list[Identifier] | None = None
    explode: Explode | None = None
    on_bad_value: Literal["null", "quarantine", "fail"] = "null"
    thresholds: Thresholds = Thresholds()
    sample_percent: float = Field(default=10.0, ge=0, le=100)
    drift: Drift = Drift()
    columns: dict[Identifier, Annotated[Column, BeforeValidator(_column)]]

    @model_validator(mode="before")
    @classmethod
    def _default_paths(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("columns"), dict):
            columns = {}
            for name, col in data["columns"].items():
                col = _column(col)
                if isinstance(col, dict) and "path" not in col:
                    col = {**col, "path": name}
                columns[name] = col
            data = {**data, "columns": columns}
        return data

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is not None:
            parse_selector(value)
        return value

    @model_validator(mode="after")
    def _names_are_free(self) -> StagingModel:
        # The engine's names ignore case: `Load_ID` is load_id, `amount` and `Amount` one column.
        reserved = RESERVED_COLUMNS | ({self.explode.position.lower()} if self.explode else set())
        taken = sorted(c for c in self.columns if c.lower() in reserved or c.startswith("__"))
        seen: dict[str, str] = {}
        for name in self.columns:
            if seen.setdefault(name.lower(), name) != name:
                raise ValueError(
                    f"columns {seen[name.lower()]!r} and {name!r} differ only in case, and the "
                    "engine's names ignore case; rename one"
                )
        if taken:
            raise ValueError(
                f"column {taken[0]!r} is reserved (staging uses load_id, origin and line_no"
                + (f", and {self.explode.position} for the exploded array)" if self.explode
                   else ")")
            )  # fmt: skip
        return self

    @model_validator(mode="after")
    def _exploded_rows_keep_their_position(self) -> StagingModel:
        if self.explode and self.key_columns and self.explode.position not in self.key_columns:
            raise ValueError(
                f"unique_key must include {self.explode.position!r}: the elements of one record "
                "share the record's other keys, and all but one would be dropped as duplicates"
            )
        return self

    @model_validator(mode="after")
    def _json_columns_do_not_carry_hidden_pii(self) -> StagingModel:
        for name, col in self.columns.items():
            if col.type != "JSON" or col.pii:
                continue
            for other, inner in self.columns.items():
                hidden = inner.pii in {"hash", "drop"} and not inner.in_element
                if hidden and not col.in_element and inner.path.startswith(col.path + "."):
                    raise ValueError(
                        f"columns.{name} stores the whole object {col.path}, which holds "
                        f"{inner.path} (pii: {inner.pii} in columns.{other}); map the object's "
                        "other keys instead, or give it a pii policy too"
                    )
        return self

    @model_validator(mode="after")
    def _element_paths_need_explode(self) -> StagingModel:
        for name, col in self.columns.items():
            if col.in_element and not self.explode:
                raise ValueError(f"columns.{name}: a [] path needs `explode:` on the model")
        return self

    @model_validator(mode="after")
    def _top_level_keys_differ_in_more_than_case(self) -> StagingModel:
        # The engine reads the mapped keys as one structure whose names ignore case.
        seen: dict[str, str] = {}
        keys = [c.keys[0] for c in self.columns.values() if c.keys and not c.in_element]
        keys += [path[0] for path in selector_paths(self.selector)]
        keys += [self.explode.keys[0]] if self.explode else []
        for key in keys:
            if seen.setdefault(key.lower(), key) != key:
                raise ValueError(
                    f"JSON keys {seen[key.lower()]!r} and {key!r} differ only in case; "
                    "map one of them"
                )
        return self

    @model_validator(mode="after")
    def _key_is_a_column(self) -> StagingModel:
        for key in self.key_columns:
            if key not in self.columns and not (self.explode and key == self.explode.position):
                raise ValueError(f"unique_key {key!r} is not one of the columns")
            if key in self.columns and not self.columns[key].stored:
                raise ValueError(f"unique_key {key!r} is dropped (pii: drop)")
        return self

    @property
    def key_columns(self) -> list[str]:
        if self.unique_key is None:
            return []
        return [self.unique_key] if isinstance(self.unique_key, str) else list(self.unique_key)

    @property
    def stored_columns(self) -> dict[str, Column]:
        return {name: col for name, col in self.columns.items() if col.stored}


def parse_selector(text: str) -> exp.Expr:
    """A selector is a boolean SQL expression over the record's fields (dotted for nested).

    Only comparisons, IN, LIKE, IS, BETWEEN, AND/OR/NOT, casts and a few string functions are
    allowed: it becomes part of the staging SQL, so nothing that reads tables or files may pass.
    """
    try:
        tree = sqlglot.parse_one(text, dialect="duckdb")
    except sqlglot.errors.ParseError as error:
        first = str(error).splitlines()[0]
        raise ValueError(f"selector is not a valid SQL expression ({first})") from None
    for node in tree.walk():
        if not isinstance(node, SELECTOR_NODES):
            raise ValueError(
                f"selector: {type(node).__name__.lower()} is not allowed ({node.sql('duckdb')!r}); "
                "use comparisons, IN, LIKE, IS NULL, AND, OR, NOT and casts over record fields"
            )
    for path in selector_paths(text, tree):
        check_json_path(".".join(path))
    return tree


def selector_paths(text: str | None, tree: exp.Expr | None = None) -> list[list[str]]:
    """The record fields a selector reads, as key lists (`a.b` → ['a', 'b'])."""
    if text is None:
        return []
    found = tree or sqlglot.parse_one(text, dialect="duckdb")
    return [[part.name for part in column.parts] for column in found.find_all(exp.Column)]


def staging_columns(model: StagingModel) -> dict[str, str]:
    """The staging table's columns after load_id: the array position, then the stored columns."""
    columns = {model.explode.position: "INTEGER"} if model.explode else {}
    columns.update({name: spec.type for name, spec in model.stored_columns.items()})
    return columns
