"""Every source kind, by the `kind:` that names it in the project file: one line per kind.

A kind is a package `sources/<kind>/` with a pure `config.py` (its settings, a `SourceConfig`)
and a `source.py` (its `Source`). The config layer reads `CONFIGS` to validate the project file;
`open_source` imports a kind's source module only when a source of that kind is opened, so
validating a project never imports an HTTP client or a cloud SDK.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from anchorflow.sources.amplitude.config import AmplitudeConfig
from anchorflow.sources.base import Source, SourceConfig

# kind: (its config model, "module:class" of its source)
KINDS: dict[str, tuple[type[SourceConfig], str]] = {
    "amplitude": (AmplitudeConfig, "anchorflow.sources.amplitude.source:AmplitudeSource"),
}

CONFIGS: dict[str, type[SourceConfig]] = {kind: config for kind, (config, _) in KINDS.items()}


def open_source(name: str, config: SourceConfig, root: Path) -> Source:
    """The source named `name` in the project, built from its config; `root` is the project's
    directory (relative paths in a config are relative to it)."""
    module, _, attribute = KINDS[config.kind][1].partition(":")
    factory = getattr(importlib.import_module(module), attribute)
    source: Source = factory(name, config, root)
    return source
