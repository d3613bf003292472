"""The anchor step: typed staging rows that the anchor model does not hold yet.

- `prepare`: create what the declaration added (tables, perspectives); stop on what needs a
  migration. Done once per façade, by the commands that touch the anchor model;
- `pending`: per anchor table, the typed loads it does not hold (from the journal);
- `run`: load them (entities and knots, then attributes and ties, each table in its own
  transaction, checked for integrity); a table that fails its check is rolled back alone, the
  failure alerted and raised once every table had its turn;
- `remove`: take loads back out of every anchor table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from anchorflow.anchor.ddl import ensure_tables
from anchorflow.anchor.erase import remove_loads
from anchorflow.anchor.load import AnchorRun, TargetRun, load_anchor, workers
from anchorflow.anchor.plan import AnchorPlan
from anchorflow.anchor.serving import rebuild
from anchorflow.anchor.views import create_views
from anchorflow.config.descriptions import anchor_docs
from anchorflow.config.project import Project
from anchorflow.errors import IntegrityError
from anchorflow.journal.anchor import (
    anchored_loads,
    mark_conflicts_alerted,
    unalerted_conflicts,
)
from anchorflow.journal.transfers import typed_loads
from anchorflow.warehouse import Warehouse
from anchorflow.warehouse.comments import apply_comments


class AnchorStep:
    name = "anchor"

    def __init__(
        self,
        project: Project,
        plan: AnchorPlan,
        clock: Callable[[], datetime],
        on_failure: Callable[[list[str]], None] | None = None,
        on_conflicts: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        """`on_failure` hears the integrity problems of a run before they are raised;
        `on_conflicts` the new same-instant conflicts per table, once (in the transaction that
        marks them alerted)."""
        self.project = project
        self.plan = plan
        self.clock = clock
        self.on_failure = on_failure
        self.on_conflicts = on_conflicts
        self._prepared = False

    @property
    def tables(self) -> int:
        return len(self.plan.entities) + len(self.plan.knots) + len(self.plan.targets)

    def prepare(self, warehouse: Warehouse) -> None:
        if self.plan.entities and not self._prepared:
            ensure_tables(warehouse, self.plan)
            create_views(warehouse, self.plan)
            with warehouse.transaction():
                apply_comments(warehouse, "anchor", anchor_docs(self.project))
            self._prepared = True

    def pending(self, warehouse: Warehouse) -> dict[str, list[int]]:
        """Per anchor table, the typed loads of the models it reads that it does not hold."""
        reads: dict[str, set[str]] = {}
        for name, entity in self.plan.entities.items():
            reads[name] = set(entity.sources)
        for name, knot in self.plan.knots.items():
            reads[name] = {model for model, _ in knot.feeders}
        for name, target in self.plan.targets.items():
            reads[name] = {target.model}
        found: dict[str, list[int]] = {}
        for name, models in reads.items():
            loads = set()
            for model in models:
                loads |= set(typed_loads(warehouse, model)) - anchored_loads(warehouse, name, model)
            if loads:
                found[name] = sorted(loads)
        return found

    def run(
        self, warehouse: Warehouse, on_table: Callable[[TargetRun], None] | None = None
    ) -> AnchorRun | None:
        if not self.plan.entities:
            return None
        self.prepare(warehouse)
        result = load_anchor(
            warehouse, self.plan, self.clock(), workers(warehouse, self.project.anchor.workers),
            on_table, verify_history=self.project.anchor.verify == "history",
            batch_rows=self.project.anchor.batch_rows,
            memory_limit=self.project.anchor.memory_limit,
            group_rows=self.project.anchor.group_rows,
            group_memory_limit=self.project.anchor.group_memory_limit,
        )  # fmt: skip
        self.alert_conflicts(warehouse)
        if result.problems:
            if self.on_failure:
                self.on_failure(result.problems)
            raise IntegrityError(
                f"{result.problems[0]} (the table's load was rolled back; "
                f"{len(result.problems)} table(s) failed in all)"
            )
        return result

    def rebuild_serving(self, warehouse: Warehouse) -> dict[str, int]:
        """Every serving table recomputed from the anchor tables; rows per table."""
        if not self.plan.entities:
            return {}
        self.prepare(warehouse)
        return rebuild(warehouse, self.plan)

    def alert_conflicts(self, warehouse: Warehouse) -> None:
        """One alert for the conflicts no alert named yet (tables and counts, never values:
        they may be personal data), then mark them alerted."""
        if self.on_conflicts is None:
            return
        found = unalerted_conflicts(warehouse)
        if found:
            with warehouse.transaction():
                self.on_conflicts(found)
                mark_conflicts_alerted(warehouse)

    def remove(
        self,
        warehouse: Warehouse,
        load_ids: Sequence[int],
        reattribute: bool = True,
        reopen: Sequence[str] = (),
    ) -> dict[str, int]:
        """Delete the loads' rows from every anchor table. `reattribute`: the loads are gone
        for good (replaced), so an entity row they created that others still use moves to the
        earliest of those; else (rolled back, coming back) it keeps its load. `reopen` names
        staging models whose other loads the next run must read again."""
        if not self.plan.entities:
            return {}
        self.prepare(warehouse)
        counts = remove_loads(warehouse, self.plan, list(load_ids), reattribute, list(reopen))
        return {f"anchor.{name}": rows for name, rows in counts.items()}
