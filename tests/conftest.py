"""Shared fixtures: a real Amplitude emulator on loopback and small projects that load from it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from anchorflow.config import Project, load_project
from anchorflow.emulators.amplitude import AmplitudeEmulator, ExportStore
from anchorflow.run import Pipeline
from anchorflow.synth.amplitude import SynthSpec

START = datetime(2024, 3, 1, 0)
API_KEY, SECRET_KEY = "test-key", "test-secret"
SMALL = SynthSpec(seed=7, events_per_hour=120, users=300)
# The Amplitude source's cursor, the next hour to load, as a timestamp.
NEXT_HOUR = (
    "SELECT strptime(json_extract_string(cursor, '$.next_hour'), '%Y%m%dT%H') FROM meta.cursors"
)


def hour(n: int) -> datetime:
    """The n-th hour after START."""
    return START + timedelta(hours=n)


def available_at(n_hours: int, delay_hours: int = 2) -> datetime:
    """A clock at which exactly the first `n_hours` hours are closed and available."""
    return START + timedelta(hours=n_hours + delay_hours)


@pytest.fixture
def emulator() -> Iterator[AmplitudeEmulator]:
    """48 hours of small, deterministic traffic, generated on demand."""
    store = ExportStore(START, START + timedelta(hours=48), spec=SMALL)
    with AmplitudeEmulator(store, API_KEY, SECRET_KEY) as running:
        yield running


def project_dict(base_url: str, **source: Any) -> dict[str, Any]:
    """A project like the demo's, with fast retries; `source` overrides Amplitude settings."""
    amplitude = {
        "kind": "amplitude",
        "base_url": base_url,
        "api_key": "${AMPLITUDE_API_KEY}",
        "secret_key": "${AMPLITUDE_SECRET_KEY}",
        "start": START.strftime("%Y%m%dT%H"),
        "hours_per_request": 6,
        "retry": {"attempts": 4, "base_delay": "10ms", "max_delay": "50ms"},
        "timeout": "20s",
    }
    amplitude.update(source)
    return {
        "name": "test",
        "warehouse": {"path": "warehouse.duckdb"},
        "sources": {"amplitude": amplitude},
        "staging": {
            "events": {
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
        },
    }


@pytest.fixture(autouse=True)
def amplitude_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMPLITUDE_API_KEY", API_KEY)
    monkeypatch.setenv("AMPLITUDE_SECRET_KEY", SECRET_KEY)
    monkeypatch.delenv("ANCHORFLOW_CRASH_AT", raising=False)


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    """Write a project into a fresh directory and load it: make_project(base_url, **source)."""
    counter = iter(range(1000))

    def make(base_url: str, mart_sql: str | None = None, **source: Any) -> Project:
        root = tmp_path / f"project{next(counter)}"
        (root / "models").mkdir(parents=True)
        (root / "anchorflow.yml").write_text(yaml.safe_dump(project_dict(base_url, **source)))
        if mart_sql:
            (root / "models" / "daily.sql").write_text(mart_sql)
        return load_project(root)

    return make


def run_pipeline(project: Project, now: datetime) -> Any:
    with Pipeline(project, now=now) as pipeline:
        return pipeline.run()


def table_rows(path: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Read from a warehouse file with a separate connection (what a user would see)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def env_without_crash() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "ANCHORFLOW_CRASH_AT"}
