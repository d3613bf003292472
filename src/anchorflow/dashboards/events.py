"""Funnel and retention over an events table: one set-based query per tile, built with sqlglot.

The query is built as sqlglot expressions in the canonical (DuckDB) spelling, which each engine's
warehouse transpiles (`warehouse.dialect`); identifiers are validated and quoted, and every value
(event names, dates, the conversion window, segment values) is a bound parameter.

Funnel: a user enters at their first step-1 event in [start, end); step k counts the users with
a step-k event strictly after their step k-1 (the earliest such one, which is what lets the most
users through) and at most `window` after their step-1 event. Retention: a user's cohort is the
week (Monday) of their first event ever (of the cohort event types, if given; a user whose first
event falls outside [start, end) is in no cohort shown); week n counts the cohort's users with
an event (of the return types, if given) in the n-th calendar week after their cohort's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlglot
from sqlglot import exp

from anchorflow.config.dashboards import EventsSource, FunnelTile, RetentionTile
from anchorflow.warehouse.base import ident, table

_PARAM = re.compile(r"\$af_p(\d+)\b")


@dataclass
class Bound:
    """Values met while building a query: each becomes a placeholder, `?` once rendered."""

    values: list[Any] = field(default_factory=list)

    def __call__(self, value: Any) -> exp.Placeholder:
        self.values.append(value)
        return exp.Placeholder(this=f"af_p{len(self.values) - 1}")

    def render(self, tree: exp.Expression) -> tuple[str, list[Any]]:
        """The SQL with `?` placeholders and the values in the order they appear in it."""
        text = tree.sql("duckdb")
        order = [int(m.group(1)) for m in _PARAM.finditer(text)]
        return _PARAM.sub("?", text), [self.values[i] for i in order]


@dataclass(frozen=True)
class Segment:
    """A global segment filter: `column = value` on the events."""

    column: str
    value: str


def _col(name: str, alias: str | None = None) -> exp.Column:
    ident(name)  # validated before it reaches any SQL
    return exp.column(name, table=alias, quoted=True)


def _when(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)


def _events(
    source: EventsSource,
    bind: Bound,
    types: list[str],
    segments: list[Segment],
    since: datetime | None,
    until: datetime | None,
    with_event: bool = False,
) -> exp.Select:
    """`u, t` (and `e` with `with_event`) of the events of `types` (all when empty) between
    the times, by a user. Without types nor `with_event` the event column is not read, so
    retention may read a mart of user-days that has none."""
    schema, name = source.schema_and_name
    # As a timestamp: a mart's DATE column too (PostgreSQL would truncate a date to weeks as
    # a timestamp with time zone).
    time = exp.Cast(this=_col(source.time), to=exp.DataType.build("TIMESTAMP"))
    columns = [exp.alias_(_col(source.user), "u"), exp.alias_(time, "t")]
    if with_event:
        columns.append(exp.alias_(_col(source.event), "e"))
    query = (
        exp.select(*columns)
        .from_(exp.to_table(table(schema, name)))
        .where(exp.Not(this=exp.Is(this=_col(source.user), expression=exp.Null())))
    )
    if types:
        query = query.where(exp.In(this=_col(source.event), expressions=[bind(t) for t in types]))
    if since is not None:
        query = query.where(exp.GTE(this=_col(source.time), expression=bind(since)))
    if until is not None:
        query = query.where(exp.LT(this=_col(source.time), expression=bind(until)))
    for segment in segments:
        query = query.where(exp.EQ(this=_col(segment.column), expression=bind(segment.value)))
    return query


def _interval(bind: Bound, span: timedelta) -> exp.Expression:
    return exp.Cast(
        this=bind(f"{int(span.total_seconds())} seconds"), to=exp.DataType.build("INTERVAL")
    )


def funnel_sql(
    source: EventsSource,
    tile: FunnelTile,
    start: date,
    end: date,
    segments: list[Segment] = (),  # type: ignore[assignment]
) -> tuple[str, list[Any]]:
    """One row per `by` value (one row without it): `by`, then the users at each step.

    `s0` is each user's entry, their first step-1 event in the range (a scan of step 1's
    types); `ev` the events of the later steps' types (one scan, a flag per step: a type may
    be in several steps); `near` keeps each entered user's events of those within the window
    after their entry (a small share of them), and the later steps chain over it: step k is
    the earliest step-k event after the user's step k-1 (`s<k>`). Two scans rather than one
    shared: a materialized scan of every step's events cost more than scanning twice."""
    bind = Bound()
    since, until = _when(start), _when(end)
    entries = _events(source, bind, list(tile.steps[0].event), list(segments), since, until)
    if tile.by:
        entries = entries.select(exp.alias_(_col(tile.by), "b"))
    first = (
        exp.select("u", exp.alias_(exp.func("min", exp.column("t")), "t1"))
        .from_(entries.subquery("e0"))
        .group_by("u")
    )
    if tile.by:
        first = first.select(exp.alias_(exp.func("arg_min", exp.column("b"), exp.column("t")), "b"))
    later = range(1, len(tile.steps))
    types = list(dict.fromkeys(t for k in later for t in tile.steps[k].event))
    events = _events(source, bind, types, list(segments), since, until + tile.window)
    events = events.select(*(_step_flag(source, bind, tile.steps[k].event, k) for k in later))
    near = (
        exp.select(
            exp.column("u", "x"), exp.column("t", "x"), *(exp.column(f"f{k}", "x") for k in later)
        )
        .from_(exp.alias_(exp.to_table("s0"), "p", table=True))
        .join(
            exp.alias_(exp.to_table("ev"), "x", table=True),
            on=exp.and_(
                exp.column("u", "x").eq(exp.column("u", "p")),
                exp.GT(this=exp.column("t", "x"), expression=exp.column("t1", "p")),
                exp.LTE(
                    this=exp.column("t", "x"),
                    expression=exp.Add(
                        this=exp.column("t1", "p"), expression=_interval(bind, tile.window)
                    ),
                ),
            ),
        )
    )
    ctes: list[tuple[str, exp.Select]] = [("s0", first), ("ev", events), ("near", near)]
    ctes.append(("s1", exp.select("u", exp.alias_(exp.func("min", exp.column("t")), "t"))
                 .from_("near").where(exp.column("f1")).group_by("u")))  # fmt: skip
    for k in range(2, len(tile.steps)):
        reached = (
            exp.select(exp.column("u", "p"), exp.alias_(exp.func("min", exp.column("t", "x")), "t"))
            .from_(exp.alias_(exp.to_table(f"s{k - 1}"), "p", table=True))
            .join(
                exp.alias_(exp.to_table("near"), "x", table=True),
                on=exp.and_(
                    exp.column("u", "x").eq(exp.column("u", "p")),
                    exp.column(f"f{k}", "x"),
                    exp.GT(this=exp.column("t", "x"), expression=exp.column("t", "p")),
                ),
            )
            .group_by(exp.column("u", "p"))
        )
        ctes.append((f"s{k}", reached))
    return bind.render(_funnel_counts(tile, ctes))


def _step_flag(source: EventsSource, bind: Bound, types: list[str], k: int) -> exp.Expr:
    """`f<k>`: whether the event is of step k's types."""
    flag = exp.In(this=_col(source.event), expressions=[bind(t) for t in types])
    return exp.alias_(flag, f"f{k}")


def _funnel_counts(tile: FunnelTile, ctes: list[tuple[str, exp.Select]]) -> exp.Select:
    """The users of each step `s<k>`, by the entry's `b` when the tile has `by`."""
    columns: list[exp.Expr] = [exp.alias_(exp.column("b", "s0"), "b")] if tile.by else []
    columns += [
        exp.alias_(exp.func("count", exp.column("u", f"s{k}")), f"step_{k}")
        for k in range(len(tile.steps))
    ]
    select = exp.select(*columns).from_("s0")
    for k in range(1, len(tile.steps)):
        select = select.join(
            f"s{k}", on=exp.column("u", f"s{k}").eq(exp.column("u", "s0")), join_type="left"
        )
    if tile.by:
        select = select.group_by(exp.column("b", "s0")).order_by(exp.column("b", "s0"))
    for name, cte in ctes:
        select = select.with_(name, as_=cte)
    return select


def retention_sql(
    source: EventsSource,
    tile: RetentionTile,
    start: date,
    end: date,
    segments: list[Segment] = (),  # type: ignore[assignment]
) -> tuple[str, list[Any]]:
    """One row per cohort week and week number n (0..weeks): cohort, its users, n, returning
    users (NULL n and users for a cohort nobody of which came back).

    With `first_seen` (a mart of each user's first event time per dimension values), the
    cohorts group its rows by user rather than every event: the same minimum, fewer rows."""
    bind = Bound()
    since, until = _when(start), _when(end)
    week = exp.func("date_trunc", exp.Literal.string("week"), exp.func("min", exp.column("t")))
    first = (
        exp.select("u", exp.alias_(week, "cohort"))
        .from_(
            _events(
                tile.first_seen or source, bind, list(tile.cohort_event), list(segments), None, None
            ).subquery("c")
        )
        .group_by("u")
        .having(exp.GTE(this=exp.func("min", exp.column("t")), expression=bind(since)))
        .having(exp.LT(this=exp.func("min", exp.column("t")), expression=bind(until)))
    )
    # Activity from the Monday of the first cohort to the end of the last cohort's last week.
    active_since = since - timedelta(days=since.weekday())
    active_until = until + timedelta(weeks=tile.weeks + 1)
    active = exp.select(
        "u", exp.alias_(exp.func("date_trunc", exp.Literal.string("week"), exp.column("t")), "week")
    ).from_(
        _events(source, bind, list(tile.return_event), list(segments), active_since, active_until)
        .subquery("r")
    ).distinct()  # fmt: skip
    # Whole weeks between two Mondays.
    weeks = sqlglot.parse_one(
        "CAST(date_diff('day', f.cohort, a.week) // 7 AS INTEGER)", read="duckdb"
    )
    grid = (
        exp.select(
            exp.column("cohort", "f"),
            exp.alias_(weeks, "n"),
            exp.alias_(exp.func("count", exp.column("u", "f")), "users"),
        )
        .from_(exp.alias_(exp.to_table("first_seen"), "f", table=True))
        .join(
            exp.alias_(exp.to_table("active"), "a", table=True),
            on=exp.and_(
                exp.column("u", "a").eq(exp.column("u", "f")),
                exp.GTE(this=exp.column("week", "a"), expression=exp.column("cohort", "f")),
                exp.LT(
                    this=exp.column("week", "a"),
                    expression=exp.Add(
                        this=exp.column("cohort", "f"),
                        expression=_interval(bind, timedelta(weeks=tile.weeks + 1)),
                    ),
                ),
            ),
        )
        .group_by(exp.column("cohort", "f"), weeks.copy())
    )
    sizes = (
        exp.select("cohort", exp.alias_(exp.func("count", exp.Star()), "size"))
        .from_("first_seen")
        .group_by("cohort")
    )
    select = (
        exp.select(
            exp.column("cohort", "s"),
            exp.column("size", "s"),
            exp.column("n", "g"),
            exp.column("users", "g"),
        )
        .from_(exp.alias_(exp.to_table("sizes"), "s", table=True))
        .join(
            exp.alias_(exp.to_table("grid"), "g", table=True),
            on=exp.column("cohort", "g").eq(exp.column("cohort", "s")),
            join_type="left",
        )
        .order_by(exp.column("cohort", "s"), exp.column("n", "g"))
        .with_("first_seen", as_=first)
        .with_("active", as_=active)
        .with_("grid", as_=grid)
        .with_("sizes", as_=sizes)
    )
    return bind.render(select)


def check_sql(sql: str) -> None:
    """Parse the built SQL back (a test's guard that sqlglot wrote what it reads)."""
    sqlglot.parse_one(sql, read="duckdb")
