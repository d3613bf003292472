"""The fraud step: run each enabled rule of the catalogue over a window of whole UTC days.

Per rule, one transaction: its query (the rule's SQL with the inputs as CTEs, parameters
bound) fills a scratch table; the rows its table lacks are added under the run's
deterministic `rule_run_id`; `fraud_user` and `fraud_event` take the new flags; the journal
records the run. A rule whose inputs are not mapped, not loaded yet, or lack a column it reads
is skipped with one line saying which.

The window: `--from`/`--to` when given; else, per rule, from the start of the last day it ran
over (that day may have been partial) to the end of the newest day in the inputs, or from the
first day in the inputs when it never ran.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from anchorflow.config.project import Project
from anchorflow.crashpoints import crash_point
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.fraud import rules as catalogue_rules
from anchorflow.fraud.inputs import DATA_TABLES, Inputs, resolve_inputs, with_inputs
from anchorflow.fraud.report import replace_report_views
from anchorflow.fraud.results import (
    FOUND,
    add_found,
    ensure_fraud_tables,
    ensure_rule_table,
    found_columns,
    merge_events,
    merge_users,
    replace_reference_tables,
)
from anchorflow.fraud.rules import Rule
from anchorflow.journal.fraud import (
    RuleRunRecord,
    last_window_ends,
    last_windows,
    record_rule_run,
)
from anchorflow.warehouse import Warehouse

DAY = timedelta(days=1)


# What a rule run did: the journal's record of it.
RuleRun = RuleRunRecord


@dataclass(frozen=True)
class RuleInfo:
    slug: str
    version: int
    severity: str
    flags: tuple[str, ...]
    state: str  # runs | shadow | disabled | the one line saying what it lacks
    description: str
    path: str


@dataclass
class FraudRun:
    runs: list[RuleRun] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # rule → why, one line

    @property
    def users_added(self) -> int:
        return sum(r.users_added for r in self.runs)


def rule_run_id(rule: Rule, params: Mapping[str, object], start: datetime, end: datetime) -> str:
    """The same rule, version, parameters and window give the same id, on any machine."""
    text = json.dumps(
        [rule.slug, rule.version, params, start.isoformat(), end.isoformat()],
        sort_keys=True,
        default=str,
    )
    return f"{rule.slug}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class FraudStep:
    name = "fraud"

    def __init__(self, project: Project) -> None:
        self.project = project
        self.settings = project.fraud

    def rules(self) -> dict[str, Rule]:
        """The catalogue with the project's rules; settings naming no rule are an error."""
        folder = self.project.fraud_rules_path
        chosen = "rules_path" in self.settings.model_fields_set
        found = catalogue_rules.catalogue(folder if chosen or folder.is_dir() else None)
        unknown = sorted(set(self.settings.rules) - set(found))
        if unknown:
            raise ConfigError([
                f"{self.project.file.name}: fraud.rules.{name}: no such rule (the catalogue "
                f"has: {', '.join(sorted(found))})" for name in unknown
            ])  # fmt: skip
        return found

    def pending(self, warehouse: Warehouse) -> list[str]:
        return [slug for slug in self.rules() if self._enabled(slug)]

    def prepare(self, warehouse: Warehouse) -> None:
        with warehouse.transaction():
            ensure_fraud_tables(warehouse)
            replace_reference_tables(warehouse, self.settings, catalogue_rules.data_tables())

    def run(
        self,
        warehouse: Warehouse,
        start: date | None = None,
        end: date | None = None,
        only: Sequence[str] = (),
        on_rule: Callable[[RuleRun], None] | None = None,
        windows: dict[str, tuple[datetime, datetime]] | None = None,
    ) -> FraudRun:
        """`windows`: run each rule named there over exactly that window (and only those)."""
        rules = self.rules()
        if windows is not None:
            only = list(windows)
        chosen = [slug for slug in (only or rules) if slug in rules and self._enabled(slug)]
        if only and (bad := sorted(set(only) - set(rules))):
            raise ConfigError([f"fraud run: no rule {', '.join(bad)} in the catalogue"])
        self.prepare(warehouse)
        inputs = resolve_inputs(warehouse, self.project)
        result = FraudRun()
        span = _data_span(warehouse, inputs)
        ends = last_window_ends(warehouse)
        for slug in chosen:
            rule = rules[slug]
            why = inputs.lacking(rule.inputs)
            if why is not None:
                result.skipped[slug] = why
                continue
            window = windows[slug] if windows else _window(start, end, span, ends.get(slug))
            if window is None:
                result.skipped[slug] = "no new data since its last run"
                continue
            done = self._run_rule(warehouse, rule, inputs, *window)
            result.runs.append(done)
            if on_rule is not None:
                on_rule(done)
        with warehouse.transaction():
            replace_report_views(warehouse, inputs)
        return result

    def problems(self, warehouse: Warehouse) -> list[str]:
        """For `validate`, on a scratch warehouse with every table the project makes, empty:
        one line per rule file, setting or parameter that is wrong, and per enabled rule whose
        SQL the engine cannot bind over the inputs as mapped."""
        try:
            rules = self.rules()
        except ConfigError as error:
            return list(error.problems)
        self.prepare(warehouse)
        inputs = resolve_inputs(warehouse, self.project)
        problems = []
        day = datetime(2000, 1, 1)
        for slug in self.pending(warehouse):
            rule, settings = rules[slug], self.settings.rules.get(slug)
            try:
                params = {**rule.params, **(settings.params if settings else {})}
                query, values = _query(rule, params, inputs, day, day + DAY)
            except ConfigError as error:
                problems += [f"{self.project.file.name}: fraud.rules.{slug}: {p}"
                             for p in error.problems]  # fmt: skip
                continue
            if inputs.lacking(rule.inputs) is not None:
                continue  # `fraud run` says so, and runs the others
            try:
                warehouse.query(f"SELECT * FROM ({query}) AS q LIMIT 0", values)
            except WarehouseError as error:
                problems.append(f"fraud rule {slug} ({rule.path}): {str(error).splitlines()[0]}")
        return problems

    def describe(self, warehouse: Warehouse) -> list[RuleInfo]:
        """Every rule of the catalogue, and whether it runs here."""
        inputs = resolve_inputs(warehouse, self.project)
        listed = []
        for slug, rule in sorted(self.rules().items()):
            settings = self.settings.rules.get(slug)
            state = "runs"
            if settings is not None and not settings.enabled:
                state = "disabled"
            elif (why := inputs.lacking(rule.inputs)) is not None:
                state = f"skipped: {why}"
            elif settings is not None and settings.shadow:
                state = "shadow"
            listed.append(RuleInfo(slug, rule.version, rule.severity, rule.flags, state,
                                   rule.description, str(rule.path)))  # fmt: skip
        return listed

    def last_windows(self, warehouse: Warehouse) -> dict[str, tuple[datetime, datetime]]:
        """Per rule, the window of its latest run."""
        return last_windows(warehouse)

    def remove(self, warehouse: Warehouse, load_ids: Sequence[int]) -> dict[str, int]:
        """Fraud results are a record of what was flagged when, keyed by natural ids, not by
        loads: removing a load below them leaves them (`forget` erases a person from them)."""
        return {}

    def _enabled(self, slug: str) -> bool:
        settings = self.settings.rules.get(slug)
        return settings is None or settings.enabled

    def _run_rule(
        self, warehouse: Warehouse, rule: Rule, inputs: Inputs, start: datetime, end: datetime
    ) -> RuleRun:
        settings = self.settings.rules.get(rule.slug)
        params = {**rule.params, **(settings.params if settings else {})}
        shadow = bool(settings and settings.shadow)
        severity = (settings.severity if settings else None) or rule.severity
        run_id = rule_run_id(rule, params, start, end)
        started = time.perf_counter()
        query, values = _query(rule, params, inputs, start, end)
        with warehouse.transaction():
            warehouse.execute(f"DROP TABLE IF EXISTS {FOUND}")
            try:
                warehouse.execute(f"CREATE TABLE {FOUND} AS {query}", values)
            except WarehouseError as error:
                raise WarehouseError(f"fraud rule {rule.slug} ({rule.path}): {error}") from error
            columns = found_columns(warehouse)
            found = int(warehouse.scalar(f"SELECT count(*) FROM {FOUND}"))
            target = ensure_rule_table(warehouse, rule.slug, columns)
            added = add_found(warehouse, target, run_id, columns, inputs)
            users = merge_users(warehouse, target, rule.slug, run_id, severity, shadow)
            lookback = self.settings.event_lookback
            events = merge_events(
                warehouse, target, rule.slug, run_id, shadow, inputs, lookback, end
            )
            warehouse.execute(f"DROP TABLE {FOUND}")
            seconds = time.perf_counter() - started
            record = RuleRunRecord(
                run_id, rule.slug, rule.version, json.dumps(params, sort_keys=True, default=str),
                start, end, shadow, found, added, users, events, seconds,
            )  # fmt: skip
            record_rule_run(warehouse, record)
            crash_point("fraud_rule_before_commit")
        crash_point("fraud_rule_after_commit")
        return record


def _query(
    rule: Rule, params: Mapping[str, object], inputs: Inputs, start: datetime, end: datetime
) -> tuple[str, list[object]]:
    """The rule's SELECT over the inputs and data tables it reads, and its bound values."""
    tree, values = catalogue_rules.bind(rule, params, start, end)
    reads = [n for n in (*rule.inputs, *rule.tables) if n in (*inputs.selects, *DATA_TABLES)]
    return with_inputs(tree, inputs, reads).sql(dialect="duckdb"), values


def _data_span(warehouse: Warehouse, inputs: Inputs) -> tuple[datetime, datetime] | None:
    """The first and the last instant in the inputs that can be read."""
    parts = [f"SELECT min(time) AS lo, max(time) AS hi FROM ({sql}) AS i"
             for sql in inputs.selects.values()]  # fmt: skip
    if not parts:
        return None
    row = warehouse.query(f"SELECT min(lo), max(hi) FROM ({' UNION ALL '.join(parts)}) AS s")
    lo, hi = row[0] if row else (None, None)
    return (lo, hi) if lo is not None and hi is not None else None


def _window(
    start: date | None,
    end: date | None,
    span: tuple[datetime, datetime] | None,
    last_end: datetime | None,
) -> tuple[datetime, datetime] | None:
    """Whole UTC days: given, or from the last run's last day (or the data's first) to the end
    of the data's newest day."""
    if start is not None and end is not None:
        return _midnight(start), _midnight(end) + DAY
    if span is None:
        return None
    first = _midnight(start) if start is not None else (
        last_end - DAY if last_end is not None else _midnight(span[0].date())
    )  # fmt: skip
    last = _midnight(end) + DAY if end is not None else _midnight(span[1].date()) + DAY
    return (first, last) if first < last else None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)
