"""The one project builder of the tests: every test project is written and loaded here, and
every warehouse a test opens itself is opened here.

`build_project(root, sources=..., staging=..., anchor=..., marts=..., **top)` writes
`anchorflow.yml` (and `models/<name>.sql` for marts) into `root` and loads it the way the CLI
does. `amplitude_source` and `events_model` are the usual parts: an Amplitude source with fast
retries and the demo-like `staging.events`.
"""

from __future__ import annotations

import copy
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from anchorflow.config import Project, load_project
from anchorflow.journal import ensure_journal
from anchorflow.warehouse import Warehouse, connect
from tests import engines

START = datetime(2024, 3, 1, 0)
API_KEY, SECRET_KEY = "test-key", "test-secret"
# With the demo project's grading token: module fixtures load it without the autouse env.
ENV = {"AMPLITUDE_API_KEY": API_KEY, "AMPLITUDE_SECRET_KEY": SECRET_KEY,
       "MAESTROQA_API_TOKEN": "demo-maestroqa-token"}  # fmt: skip

EVENTS_MODEL: dict[str, Any] = {
    "source": "amplitude",
    "unique_key": "event_uuid",
    "columns": {
        "event_uuid": {"path": "uuid", "type": "UUID"},
        "event_type": "VARCHAR",
        "event_time": "TIMESTAMP",
        "user_id": "VARCHAR",
        "device_id": "VARCHAR",
        "platform": "VARCHAR",
        "amount": {"path": "event_properties.amount", "type": "DOUBLE"},
        "event_properties": "JSON",
    },
}


def amplitude_source(base_url: str = "http://127.0.0.1:9", **overrides: Any) -> dict[str, Any]:
    """An Amplitude source as the demo has it, with fast retries; keys from the environment."""
    source: dict[str, Any] = {
        "kind": "amplitude",
        "base_url": base_url,
        "api_key": "${AMPLITUDE_API_KEY}",
        "secret_key": "${AMPLITUDE_SECRET_KEY}",
        "start": START.strftime("%Y%m%dT%H"),
        "hours_per_request": 6,
        "retry": {"attempts": 4, "base_delay": "10ms", "max_delay": "50ms"},
        "timeout": "20s",
    }
    source.update(overrides)
    return source


def events_model(**overrides: Any) -> dict[str, Any]:
    model = copy.deepcopy(EVENTS_MODEL)
    model.update(overrides)
    return model


def project_data(
    sources: dict[str, Any] | None = None,
    staging: dict[str, Any] | None = None,
    anchor: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """The project file's content: by default one Amplitude source and `staging.events`."""
    data: dict[str, Any] = {
        "name": "test",
        "warehouse": {"path": "warehouse.duckdb"},  # the engine's, once the root is known
        "sources": {"amplitude": amplitude_source()} if sources is None else sources,
        "staging": {"events": events_model()} if staging is None else staging,
    }
    if anchor is not None:
        data["anchor"] = anchor
    data.update(top)
    return data


def write_project(root: Path, data: dict[str, Any], marts: dict[str, str] | None = None) -> Path:
    """Write `anchorflow.yml` (and the marts' SQL files) into `root`; returns `root`."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    if data.get("warehouse") == {"path": "warehouse.duckdb"}:
        data = {**data, "warehouse": engines.warehouse_settings(root)}
    (root / "anchorflow.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    for name, sql in (marts or {}).items():
        (root / "models" / f"{name}.sql").write_text(sql)
    return root


def build_project(
    root: Path,
    sources: dict[str, Any] | None = None,
    staging: dict[str, Any] | None = None,
    anchor: dict[str, Any] | None = None,
    marts: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    **top: Any,
) -> Project:
    """Write a project into `root` and load it with the test environment's secrets."""
    write_project(root, project_data(sources, staging, anchor, **top), marts)
    return load_project(root, env={**ENV, **os.environ, **(env or {})})


def open_warehouse(project: Project) -> Warehouse:
    """The project's warehouse, its journal made (the caller closes it)."""
    warehouse = connect(project)
    ensure_journal(warehouse)
    return warehouse
