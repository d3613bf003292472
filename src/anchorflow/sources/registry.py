"""Every source kind, by the `kind:` that names it in the project file: one line per kind.

A kind is a package `sources/<kind>/` with a pure `config.py` (its settings, a `SourceConfig`)
and a `source.py` (its `Source`). The config layer reads `CONFIGS` to validate the project file;
`open_source` imports a kind's source module only when a source of that kind is opened, so
validating a project never imports an HTTP client or a cloud SDK.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from anchorflow.sources.base import Source, SourceConfig

# kind: ("module:class" of its config model, "module:class" of its source), in sources/<kind>/
KINDS: dict[str, tuple[str, str]] = {
    "amplitude": ("amplitude.config:AmplitudeConfig", "amplitude.source:AmplitudeSource"),
    "async_export": (
        "async_export.config:AsyncExportConfig",
        "async_export.source:AsyncExportSource",
    ),
    "dynamodb": ("dynamodb.config:DynamoDBConfig", "dynamodb.source:DynamoDBSource"),
    "files": ("files.config:FilesConfig", "files.source:FilesSource"),
    "redis": ("redis.config:RedisConfig", "redis.source:RedisSource"),
    "webhook": ("webhook.config:WebhookConfig", "webhook.source:WebhookSource"),
}


def _load(name: str) -> Any:
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(f"anchorflow.sources.{module}"), attribute)


CONFIGS: dict[str, type[SourceConfig]] = {
    kind: _load(config) for kind, (config, _) in KINDS.items()
}


def open_source(name: str, config: SourceConfig, root: Path) -> Source:
    """The source named `name` in the project, built from its config; `root` is the project's
    directory (relative paths in a config are relative to it)."""
    source: Source = _load(KINDS[config.kind][1])(name, config, root)
    return source
