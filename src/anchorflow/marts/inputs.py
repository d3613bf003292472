"""What a mart reads, and what each of those inputs holds now, by the journal.

A mart's SQL names its inputs (`staging.events`, `anchor."User_Campaign"`, `marts.daily`);
each is tracked by the journal of the step that fills it (`journal.marts`): a staging model by
its typed loads, an anchor table by its anchored loads, a raw stream by its committed loads, a
mart by its builds. An anchor perspective or serving table (`User_latest`) is tracked as the
whole anchor model. A mart that reads anything else (a file, a table function, the journal, the
catalog) or asks for the time or a random number is *volatile*: its rows may change while every
input stays the same, so it is rebuilt at every run.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from anchorflow.config.marts import tables_read
from anchorflow.config.project import Project
from anchorflow.journal.marts import (
    InputVersion,
    anchor_versions,
    raw_versions,
    staging_versions,
)
from anchorflow.warehouse import Warehouse

ALL_ANCHOR = "anchor.*"
# Functions whose value changes from one run to the next with the same inputs.
VOLATILE_FUNCTIONS = (exp.CurrentDate, exp.CurrentTimestamp, exp.CurrentTime, exp.Rand)
VOLATILE_NAMES = {"now", "today", "random", "uuid", "gen_random_uuid", "get_current_time",
                  "current_localtimestamp", "clock_timestamp", "statement_timestamp"}  # fmt: skip


@dataclass(frozen=True)
class MartInput:
    """One input of a mart: `key` names it in the journal (`staging.events`, `anchor.*`);
    `table` is the relation whose rows carry load ids (None: a mart, a view)."""

    key: str
    kind: str  # staging | anchor | raw | marts
    journal_key: tuple[str, ...]
    table: tuple[str, str] | None


def read_inputs(project: Project, tree: exp.Expr, marts: list[str]) -> tuple[list[MartInput], bool]:
    """The inputs the SQL reads, and whether it is volatile."""
    staging = {name.lower(): name for name in project.staging}
    raw = {f"{s}_{t}".lower(): (s, t) for s, t in project.streams()}
    spec = project.anchor
    loaded = {name.lower(): name for name in spec.ties}  # tables whose rows carry load ids
    for name, entity in spec.entities.items():
        loaded[name.lower()] = name
        loaded |= {f"{name}_{a}".lower(): f"{name}_{a}" for a in entity.attributes}
    knots = {name.lower(): name for name in spec.knots}
    by_lower = {name.lower(): name for name in marts}
    found: dict[str, MartInput] = {}
    volatile = _reads_untracked(tree) or _asks_the_clock(tree)
    for _, schema, name in tables_read(tree):
        if schema == "staging" and name in staging:
            model = staging[name]
            found[f"staging.{model}"] = MartInput(
                f"staging.{model}", "staging", (model,), ("staging", model)
            )
        elif schema == "raw" and name in raw:
            source, stream = raw[name]
            table = f"{source}_{stream}"
            found[f"raw.{table}"] = MartInput(f"raw.{table}", "raw", raw[name], ("raw", table))
        elif schema == "anchor" and (name in loaded or name in knots):
            target = loaded.get(name) or knots[name]
            rows = ("anchor", target) if name in loaded else None
            found[f"anchor.{target}"] = MartInput(f"anchor.{target}", "anchor", (target,), rows)
        elif schema == "anchor":
            found[ALL_ANCHOR] = MartInput(ALL_ANCHOR, "anchor", (), None)
        elif schema == "marts" and name in by_lower:
            mart = by_lower[name]
            found[f"marts.{mart}"] = MartInput(f"marts.{mart}", "marts", (mart,), None)
        else:
            volatile = True
    return sorted(found.values(), key=lambda i: i.key), volatile


def _reads_untracked(tree: exp.Expr) -> bool:
    """A file scan or a table function (`read_csv(...)`, `'costs.csv'`)."""
    ctes = {cte.alias.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        name = table.this.name if isinstance(table.this, exp.Identifier) else ""
        if not isinstance(table.this, exp.Identifier) or ("." in name or "/" in name):
            return True
        if not table.db and name.lower() not in ctes:
            return True
    return False


def _asks_the_clock(tree: exp.Expr) -> bool:
    if any(True for _ in tree.find_all(*VOLATILE_FUNCTIONS)):
        return True
    return any(
        f.name.lower() in VOLATILE_NAMES for f in tree.find_all(exp.Anonymous, exp.Func)
        if isinstance(f, exp.Anonymous)
    )  # fmt: skip


class Versions:
    """What every input holds now, read from the journal once per run; a mart built during the
    run gets its new version here, so the marts that read it see that it changed."""

    def __init__(self, warehouse: Warehouse, marts: dict[str, int]) -> None:
        self.staging = staging_versions(warehouse)
        self.anchor = anchor_versions(warehouse)
        self.raw = raw_versions(warehouse)
        self.marts = dict(marts)
        everything = list(self.anchor.values())
        self.all_anchor = InputVersion(
            sum(v.rows for v in everything),
            sum(v.ids for v in everything),
            max((v.at for v in everything if v.at), default=None),
        )

    def of(self, item: MartInput) -> InputVersion:
        empty = InputVersion(0)
        if item.kind == "staging":
            return self.staging.get(item.journal_key[0], empty)
        if item.kind == "anchor":
            return self.anchor.get(item.journal_key[0], empty) if item.journal_key else (
                self.all_anchor
            )  # fmt: skip
        if item.kind == "raw":
            source, stream = item.journal_key
            return self.raw.get((source, stream), empty)
        return InputVersion(self.marts.get(item.journal_key[0], 0))

    def all_of(self, items: list[MartInput]) -> dict[str, InputVersion]:
        return {item.key: self.of(item) for item in items}
