"""Whether a mart is due, and how it is to be built.

A mart is due when it has no build yet (or its table or view is gone), when its SQL, its
materialization or its incremental settings changed (then it is built whole), when an input
holds other loads or builds than it was built from (a table is rebuilt, an incremental table
redoes the periods that the new loads touch, a view is only tested again: its rows are read
through), or when its tests changed or a table they compare with got new rows (they run again,
nothing is rebuilt). A volatile mart (see `marts.inputs`) is rebuilt at every run; a view of it
is made once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from anchorflow.config.mart_settings import MartSettings
from anchorflow.journal.marts import InputVersion, MartBuild
from anchorflow.marts.inputs import MartInput

FULL, INCREMENTAL, VIEW, REFRESH, TESTS = "full", "incremental", "view", "refresh", "tests"


@dataclass(frozen=True)
class MartPlan:
    kind: str  # full | incremental | view | refresh (a view's inputs changed) | tests
    reason: str
    changed: tuple[MartInput, ...] = ()  # the inputs that hold something new


@dataclass(frozen=True)
class Fingerprint:
    """What decides a full rebuild (the SQL, the settings) and a new test run (the tests)."""

    sql: str
    settings: str
    tests: str

    @staticmethod
    def of(sql: str, settings: MartSettings) -> Fingerprint:
        how = [settings.materialization, settings.time_column, settings.period]
        tests = [t.model_dump() for t in settings.all_tests()]
        return Fingerprint(_hash(sql), _hash(json.dumps(how)), _hash(json.dumps(tests)))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_mart(
    settings: MartSettings,
    fingerprint: Fingerprint,
    inputs: list[MartInput],
    volatile: bool,
    last: MartBuild | None,
    versions: dict[str, InputVersion],
    existing: str | None,
    force: bool = False,
    compared: list[MartInput] | None = None,
) -> MartPlan | None:
    """How the mart is to be built now, or None when nothing is due."""
    view = settings.materialization == "view"
    whole = VIEW if view else FULL
    if last is None:
        return MartPlan(whole, "first build")
    if existing is None:
        return MartPlan(whole, "not in the warehouse")
    if (existing == "VIEW") != view or last.materialized != settings.materialization:
        return MartPlan(whole, f"now materialized as {settings.materialization}")
    if last.sql_hash != fingerprint.sql:
        return MartPlan(whole, "its SQL changed")
    if last.settings_hash != fingerprint.settings:
        return MartPlan(whole, "its settings changed")
    if force:
        return MartPlan(whole, "rebuild asked for")
    if volatile and not view:
        return MartPlan(FULL, "volatile: it reads more than the project's tables")
    changed = tuple(i for i in inputs if last.inputs.get(i.key) != versions.get(i.key))
    if changed:
        shown = ", ".join(i.key for i in changed)
        kind = {"view": REFRESH, "table": FULL}.get(settings.materialization, INCREMENTAL)
        return MartPlan(kind, f"new in {shown}", changed)
    if last.tests_hash != fingerprint.tests:
        return MartPlan(TESTS, "its tests changed")
    changed = tuple(i for i in compared or [] if last.inputs.get(i.key) != versions.get(i.key))
    if changed:
        return MartPlan(TESTS, f"its tests compare with new rows in {changed[0].key}", changed)
    return None
