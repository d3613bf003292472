"""Load and validate `anchorflow.yml` into typed objects before anything runs.

Every problem becomes one line naming the file, the key path and what is wrong, for example
`anchorflow.yml: sources.amplitude.start: expected YYYYMMDDTHH, got '2024-13-01T00'`. Secrets come
from the environment through `${VAR}`; a missing variable is named, its value never printed.
"""

from __future__ import annotations

import difflib
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import sqlglot
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlglot import exp

from anchorflow.anchor.spec import AnchorSpec
from anchorflow.errors import ConfigError
from anchorflow.project_types import IDENTIFIER, Identifier, canonical_type

PROJECT_FILE = "anchorflow.yml"
JSON_KEY = re.compile(r"^[A-Za-z0-9_$@\- ]{1,128}$")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
HOUR_FORMAT = "%Y%m%dT%H"
RESERVED_COLUMNS = {"load_id", "origin", "line_no"}
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_hour(value: Any) -> datetime:
    """`YYYYMMDDTHH` (Amplitude's export format) as a naive UTC datetime on the hour."""
    if isinstance(value, datetime):
        return value.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    text = str(value)
    try:
        if not re.fullmatch(r"\d{8}T\d{2}", text):
            raise ValueError
        return datetime.strptime(text, HOUR_FORMAT)
    except ValueError:
        raise ValueError(f"expected YYYYMMDDTHH, got {text!r}") from None


def format_hour(hour: datetime) -> str:
    return hour.strftime(HOUR_FORMAT)


def parse_duration(value: Any) -> timedelta:
    """`90`, `90s`, `30m`, `2h`, `1d`, `250ms` as a timedelta."""
    if isinstance(value, timedelta):
        return value
    match = DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 30s, 15m or 2h, got {value!r}")
    return timedelta(seconds=float(match.group(1)) * DURATION_UNITS[match.group(2)])


Hour = Annotated[datetime, BeforeValidator(parse_hour)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DuckDBWarehouse(Strict):
    engine: Literal["duckdb"] = "duckdb"
    path: str = "warehouse.duckdb"
    threads: int | None = Field(default=None, ge=1)
    memory_limit: str | None = None


class Retry(Strict):
    """Bounded exponential backoff with jitter, for 429, 5xx and timeouts."""

    attempts: int = Field(default=6, ge=1, le=50)
    base_delay: Duration = timedelta(seconds=1)
    max_delay: Duration = timedelta(seconds=60)


class AmplitudeSource(Strict):
    kind: Literal["amplitude"]
    model_field: str | None = Field(
        default="event_type",
        description="the JSON key naming a record's model; its unclaimed values are new models",
    )
    base_url: str = "https://amplitude.com"
    api_key: SecretStr
    secret_key: SecretStr
    stream: Identifier = "events"
    start: Hour
    availability_delay: Duration = timedelta(hours=2)
    hours_per_request: int = Field(default=6, ge=1, le=24 * 31)
    timeout: Duration = timedelta(seconds=300)
    retry: Retry = Retry()
    download_attempts: int = Field(
        default=3, ge=1, le=20, description="downloads of a range whose ZIP or gzip is corrupt"
    )
    decompress_workers: int | None = Field(default=None, ge=1, le=64)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/")


Source = AmplitudeSource
SOURCE_KINDS = {"amplitude": AmplitudeSource}


PII_POLICIES = ("keep", "hash", "drop")
BAD_VALUE_POLICIES = ("null", "quarantine", "fail")
SELECTOR_NODES = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Not, exp.And,
    exp.Or, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Is, exp.Like,
    exp.ILike, exp.Between, exp.Cast, exp.TryCast, exp.DataType, exp.Lower, exp.Upper,
    exp.Coalesce, exp.Neg, exp.Tuple, exp.Length,
)  # fmt: skip


def _json_path(value: str) -> str:
    parts = value.split(".")
    bad = [p for p in parts if not JSON_KEY.match(p)]
    if bad:
        raise ValueError(f"expected a dotted JSON path of plain keys, got {value!r}")
    return value


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
            return "[]." + _json_path(value[3:])
        return _json_path(value)

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
        return _json_path(value)

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
        reserved = RESERVED_COLUMNS | ({self.explode.position} if self.explode else set())
        taken = sorted(c for c in self.columns if c in reserved or c.startswith("__"))
        if taken:
            raise ValueError(
                f"column {taken[0]!r} is reserved (staging adds load_id, origin and line_no"
                + (f", and {self.explode.position} for the exploded array)" if self.explode
                   else ")")
            )  # fmt: skip
        return self

    @model_validator(mode="after")
    def _selector_runs_on_odd_values(self) -> StagingModel:
        if self.selector:
            from anchorflow.stage.sql import check_selector

            check_selector(self)
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
        _json_path(".".join(path))
    return tree


def selector_paths(text: str | None, tree: exp.Expr | None = None) -> list[list[str]]:
    """The record fields a selector reads, as key lists (`a.b` → ['a', 'b'])."""
    if text is None:
        return []
    found = tree or sqlglot.parse_one(text, dialect="duckdb")
    return [[part.name for part in column.parts] for column in found.find_all(exp.Column)]


class Marts(Strict):
    path: str = "models"


class AlertTarget(Strict):
    """Where alerts go: a Slack incoming webhook, a generic JSON webhook, or the log."""

    kind: Literal["slack", "webhook", "log"]
    url: SecretStr | None = None

    @model_validator(mode="after")
    def _url_where_needed(self) -> AlertTarget:
        url = self.url.get_secret_value() if self.url else ""
        if self.kind != "log":
            try:
                valid = httpx.URL(url).scheme in {"http", "https"} and bool(httpx.URL(url).host)
            except Exception:  # httpx.InvalidURL and friends; never echo the URL (a secret)
                valid = False
            if not valid:
                raise ValueError(f"a {self.kind} alert needs url: an http(s) URL")
        return self


class Project(Strict):
    name: Identifier = "anchorflow"
    warehouse: DuckDBWarehouse = DuckDBWarehouse()
    sources: dict[Identifier, Annotated[Source, Field(discriminator="kind")]] = {}
    staging: dict[Identifier, StagingModel] = {}
    marts: Marts = Marts()
    alerts: list[AlertTarget] = []
    pii_salt: SecretStr | None = None
    anchor: AnchorSpec = AnchorSpec()

    # Set by load_project, not by the file.
    root: Path = Path(".")
    file: Path = Path(PROJECT_FILE)

    @model_validator(mode="after")
    def _raw_tables_are_distinct(self) -> Project:
        """Each source stream lands in raw.<source>_<stream>: one table each, a valid name."""
        owners: dict[str, str] = {}
        for name, source in self.sources.items():
            raw = f"{name}_{source.stream}".lower()  # DuckDB names ignore case
            if len(raw) > 63:
                raise ValueError(
                    f"sources.{name}: the raw table name {raw!r} is longer than 63 characters; "
                    "shorten the source name or its stream"
                )
            if raw in owners:
                raise ValueError(
                    f"sources.{name}: lands in raw.{raw}, like sources.{owners[raw]}; "
                    "rename one source or its stream"
                )
            owners[raw] = name
        return self

    @model_validator(mode="after")
    def _staging_sources_exist(self) -> Project:
        for name, model in self.staging.items():
            if model.source not in self.sources:
                known = ", ".join(sorted(self.sources)) or "none"
                raise ValueError(
                    f"staging.{name}.source: unknown source {model.source!r} (sources: {known})"
                )
        return self

    @model_validator(mode="after")
    def _stream_keys_differ_in_more_than_case(self) -> Project:
        """New-model detection reads the model field and every selector of a stream at once."""
        for source, config in self.sources.items():
            seen: dict[str, str] = {}
            keys = [config.model_field.split(".")[0]] if config.model_field else []
            for model in self.staging.values():
                if model.source == source and self.stream_of(model) == config.stream:
                    keys += [path[0] for path in selector_paths(model.selector)]
            for key in keys:
                if seen.setdefault(key.lower(), key) != key:
                    raise ValueError(
                        f"sources.{source}: the selectors and model_field of its stream read "
                        f"JSON keys {seen[key.lower()]!r} and {key!r}, which differ only in case"
                    )
        return self

    @model_validator(mode="after")
    def _salt_for_hashing(self) -> Project:
        for name, model in self.staging.items():
            for col_name, col in model.columns.items():
                if col.pii == "hash" and not self.pii_salt:
                    raise ValueError(
                        f"staging.{name}.columns.{col_name}: pii: hash needs pii_salt: "
                        "${ANCHORFLOW_PII_SALT} at the top of the project file"
                    )
        return self

    @model_validator(mode="after")
    def _anchor_matches_staging(self) -> Project:
        problems = self.anchor.problems(self.staging)
        if problems:
            raise ValueError(problems[0])
        return self

    @property
    def warehouse_path(self) -> Path:
        path = Path(self.warehouse.path)
        return path if path.is_absolute() else self.root / path

    @property
    def marts_path(self) -> Path:
        return self.root / self.marts.path

    def stream_of(self, model: StagingModel) -> str:
        return model.stream or self.sources[model.source].stream


def resolve_project_file(path: str | Path | None) -> Path:
    """`--project` may name the file or its directory; the default is the current directory."""
    candidate = Path(path or ".")
    if candidate.is_dir():
        candidate = candidate / PROJECT_FILE
    if not candidate.is_file():
        raise ConfigError(
            [f"{candidate}: no project file here (run `anchorflow init` to make one)"]
        )
    return candidate


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_project(path: str | Path | None = None, env: dict[str, str] | None = None) -> Project:
    """Read, interpolate and validate the project; raise ConfigError listing every problem."""
    file = resolve_project_file(path)
    label = file.name
    try:
        data = yaml.load(file.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(error, "problem", error)
        raise ConfigError([f"{label}: {where}not valid YAML ({problem})"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{label}: expected a mapping of sections at the top level"])
    problems: list[str] = []
    data = _interpolate(data, env if env is not None else dict(os.environ), (), problems, label)
    if problems:
        raise ConfigError(problems)
    try:
        project = Project.model_validate({**data, "root": file.parent.resolve(), "file": file})
    except ValidationError as error:
        raise ConfigError(_describe(error, data, label)) from None
    _check_marts(project, label)
    return project


def _interpolate(
    node: Any, env: dict[str, str], path: tuple[str, ...], problems: list[str], label: str
) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, env, (*path, str(k)), problems, label) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, (*path, str(i)), problems, label) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{label}: {'.'.join(path)}: environment variable {name} is not set")
        return ""

    return ENV_REF.sub(substitute, node)


def _describe(error: ValidationError, data: dict[str, Any], label: str) -> list[str]:
    lines = []
    for item in error.errors():
        loc = _key_path(item["loc"])
        key = ".".join(loc)
        if item["type"] == "union_tag_invalid":
            kind = item["input"].get("kind") if isinstance(item["input"], dict) else None
            hint = _did_you_mean(str(kind), list(SOURCE_KINDS))
            kinds = ", ".join(SOURCE_KINDS)
            lines.append(f"{label}: {key}.kind: unknown kind {kind!r}{hint}; known: {kinds}")
            continue
        if item["type"] == "extra_forbidden":
            parent = ".".join(loc[:-1])
            hint = _did_you_mean(loc[-1], _allowed_keys(loc[:-1], data))
            lines.append(f"{label}: {parent + ': ' if parent else ''}unknown key {loc[-1]!r}{hint}")
            continue
        if item["type"] == "union_tag_not_found":
            lines.append(f"{label}: {key}.kind: required key is missing")
            continue
        if item["type"] == "missing":
            lines.append(f"{label}: {key}: required key is missing")
            continue
        message = str(item["msg"]).removeprefix("Value error, ")
        if message.startswith(("staging.", "sources.", "anchor.")):  # already names its key path
            lines.append(f"{label}: {message}")
        else:
            lines.append(f"{label}: {key}: {message}")
    return lines


def _key_path(loc: tuple[Any, ...]) -> list[str]:
    """pydantic's location without its internal steps (validator wrappers, union tags)."""
    parts = [str(p) for p in loc if not str(p).startswith("function-") and p != "[key]"]
    if len(parts) >= 3 and parts[0] == "sources" and parts[2] in SOURCE_KINDS:
        del parts[2]  # the discriminator tag pydantic inserts after the source's name
    return parts


def _allowed_keys(loc: list[str], data: dict[str, Any]) -> list[str]:
    """The keys the model at `loc` accepts, found by walking the model classes."""
    model: Any = Project
    node: Any = data
    for part in loc:
        node = node.get(part) if isinstance(node, dict) else None
        field = model.model_fields.get(part) if model else None
        if field is None:  # inside a dict of named items: the item's model
            continue
        model = _model_of(field.annotation, node)
    if model is Project:
        return [k for k in Project.model_fields if k not in {"root", "file"}]
    return list(model.model_fields) if model else []


def _model_of(annotation: Any, node: Any) -> Any:
    args = getattr(annotation, "__args__", ())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in reversed(args):  # dict[K, V] → V; Annotated[...] → first
        found = _model_of(getattr(arg, "__origin__", arg), node)
        if found is not None:
            return found
    return None


def _did_you_mean(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_marts(project: Project, label: str) -> None:
    """Every mart file must parse as SQL; the error names the file and sqlglot's message."""
    if not project.marts_path.is_dir():
        return
    problems = []
    for sql_file in sorted(project.marts_path.glob("*.sql")):
        if not IDENTIFIER.match(sql_file.stem):
            problems.append(f"{sql_file.name}: a model's file name must be a plain identifier")
            continue
        where = f"{project.marts.path}/{sql_file.name}"
        try:
            statements = [s for s in sqlglot.parse(sql_file.read_text(), dialect="duckdb") if s]
        except sqlglot.errors.ParseError as error:
            first = str(error).splitlines()[0]
            problems.append(f"{where}: not valid SQL ({first})")
            continue
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            problems.append(f"{where}: expected exactly one SELECT statement")
    if problems:
        raise ConfigError([f"{label}: marts: {p}" for p in problems])
