"""What a command that only reads checks instead of preparing the warehouse as a writer does.

A reader opens the file read-only: it cannot bring an older journal up to date nor create the
anchor tables declared since the last run, so it says so in one line rather than fail on a
missing table.
"""

from __future__ import annotations

from anchorflow.anchor.plan import SCHEMA, AnchorPlan
from anchorflow.config.project import Project
from anchorflow.errors import WarehouseError
from anchorflow.journal import ensure_journal
from anchorflow.journal.schema import journal_columns
from anchorflow.warehouse import Warehouse, connect_scratch

_current: dict[str, frozenset[str]] = {}  # per engine: the journal this release makes


def require_current_journal(warehouse: Warehouse, project: Project) -> None:
    """Raise when the warehouse's journal lacks a table or column this release writes."""
    missing = sorted(_current_journal(project) - journal_columns(warehouse))
    if missing:
        raise WarehouseError(
            f"the journal in {warehouse.path} was written by an older anchorflow (it "
            f"has no meta.{missing[0]}): run a writing command such as `anchorflow run` once "
            "to bring it up to date"
        )


def missing_anchor_table(warehouse: Warehouse, plan: AnchorPlan) -> str | None:
    """The first declared anchor table the warehouse does not hold, as `anchor.<name>`."""
    for name in [*plan.entities, *plan.knots, *plan.targets]:
        if not warehouse.table_exists(SCHEMA, name):
            return f"{SCHEMA}.{name}"
    return None


def _current_journal(project: Project) -> frozenset[str]:
    engine = project.warehouse.engine
    if engine not in _current:
        with connect_scratch(project) as scratch:
            ensure_journal(scratch)
            _current[engine] = frozenset(journal_columns(scratch))
    return _current[engine]
