"""Analyst models: every `models/<name>.sql` SELECT becomes `marts.<name>`, a table (rebuilt
whole), a view, or an incremental table (see `config.mart_settings`), and is tested after each
build (`marts.data_tests`).

Dependencies are found by parsing the SQL with sqlglot (a reference to `marts.<other>`), so
models build in dependency order without any configuration; a cycle is a configuration error.
Only the marts that are due are built (`marts.plan`), each in its own transaction with its
journal row and its tests' results, so a run killed between two marts leaves the first built
and recorded, and the next run builds the rest. `validate` binds every mart on an empty
warehouse that has every table the project makes (`binding_problems`), so a table or column it
reads (or a column its tests name) that is not there is found before a run; a mart that fails
in a run is named by its file.
"""

from __future__ import annotations

import graphlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp

from anchorflow.config.descriptions import mart_docs
from anchorflow.config.mart_settings import MartSettings
from anchorflow.config.marts import mart_files, mart_settings, marts_read
from anchorflow.config.project import Project
from anchorflow.crashpoints import crash_point
from anchorflow.errors import ConfigError, WarehouseError
from anchorflow.journal.marts import (
    MartBuild,
    ensure_mart_journal,
    failing_marts,
    latest_builds,
    loads_since,
    mart_versions,
    next_build_id,
    record_build,
    record_tests,
)
from anchorflow.journal.schema import ensure_journal, utcnow
from anchorflow.marts.data_tests import TestResult, run_tests
from anchorflow.marts.inputs import MartInput, Versions, read_inputs
from anchorflow.marts.materialize import (
    column_names,
    create_view,
    narrowed,
    query_columns,
    rebuild_periods,
    relations,
    replace_mart,
)
from anchorflow.marts.plan import (
    FULL,
    INCREMENTAL,
    TESTS,
    VIEW,
    Fingerprint,
    MartPlan,
    plan_mart,
)
from anchorflow.warehouse import Warehouse, table
from anchorflow.warehouse.comments import apply_comments

# What the engine says when a query reads a table, column or function that is not there
# (DuckDB's exception names); other failures (a file it may not read here) are not the mart's.
BINDING_ERRORS = ("CatalogException", "BinderException")


@dataclass(frozen=True)
class MartModel:
    name: str
    path: Path
    sql: str
    depends_on: frozenset[str]
    settings: MartSettings = field(default_factory=MartSettings)
    inputs: tuple[MartInput, ...] = ()
    volatile: bool = False
    tree: exp.Query | None = field(default=None, compare=False, repr=False)
    test_inputs: tuple[MartInput, ...] = ()  # what its tests compare with, and it does not read

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint.of(self.sql, self.settings)


@dataclass(frozen=True)
class BuiltMart:
    """A mart the run built (or tested, or skipped: `kind`), and its tests' results."""

    name: str
    rows: int
    seconds: float
    kind: str = FULL  # full | incremental | view | refresh | tests | skipped
    reason: str = ""
    periods: int | None = None  # incremental: periods redone
    tests: list[TestResult] = field(default_factory=list)

    @property
    def failed_tests(self) -> list[TestResult]:
        return [t for t in self.tests if not t.passed]

    @property
    def failed_errors(self) -> list[TestResult]:
        return [t for t in self.failed_tests if t.severity == "error"]


def discover(project: Project) -> dict[str, MartModel]:
    if not project.marts_path.is_dir():
        return {}
    texts = {name: (p, p.read_text()) for name, p in mart_files(project.marts_path).items()}
    settings = mart_settings(project)
    models = {}
    for name, (path, sql) in texts.items():
        tree = sqlglot.parse_one(sql, dialect="duckdb")
        assert isinstance(tree, exp.Query)
        refs = marts_read(tree, list(texts))
        inputs, volatile = read_inputs(project, tree, list(texts))
        compared = _compared(project, settings[name], list(texts), {i.key for i in inputs})
        models[name] = MartModel(
            name, path, sql.strip().rstrip(";"), frozenset(refs), settings[name],
            tuple(inputs), volatile, tree, compared,
        )  # fmt: skip
    return models


def _compared(
    project: Project, settings: MartSettings, marts: list[str], read: set[str]
) -> tuple[MartInput, ...]:
    """The tables the mart's tests compare with (relationships, row_count) that its SQL does
    not read: new rows there run its tests again."""
    names = {getattr(t, "to", None) or getattr(t, "equals", None) for t in settings.all_tests()}
    found: dict[str, MartInput] = {}
    for name in sorted(n for n in names if n):
        schema, _, relation = name.partition(".")
        tree = exp.select("*").from_(exp.table_(relation, db=schema))
        found |= {i.key: i for i in read_inputs(project, tree, marts)[0] if i.key not in read}
    return tuple(found.values())


def build_order(models: dict[str, MartModel]) -> list[str]:
    graph = {name: set(model.depends_on) for name, model in models.items()}
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        cycle = " → ".join(error.args[1])
        raise ConfigError([f"marts: models depend on each other in a cycle: {cycle}"]) from None


def build_marts(warehouse: Warehouse, project: Project) -> list[BuiltMart]:
    """(Re)build every mart in dependency order, whole, and test it (on a warehouse that
    no pipeline prepared, too)."""
    ensure_journal(warehouse)
    return MartsStep(project).run(warehouse, force=True)


def binding_problems(warehouse: Warehouse, project: Project) -> list[str]:
    """One line per mart whose SQL the engine cannot bind, or whose settings name a column it
    does not have, naming its file: run on an empty scratch warehouse that has every table the
    project makes. A mart that reads one that failed is not reported again."""
    models = discover(project)
    warehouse.create_schema("marts")
    problems: list[str] = []
    skipped: set[str] = set()
    for name in build_order(models):
        model = models[name]
        if model.depends_on & skipped:
            skipped.add(name)
            continue
        try:
            warehouse.execute(
                f"CREATE TABLE {table('marts', name)} AS SELECT * FROM ({model.sql}) LIMIT 0"
            )
        except WarehouseError as error:
            skipped.add(name)
            kind, _, message = str(error).split("\n")[0].partition(": ")
            if kind in BINDING_ERRORS:
                problems.append(f"{project.file.name}: marts: {_where(project, model)}: {message}")
            continue
        where = f"{project.file.name}: marts: {_where(project, model)}"
        found = setting_problems(warehouse, model)
        problems += [f"{where}: {p}" for p in found or _test_problems(warehouse, project, model)]
    return problems


def setting_problems(warehouse: Warehouse, model: MartModel) -> list[str]:
    """The columns the mart's settings and tests name that it (or the table a relationship
    points to) does not have."""
    from anchorflow.marts.data_tests import test_name, tested_columns

    have = column_names(warehouse, model.name)
    shown = ", ".join(have)
    problems = []
    time_column = model.settings.time_column
    if time_column and time_column not in have:
        problems.append(f"time_column: it has no column {time_column!r} ({shown})")
    elif time_column:
        kind = str(dict(warehouse.query(warehouse.sql.column_types(), ["marts", model.name]))
                   [time_column]).upper()  # fmt: skip
        if "DATE" not in kind and "TIMESTAMP" not in kind:
            problems.append(f"time_column: {time_column} is {kind}; expected a DATE or TIMESTAMP")
    for column in model.settings.columns:
        if column not in have:
            problems.append(f"columns.{column}: it has no column {column!r} ({shown})")
    for test in model.settings.all_tests():
        for column in tested_columns(test):
            if column not in have and column not in model.settings.columns:
                problems.append(f"test {test_name(test)}: it has no column {column!r} ({shown})")
        to, wanted = getattr(test, "to", None), getattr(test, "field", None)
        if to and wanted:
            schema, _, name = to.partition(".")
            theirs = warehouse.query(
                "SELECT column_name FROM information_schema.columns WHERE "
                "table_catalog = current_database() AND table_schema = ? AND lower(table_name) = ?",
                [schema, name.lower()],
            )
            if theirs and wanted not in {str(r[0]) for r in theirs}:
                problems.append(f"test {test_name(test)}: {to} has no column {wanted!r}")
    return problems


def _test_problems(warehouse: Warehouse, project: Project, model: MartModel) -> list[str]:
    """The tests the engine cannot run (a `where` naming a column that is not there), run on
    the empty mart."""
    problems = []
    for test in model.settings.all_tests():
        try:
            run_tests(warehouse, project, model.name, [test])
        except WarehouseError as error:
            problems.append(str(error).partition(": ")[2])
    return problems


def _rows(warehouse: Warehouse, name: str) -> int:
    return int(warehouse.scalar(f"SELECT count(*) FROM {table('marts', name)}"))


def _where(project: Project, model: MartModel) -> str:
    return f"{project.marts.path}/{model.path.name}"


# Called with the marts whose tests failed in a run (the pipeline alerts them).
OnFailures = Callable[[list[BuiltMart]], None]


class MartsStep:
    """Marts have no loads of their own: what is pending is every mart that is due (see
    `marts.plan`), and removing a load below them is a rebuild of every mart, which removes
    nothing of theirs."""

    name = "marts"

    def __init__(self, project: Project, on_failures: OnFailures | None = None) -> None:
        self.project = project
        self.on_failures = on_failures

    def pending(self, warehouse: Warehouse) -> list[str]:
        """The marts that are due, in build order."""
        models = discover(self.project)
        ensure_mart_journal(warehouse)
        last, versions, existing = self._state(warehouse)
        return [
            name for name in build_order(models)
            if self._plan(models[name], last, versions, existing, False) is not None
        ]  # fmt: skip

    def run(self, warehouse: Warehouse, force: bool = False) -> list[BuiltMart]:
        """Build (whole with `force`) and test every mart that is due, in dependency order. A
        mart whose tests of severity error fail is kept, and the marts that read it wait for
        the next run."""
        models = discover(self.project)
        order = build_order(models)
        warehouse.create_schema("marts")
        ensure_mart_journal(warehouse)
        last, versions, existing = self._state(warehouse)
        failing = failing_marts(warehouse)
        built: list[BuiltMart] = []
        held: set[str] = set()
        for name in order:
            model = models[name]
            if model.depends_on & held:
                held.add(name)
                waits = ", ".join(sorted(model.depends_on & held))
                built.append(BuiltMart(name, 0, 0.0, "skipped", f"waits for {waits}"))
                continue
            plan = self._plan(model, last, versions, existing, force)
            if plan is None:
                if name in failing:  # as its tests last said: its readers wait
                    held.add(name)
                continue
            done = self._build(warehouse, model, plan, last.get(name), versions)
            built.append(done)
            if done.failed_errors:
                held.add(name)
        failed = [m for m in built if m.failed_tests]
        if failed and self.on_failures is not None:
            self.on_failures(failed)
        return built

    def remove(self, warehouse: Warehouse, load_ids: Sequence[int]) -> dict[str, int]:
        self.run(warehouse, force=True)
        return {}

    def test(self, warehouse: Warehouse, names: Sequence[str] = ()) -> list[BuiltMart]:
        """Run the tests of these marts (all when none are named) as they are now; recorded."""
        models = discover(self.project)
        unknown = [n for n in names if n not in models]
        if unknown:
            known = ", ".join(sorted(models)) or "none"
            raise ConfigError([f"unknown mart {unknown[0]!r} (marts: {known})"])
        ensure_mart_journal(warehouse)
        last = latest_builds(warehouse)
        done = []
        for name in [n for n in build_order(models) if not names or n in names]:
            started = time.perf_counter()
            tests = models[name].settings.all_tests()
            with warehouse.transaction():
                results = run_tests(warehouse, self.project, name, tests)
                build = last.get(name)
                record_tests(warehouse, build.build_id if build else None,
                             [r.record() for r in results])  # fmt: skip
            seconds = time.perf_counter() - started
            done.append(BuiltMart(name, 0, seconds, TESTS, "asked for", None, results))
        return done

    def _state(self, warehouse: Warehouse) -> tuple[dict[str, MartBuild], Versions, dict[str, str]]:
        return latest_builds(warehouse), Versions(warehouse, mart_versions(warehouse)), (
            relations(warehouse)
        )  # fmt: skip

    @staticmethod
    def _plan(
        model: MartModel,
        last: dict[str, MartBuild],
        versions: Versions,
        existing: dict[str, str],
        force: bool,
    ) -> MartPlan | None:
        return plan_mart(
            model.settings, model.fingerprint, list(model.inputs), model.volatile,
            last.get(model.name), versions.all_of([*model.inputs, *model.test_inputs]),
            existing.get(model.name), force, list(model.test_inputs),
        )  # fmt: skip

    def _build(
        self,
        warehouse: Warehouse,
        model: MartModel,
        plan: MartPlan,
        last: MartBuild | None,
        versions: Versions,
    ) -> BuiltMart:
        """Build the mart as planned, record it and run its tests, in one transaction."""
        started = time.perf_counter()
        name = model.name
        with warehouse.transaction():
            build_id = next_build_id(warehouse)
            existing = relations(warehouse).get(name)
            try:
                plan, periods = self._materialize(warehouse, model, plan, last, existing)
            except WarehouseError as error:
                raise WarehouseError(f"{_where(self.project, model)}: {error}") from error
            is_view = model.settings.materialization == "view"
            rows = (
                0
                if is_view
                else int(warehouse.scalar(f"SELECT count(*) FROM {table('marts', name)}"))
            )
            if plan.kind in (FULL, VIEW):  # a new table or view starts without comments
                apply_comments(warehouse, "marts", {name: mart_docs(self.project)[name]})
            results = run_tests(warehouse, self.project, name, model.settings.all_tests())
            fingerprint = model.fingerprint
            record = MartBuild(
                build_id, name, plan.kind, model.settings.materialization, fingerprint.sql,
                fingerprint.settings, fingerprint.tests, column_names(warehouse, name),
                versions.all_of([*model.inputs, *model.test_inputs]), utcnow(),
            )  # fmt: skip
            seconds = time.perf_counter() - started
            record_build(warehouse, record, plan.reason, periods, rows, seconds)
            record_tests(warehouse, build_id, [r.record() for r in results])
            crash_point("mart_before_commit")
        crash_point("mart_after_commit")
        if plan.kind != TESTS:
            versions.marts[name] = build_id
        return BuiltMart(name, rows, seconds, plan.kind, plan.reason, periods, results)

    def _materialize(
        self,
        warehouse: Warehouse,
        model: MartModel,
        plan: MartPlan,
        last: MartBuild | None,
        existing: str | None,
    ) -> tuple[MartPlan, int | None]:
        """Make the mart's rows as planned (an incremental plan may turn out to need the
        whole table); returns the plan carried out and the periods redone."""
        if plan.kind == VIEW:
            create_view(warehouse, model.name, model.sql, existing)
        elif plan.kind == INCREMENTAL:
            narrow = self._narrowed(warehouse, model, plan, last)
            if isinstance(narrow, str):
                plan = MartPlan(FULL, f"{plan.reason}; whole: {narrow}", plan.changed)
            else:
                settings = model.settings
                assert settings.time_column is not None
                periods = rebuild_periods(
                    warehouse, model.name, model.sql, settings.time_column, settings.period,
                    narrow,
                )  # fmt: skip
                return plan, periods
        if plan.kind == FULL:
            replace_mart(warehouse, model.name, model.sql, existing)
        return plan, None

    @staticmethod
    def _narrowed(
        warehouse: Warehouse, model: MartModel, plan: MartPlan, last: MartBuild | None
    ) -> list[tuple[str, list[int], int]] | str:
        """Per input that gained loads, the mart's SQL narrowed to them; or why the mart must
        be built whole."""
        assert model.tree is not None and last is not None
        if query_columns(warehouse, model.sql) != column_names(warehouse, model.name):
            return "its columns changed"
        found = []
        for item in plan.changed:
            since = last.inputs.get(item.key)
            if item.table is None or since is None:
                return f"{item.key} has no load ids"
            loads = loads_since(warehouse, item.kind, item.journal_key, since)
            if loads is None:
                return f"{item.key} lost or retyped loads"
            if loads:
                tree = narrowed(model.tree, *item.table)
                reads = len(list(tree.find_all(exp.Placeholder)))
                found.append((tree.sql("duckdb"), loads, reads))
        return found
