"""A small project whose staging is written directly, so anchor tests control every observation.

`Harness.deliver(rows)` writes rows into `staging.obs` as a new load, with its transfer-log row,
exactly as the staging step would leave them; `Harness.anchor()` runs the anchor step.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from anchorflow import journal
from anchorflow.anchor.ddl import ensure_tables
from anchorflow.anchor.load import AnchorRun, load_anchor
from anchorflow.anchor.plan import AnchorPlan, build_plan
from anchorflow.anchor.step import AnchorStep
from anchorflow.config import Project
from anchorflow.run.removal import Steps, forget_entity, rollback_load
from anchorflow.stage import StageStep, ensure_staging_table
from anchorflow.warehouse import Warehouse
from tests.builders import amplitude_source, build_project, open_warehouse

ENV = {"AMPLITUDE_API_KEY": "k", "AMPLITUDE_SECRET_KEY": "s"}
OBS_COLUMNS = {
    "user_id": "VARCHAR",
    "device_id": "VARCHAR",
    "country": "VARCHAR",
    "plan": "VARCHAR",
    "score": "BIGINT",
    "platform": "VARCHAR",
    "t": "TIMESTAMP",
}

ANCHOR = {
    "knots": {"Platform": {"type": "VARCHAR"}},
    "entities": {
        "User": {
            "key": "user_id",
            "sources": ["obs"],
            "changed_at": "t",
            "attributes": {
                "country": {"model": "obs", "history": "scd2"},
                "plan": {"model": "obs", "history": "scd1"},
                "score": {"model": "obs", "history": "scd0"},
                "platform": {"model": "obs", "knot": "Platform", "history": "scd2"},
            },
        },
        "Device": {"key": "device_id", "sources": ["obs"]},
    },
    "ties": {
        "Device_User": {
            "model": "obs",
            "roles": {"Device": "device_id", "User": "user_id"},
            "identifier": ["Device"],
            "history": "scd2",
            "changed_at": "t",
        },
        "User_Device": {
            "model": "obs",
            "roles": {"User": "user_id", "Device": "device_id"},
            "history": "scd2",
            "changed_at": "t",
        },
    },
}


def project_file(root: Path, anchor: dict[str, Any] | None = None, **extra: Any) -> Project:
    """A project whose only staging model, `obs`, is written by the harness, never loaded."""
    obs = {"source": "app", "columns": {name: {"type": t} for name, t in OBS_COLUMNS.items()}}
    return build_project(
        root, sources={"app": amplitude_source()}, staging={"obs": obs},
        anchor=anchor if anchor is not None else ANCHOR,
        **{"name": "anchor_test", "pii_salt": "test-salt", **extra},
    )  # fmt: skip


class Harness:
    def __init__(self, root: Path, anchor: dict[str, Any] | None = None, **extra: Any) -> None:
        self.project = project_file(root, anchor, **extra)
        self.plan: AnchorPlan = build_plan(self.project)
        self.wh: Warehouse = open_warehouse(self.project)
        ensure_staging_table(self.wh, "obs", self.project.staging["obs"])
        ensure_tables(self.wh, self.plan)
        self.next_load = 1

    def deliver(self, rows: Iterable[dict[str, Any]]) -> int:
        """One load of observations into staging.obs; returns its load id."""
        load_id = self.next_load
        self.next_load += 1
        names = list(OBS_COLUMNS)
        with self.wh.transaction():
            for row in rows:
                self.wh.execute(
                    f"INSERT INTO staging.obs (load_id, {', '.join(names)}) "
                    f"VALUES (?, {', '.join('?' for _ in names)})",
                    [load_id, *(row.get(n) for n in names)],
                )
            self.wh.execute(
                "INSERT INTO meta.transfers VALUES (?, 'obs', ?, 0, 0, 0, ?)",
                [load_id, load_id, datetime(2024, 1, 1)],
            )
        return load_id

    def anchor(self, parallel: int = 1) -> AnchorRun:
        return load_anchor(self.wh, self.plan, parallel=parallel)

    def rollback(self, load_id: int) -> dict[str, int]:
        """The façade's rollback, composed of the stage and anchor steps' removals."""
        steps = Steps(
            StageStep(self.project, journal.utcnow),
            AnchorStep(self.project, self.plan, journal.utcnow),
        )
        return rollback_load(self.wh, self.project, steps, load_id)

    def forget(self, entity: str, key: list[str]) -> dict[str, int]:
        return forget_entity(self.wh, self.project, self.plan, entity, key)

    def close(self) -> None:
        self.wh.close()
