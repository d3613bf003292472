"""The project: every section of `anchorflow.yml` as one typed, validated object.

Pure: building a `Project` opens no database and imports no later layer. The source union is
built from `sources.registry`, so a new source kind is one registry line, not an edit here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Union
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from anchorflow.config.anchor import AnchorSpec
from anchorflow.config.dashboards import DashboardsSettings
from anchorflow.config.exports import Exports, export_problems
from anchorflow.config.fraud import FraudSettings
from anchorflow.config.mart_settings import MartSettings
from anchorflow.config.metrics import MetricsConfig
from anchorflow.config.staging import StagingModel, selector_paths
from anchorflow.errors import ConfigError
from anchorflow.project_types import Duration, Identifier, MemorySize, Strict
from anchorflow.sources.base import SourceConfig
from anchorflow.sources.registry import CONFIGS

PROJECT_FILE = "anchorflow.yml"
STATE_DIR = ".anchorflow"
WORK_DIR = "work"


def unset_variable_problem(label: str, key: str, variable: str, empty: bool = False) -> str:
    """`empty`: the variable is set to nothing (`NAME=` copied from `.env.example`)."""
    state = "is set but empty" if empty else "is not set"
    return f"{label}: {key}: environment variable {variable} {state}"


# Every kind's config model, told apart by `kind:` (to a type checker: their common base).
if TYPE_CHECKING:
    AnySource = SourceConfig
else:
    AnySource = Union[tuple(CONFIGS.values())]  # noqa: UP007


# The storage format a new warehouse file is written in: DuckDB's long-term release reads it
# (BI drivers and notebooks lag behind the newest DuckDB), and every newer release does too.
LTS_STORAGE_VERSION = "v1.4.0"
STORAGE_VERSION = re.compile(r"^(v\d+\.\d+\.\d+|latest)$")


# Staging types DuckDB has and PostgreSQL has not, with what to write instead.
DUCKDB_ONLY_TYPES = {
    "UTINYINT": "SMALLINT",
    "USMALLINT": "INTEGER",
    "UINTEGER": "BIGINT",
    "UBIGINT": "DECIMAL(20,0)",
    "HUGEINT": "DECIMAL(38,0)",
    "UHUGEINT": "DECIMAL(38,0)",
}


class WarehouseSettings(Strict):
    engine: Literal["duckdb", "postgres", "spark"] = "duckdb"
    path: str = "warehouse.duckdb"
    dsn: str | None = Field(
        default=None,
        description="postgres: the connection string (URL or key=value); a password in it "
        "comes from the environment, e.g. postgresql://anchorflow:${PGPASSWORD}@localhost/warehouse",
    )
    master: str | None = Field(
        default=None,
        description="spark: the Spark master URL (local[2] on one machine, spark://host:7077)",
    )
    lake: str | None = Field(
        default=None,
        description="spark: the directory the layers' Parquet files live in (default: lake)",
    )
    journal: str | None = Field(
        default=None,
        description="spark: the journal's DuckDB file (default: .anchorflow/journal.duckdb)",
    )
    conf: dict[str, str] | None = Field(
        default=None,
        description="spark: Spark settings for the session anchorflow starts, e.g. "
        "spark.driver.memory: 8g (default in local mode: a quarter of the machine's memory, "
        "1g to 8g); spark.sql.* ones apply to each warehouse's session",
    )
    threads: int | None = Field(default=None, ge=1)
    memory_limit: MemorySize | None = None
    storage_version: str = Field(
        default=LTS_STORAGE_VERSION,
        description="the oldest DuckDB release that must read a file anchorflow creates",
    )
    lock_timeout: Duration = Field(
        default=timedelta(minutes=5),
        description="how long a command waits for another process to let go of the file",
    )

    @model_validator(mode="after")
    def _engine_needs(self) -> WarehouseSettings:
        if self.engine == "postgres" and not self.dsn:
            raise ValueError("engine postgres needs dsn: the database's connection string")
        if self.engine == "duckdb" and self.dsn:
            raise ValueError("dsn is for engine postgres; DuckDB's file is `path`")
        duckdb_only = {"threads", "memory_limit", "storage_version"} & self.model_fields_set
        if self.engine == "postgres" and duckdb_only:
            names = ", ".join(sorted(duckdb_only))
            raise ValueError(f"{names}: DuckDB's settings; engine postgres takes dsn only")
        spark_only = {"master", "lake", "journal", "conf"} & self.model_fields_set
        if self.engine != "spark" and spark_only:
            names = ", ".join(sorted(spark_only))
            raise ValueError(f"{names}: settings of engine spark")
        if self.engine == "spark" and self.dsn:
            raise ValueError("dsn is for engine postgres; Spark's journal is `journal`")
        return self

    @field_validator("conf", mode="before")
    @classmethod
    def _spark_conf(cls, value: object) -> object:
        if isinstance(value, dict):
            for key in value:
                if not str(key).startswith("spark."):
                    raise ValueError(f"{key!r} is not a Spark setting (they start with spark.)")
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v)
                    for k, v in value.items()}  # fmt: skip
        return value

    @field_validator("storage_version")
    @classmethod
    def _storage_version(cls, value: str) -> str:
        if not STORAGE_VERSION.match(value):
            raise ValueError(
                f"expected a DuckDB release such as {LTS_STORAGE_VERSION}, or latest; got {value!r}"
            )
        return value


class Marts(Strict):
    path: str = "models"
    # How each mart is built and tested (`config.mart_settings`), by its file's name.
    models: dict[Identifier, MartSettings] = {}


class AlertTarget(Strict):
    """Where alerts go: a Slack incoming webhook, a generic JSON webhook, or the log."""

    kind: Literal["slack", "webhook", "log"]
    url: SecretStr | None = None
    timeout: Duration = Field(
        default=timedelta(seconds=10),
        description="the longest one delivery may take, however slowly the target answers",
    )

    @model_validator(mode="after")
    def _url_where_needed(self) -> AlertTarget:
        url = self.url.get_secret_value() if self.url else ""
        if self.timeout <= timedelta(0):
            raise ValueError("timeout: expected a duration longer than 0s")
        if self.kind != "log":
            try:
                parts = urlsplit(url)
                valid = parts.scheme in {"http", "https"} and bool(parts.hostname)
            except ValueError:  # never echo the URL: it is a secret
                valid = False
            if not valid:
                raise ValueError(f"a {self.kind} alert needs url: an http(s) URL")
        return self


class Project(Strict):
    name: Identifier = "anchorflow"
    warehouse: WarehouseSettings = WarehouseSettings()
    sources: dict[Identifier, Annotated[AnySource, Field(discriminator="kind")]] = {}
    staging: dict[Identifier, StagingModel] = {}
    marts: Marts = Marts()
    dashboards: DashboardsSettings = DashboardsSettings()
    exports: Exports = Exports()
    alerts: list[AlertTarget] = []
    pii_salt: SecretStr | None = None
    # How long the bytes of a `forget` may stay in the warehouse file: `run` rewrites the file
    # (`anchorflow compact`) once a pending request's deadline is less than a day away.
    erasure_deadline: Duration = timedelta(days=30)
    anchor: AnchorSpec = AnchorSpec()
    fraud: FraudSettings = FraudSettings()
    metrics: MetricsConfig = MetricsConfig()

    # Set by load_project, not by the file.
    root: Path = Path(".")
    file: Path = Path(PROJECT_FILE)

    @model_validator(mode="after")
    def _raw_tables_are_distinct(self) -> Project:
        """Each source stream lands in raw.<source>_<stream>: one table each, a valid name."""
        owners: dict[str, str] = {}
        for name, source in self.sources.items():
            for stream in source.streams:
                raw = f"{name}_{stream}".lower()  # DuckDB names ignore case
                if len(raw) > 63:
                    raise ValueError(
                        f"sources.{name}: the raw table name {raw!r} is longer than 63 "
                        "characters; shorten the source name or its stream"
                    )
                if raw in owners:
                    raise ValueError(
                        f"sources.{name}: lands in raw.{raw}, like sources.{owners[raw]}; "
                        "rename one source or its stream"
                    )
                owners[raw] = name
        return self

    @model_validator(mode="after")
    def _staging_tables_are_distinct(self) -> Project:
        owners: dict[str, str] = {}
        for name in self.staging:
            other = owners.setdefault(name.lower(), name)  # DuckDB names ignore case
            if other != name:
                raise ValueError(
                    f"staging.{name}: its table staging.{name} is staging.{other}'s (the "
                    "engine's names ignore case); rename one of the models"
                )
        return self

    @model_validator(mode="after")
    def _staging_sources_exist(self) -> Project:
        for name, model in self.staging.items():
            if model.source not in self.sources:
                known = ", ".join(sorted(self.sources)) or "none"
                raise ValueError(
                    f"staging.{name}.source: unknown source {model.source!r} (sources: {known})"
                )
            streams = self.sources[model.source].streams
            if model.stream is not None and model.stream not in streams:
                raise ValueError(
                    f"staging.{name}.stream: source {model.source!r} has no stream "
                    f"{model.stream!r} (streams: {', '.join(streams)})"
                )
        return self

    @model_validator(mode="after")
    def _stream_keys_differ_in_more_than_case(self) -> Project:
        """New-model detection reads the model field and every selector of a stream at once."""
        for source, config in self.sources.items():
            for stream in config.streams:
                seen: dict[str, str] = {}
                keys = [config.model_field.split(".")[0]] if config.model_field else []
                for model in self.staging.values():
                    if model.source == source and self.stream_of(model) == stream:
                        keys += [path[0] for path in selector_paths(model.selector)]
                for key in keys:
                    if seen.setdefault(key.lower(), key) != key:
                        raise ValueError(
                            f"sources.{source}: the selectors and model_field of its stream "
                            f"read JSON keys {seen[key.lower()]!r} and {key!r}, which differ "
                            "only in case"
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

    @model_validator(mode="after")
    def _types_the_engine_has(self) -> Project:
        if self.warehouse.engine != "postgres":
            return self
        for model, spec in self.staging.items():
            for name, column in spec.columns.items():
                base = column.type.split("(")[0].upper()
                if base in DUCKDB_ONLY_TYPES:
                    raise ValueError(
                        f"staging.{model}.columns.{name}.type: {column.type} has no PostgreSQL "
                        f"type; use {DUCKDB_ONLY_TYPES[base]}"
                    )
        return self

    @model_validator(mode="after")
    def _exports_name_tables(self) -> Project:
        problems = export_problems(self)
        if problems:
            raise ValueError(f"exports.tables: {problems[0]}")
        return self

    @model_validator(mode="after")
    def _fraud_inputs_exist(self) -> Project:
        problems = self.fraud.input_problems(dict(self.staging))
        if self.fraud.user_entity and self.fraud.user_entity not in self.anchor.entities:
            problems.append(
                f"fraud.user_entity: the anchor model has no entity {self.fraud.user_entity!r}"
            )
        if problems:
            raise ValueError(problems[0])
        return self

    @property
    def fraud_rules_path(self) -> Path:
        return self.root / self.fraud.rules_path

    @property
    def warehouse_path(self) -> Path:
        path = Path(self.warehouse.path)
        return path if path.is_absolute() else self.root / path

    def _under_root(self, path: str) -> Path:
        return Path(path) if Path(path).is_absolute() else self.root / path

    @property
    def lake_path(self) -> Path:
        """engine spark: the directory of the layers' Parquet files."""
        return self._under_root(self.warehouse.lake or "lake")

    @property
    def journal_path(self) -> Path:
        """engine spark: the journal's DuckDB file, beside the lake."""
        return self._under_root(self.warehouse.journal or ".anchorflow/journal.duckdb")

    @property
    def marts_path(self) -> Path:
        return self.root / self.marts.path

    @property
    def dashboards_path(self) -> Path:
        return self.root / self.dashboards.path

    @property
    def exports_path(self) -> Path:
        """Where `anchorflow export` publishes its Parquet files by default."""
        path = Path(self.exports.path)
        return path if path.is_absolute() else self.root / path

    @property
    def state_path(self) -> Path:
        """Where anchorflow keeps files of its own for this project (downloads in flight)."""
        return self.root / STATE_DIR

    @property
    def work_path(self) -> Path:
        """Scratch space of the sources (downloads in flight, raw PII): emptied at every start
        of a command that writes, so a killed run leaves nothing behind for long."""
        return self.state_path / WORK_DIR

    def require_env(self, sources: Iterable[str]) -> None:
        """Refuse, as the loader would have, sources whose settings wait for an environment
        variable: called by the commands that contact them (`run`, `backfill`)."""
        problems = [
            unset_variable_problem(
                self.file.name, key, variable, variable in self.sources[name].empty_env
            )
            for name in sources
            for key, variable in self.sources[name].unset_env
        ]
        if problems:
            raise ConfigError(problems)

    def unset_env(self) -> list[tuple[str, str]]:
        """(key path, variable) of every source setting whose variable is not set."""
        return [item for config in self.sources.values() for item in config.unset_env]

    def stream_of(self, model: StagingModel) -> str:
        return model.stream or self.sources[model.source].streams[0]

    def streams(self) -> list[tuple[str, str]]:
        """Every (source, stream) the project lands, in the order of the file."""
        return [(name, s) for name, config in self.sources.items() for s in config.streams]

    def models_of_stream(self, source: str, stream: str) -> list[str]:
        """The staging models typed from one raw stream."""
        return [
            name
            for name, model in self.staging.items()
            if model.source == source and self.stream_of(model) == stream
        ]
