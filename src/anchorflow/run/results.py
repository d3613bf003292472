"""What the façade returns: plain dataclasses that the CLI prints and a web page serialises.

`as_json` turns any of them (nested lists, dicts, datetimes, Arrow tables) into JSON-ready
values, so `--json` and a future read API say the same thing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pyarrow as pa

from anchorflow.anchor.load import AnchorRun
from anchorflow.fraud.step import FraudRun
from anchorflow.journal.alerts import TargetState
from anchorflow.journal.erasures import PendingErasure
from anchorflow.journal.field_stats import FieldStat
from anchorflow.journal.loads import LoadInfo
from anchorflow.journal.runs import RunInfo
from anchorflow.journal.transfers import ModelTotals
from anchorflow.land.step import WindowResult
from anchorflow.marts import BuiltMart
from anchorflow.publish.export import ExportedTable
from anchorflow.run.compaction import Compaction
from anchorflow.sources.base import QueueHealth
from anchorflow.stage.runner import ModelRun


@dataclass
class RunSummary:
    """What `run` and `backfill` did: windows committed, staging, the anchor model, marts,
    the Parquet exports."""

    windows: list[WindowResult] = field(default_factory=list)
    staging: list[ModelRun] = field(default_factory=list)
    anchor: AnchorRun | None = None
    marts: list[BuiltMart] = field(default_factory=list)
    seconds: float = 0.0
    compaction: Compaction | None = None  # the file was rewritten: erasures were due
    exports: list[ExportedTable] = field(default_factory=list)  # exports.tables, after marts
    fraud: FraudRun | None = None  # the rule catalogue, after marts (fraud.on_run)
    metric_alerts: list[Any] = field(default_factory=list)  # metrics.alerts' AlertChecks

    @property
    def rows(self) -> int:
        return sum(w.rows for w in self.windows)

    @property
    def quarantined(self) -> int:
        return sum(w.quarantined for w in self.windows)

    @property
    def staged(self) -> int:
        return sum(w.staged for w in self.windows)

    @property
    def suppressed(self) -> int:
        return sum(w.suppressed for w in self.windows)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def failed_mart_tests(self) -> int:
        """Tests of severity error that failed on the marts built."""
        return sum(len(m.failed_errors) for m in self.marts)

    @property
    def warnings(self) -> list[str]:
        """What looked suspicious in the windows committed (their load records keep it)."""
        return [
            f"{w.source} {w.stream} {w.window_key} (load {w.load_id}): {w.note}"
            for w in self.windows
            if w.note
        ]


@dataclass(frozen=True)
class SourceStatus:
    """Where one stream of one source stands."""

    source: str
    stream: str
    position: str
    due: int | None
    lag_hours: float | None
    last_available: str | None
    note: str
    replay_end: str | None = None  # the last window of a replay: `lag_hours` is not measured
    queue: QueueHealth | None = None  # a queue's depth, chunks waiting, readers alive


@dataclass(frozen=True)
class Status:
    sources: list[SourceStatus]
    loads: list[LoadInfo]
    runs: list[RunInfo]
    quarantined: int
    noted_loads: list[LoadInfo] = field(default_factory=list)  # suspicious deliveries
    open_schema_events: int = 0
    open_schema_event_fields: int = 0  # the fields those events list
    alerts: list[TargetState] = field(default_factory=list)  # targets with alerts waiting
    erasures: list[PendingErasure] = field(default_factory=list)  # bytes still in the file


@dataclass(frozen=True)
class FieldReport:
    """A staging model's latest batch statistics, with type errors per column (all time)."""

    model: str
    batch_id: int | None
    load_ids: list[int]
    fields: list[FieldStat]
    type_errors: dict[str, int]


@dataclass(frozen=True)
class WarehouseTotals:
    """What the warehouse holds, as the demo sums it up."""

    loads: int
    raw_rows: int
    quarantined: int
    models: list[ModelTotals]


def as_json(value: Any) -> Any:
    """A result as JSON-ready values (dataclasses as objects, times as ISO text)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, pa.Table):
        return as_json(value.to_pylist())
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [as_json(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal | UUID | Path):
        return str(value)
    return value
