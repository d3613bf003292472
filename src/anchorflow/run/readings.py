"""The façade's reads and publishing: what `status`, `fields`, `drift`, `model`, `query`,
`export` and `dbt-sources` ask of a project (and the pages of `serve`). A part of `Pipeline`
(its base class), kept apart from the steps' ordering in `pipeline.py`: each method reads the
journal or a layer through the step or module that owns it, and returns a typed result."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from anchorflow.anchor import describe as anchor_describe
from anchorflow.anchor import query as anchor_query
from anchorflow.anchor.plan import AnchorPlan
from anchorflow.anchor.step import AnchorStep
from anchorflow.config.project import Project
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.journal.alerts import target_states
from anchorflow.journal.cursors import read_cursor
from anchorflow.journal.erasures import pending_erasures
from anchorflow.journal.field_stats import latest_stats
from anchorflow.journal.loads import committed_totals, noted_loads, recent_loads
from anchorflow.journal.quarantine import count_quarantined
from anchorflow.journal.runs import recent_runs
from anchorflow.journal.schema_events import (
    SchemaEventInfo,
    acknowledge,
    open_event_counts,
    schema_events,
)
from anchorflow.journal.transfers import model_totals
from anchorflow.journal.type_errors import type_errors_by_column
from anchorflow.publish.dbt import DEFAULT_SCHEMAS, dbt_sources
from anchorflow.publish.export import ExportedTable, export_tables
from anchorflow.run.reading import missing_anchor_table
from anchorflow.run.results import FieldReport, SourceStatus, Status, WarehouseTotals
from anchorflow.sources.base import Source
from anchorflow.stage import suggest
from anchorflow.warehouse import Warehouse


class Readings:
    """Set by `Pipeline`."""

    project: Project
    warehouse: Warehouse
    now: datetime
    plan: AnchorPlan
    read_only: bool
    anchor_step: AnchorStep

    def _opened(self, name: str) -> AbstractContextManager[Source]:
        raise NotImplementedError

    # -- publishing -----------------------------------------------------------------------------

    def _republish(self, always: bool) -> list[ExportedTable]:
        """Publish the project's `exports.tables` again after rows were taken out: after a
        `rollback` when `on_run` says the files follow the warehouse, after a `forget` always
        (an erasure that stays in a published file is no erasure). Files written elsewhere
        (`export --to DIR`, `query -o`) are not known here and keep what they hold."""
        exports = self.project.exports
        if exports.tables and (always or exports.on_run):
            return export_tables(self.warehouse, self.project)
        return []

    def export(self, tables: Sequence[str] = (), to: Path | None = None) -> list[ExportedTable]:
        """Publish tables as Parquet files (default: the project's exports.tables)."""
        return export_tables(self.warehouse, self.project, tables, to)

    def dbt_sources(self, schemas: Sequence[str] = (), database: str | None = None) -> str:
        """A dbt sources.yml describing the warehouse's schemas (default: staging, anchor,
        marts), with the project file's descriptions."""
        return dbt_sources(self.warehouse, self.project, schemas or DEFAULT_SCHEMAS, database)

    # -- reading --------------------------------------------------------------------------------

    def status(self) -> Status:
        """Where every source stream stands, the last loads and runs, and the quarantine."""
        sources = []
        for name, config in self.project.sources.items():
            with self._opened(name) as source:
                for stream in config.streams:
                    cursor = read_cursor(self.warehouse, name, stream)
                    state = source.state(stream, cursor, self.now)
                    sources.append(SourceStatus(name, **vars(state)))  # the same fields
        events, fields = open_event_counts(self.warehouse)
        return Status(
            sources,
            recent_loads(self.warehouse),
            recent_runs(self.warehouse),
            count_quarantined(self.warehouse),
            noted_loads(self.warehouse),
            events,
            fields,
            target_states(self.warehouse),
            pending_erasures(self.warehouse),
        )

    def totals(self) -> WarehouseTotals:
        loads, raw_rows = committed_totals(self.warehouse)
        return WarehouseTotals(
            loads, raw_rows, count_quarantined(self.warehouse), model_totals(self.warehouse)
        )

    def field_stats(self, model: str) -> FieldReport:
        (name,) = self._select_models([model])
        batch_id, load_ids, fields = latest_stats(self.warehouse, name)
        errors = type_errors_by_column(self.warehouse, name)
        return FieldReport(name, batch_id, load_ids, fields, errors)

    def schema_events(self, everything: bool = False) -> list[SchemaEventInfo]:
        return schema_events(self.warehouse, everything)

    def acknowledge(self, event_ids: Sequence[int]) -> int:
        return acknowledge(self.warehouse, list(event_ids))

    def suggest_mapping(
        self, stream: str, model: str | None, selector: str | None, sample_percent: float
    ) -> str:
        return suggest.suggest_mapping(
            self.warehouse, self.project, stream, model, selector, sample_percent
        )

    def describe_model(self) -> list[anchor_describe.TableInfo]:
        self._prepare_anchor()
        return anchor_describe.describe(self.warehouse, self.plan)

    def query(
        self,
        entity: str,
        attributes: Sequence[str] | None,
        ties: Sequence[str] = (),
        as_of: datetime | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """An entity with only the chosen attributes and ties, now or as of `as_of`."""
        self._prepare_anchor()
        try:
            return anchor_query.run_query(
                self.warehouse, self.plan, entity,
                list(attributes) if attributes is not None else None, list(ties), as_of, limit,
            )  # fmt: skip
        except WarehouseError:
            missing = missing_anchor_table(self.warehouse, self.plan)
            if missing:  # declared after the last run: a reader does not create it
                raise WarehouseError(
                    f"{missing} is not in the warehouse yet: `anchorflow run` creates it"
                ) from None
            raise

    def _prepare_anchor(self) -> None:
        """Create what the anchor declaration added; a reader reads what the last run made."""
        if not self.read_only:
            self.anchor_step.prepare(self.warehouse)

    def export_query(
        self,
        entity: str,
        attributes: Sequence[str] | None,
        ties: Sequence[str],
        as_of: datetime | None,
        limit: int | None,
        fmt: str,
        path: Path,
    ) -> int:
        """`query`'s rows written to a file by the engine (csv, parquet, json lines), whole or
        not at all; returns how many."""
        self._prepare_anchor()
        return anchor_query.export_query(
            self.warehouse, self.plan, entity,
            list(attributes) if attributes is not None else None, list(ties), as_of, limit,
            fmt, path,
        )  # fmt: skip

    def _select_models(self, names: Sequence[str]) -> list[str]:
        unknown = [n for n in names if n not in self.project.staging]
        if unknown:
            known = ", ".join(sorted(self.project.staging)) or "none"
            raise ConfigError([f"unknown staging model {unknown[0]!r} (models: {known})"])
        return list(names) or list(self.project.staging)
