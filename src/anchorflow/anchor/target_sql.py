"""The SQL of one attribute or tie: its observations in a batch of loads, and the insert of
its history (scd0: first values; scd1/scd2: change points merged with the stored ones).

`anchor.load` runs these statements in the table's transaction; see its docstring for the
history algorithm they implement.
"""

from __future__ import annotations

from anchorflow.anchor.plan import AnchorPlan, TargetPlan, anchor_table
from anchorflow.warehouse import ident, table


class TargetSQL:
    """The SQL of one target: its observations in a batch of loads, and its history insert."""

    def __init__(self, plan: AnchorPlan, target: TargetPlan, name_suffix: str) -> None:
        self.plan = plan
        self.t = target
        self.keys = [ident(c) for c in target.key_columns]
        self.values = [ident(c) for c in target.value_columns]
        self.rows = ident(f"__rows_{name_suffix}")
        self.obs = ident(f"__obs_{name_suffix}")
        self.bounds = ident(f"__bounds_{name_suffix}")
        self.recent_rows = ident(f"__recent_{name_suffix}")
        self.late = ident(f"__late_{name_suffix}")
        self.merged = ident(f"__fresh_{name_suffix}")
        self.fresh = self.obs  # the batch's observations; with re-read ones: `create_fresh`
        self.losers = ident(f"__losers_{name_suffix}")
        self.inserted = ident(f"__inserted_{name_suffix}")  # the rows a pass inserts
        self.loser_ids = ident(f"__loser_ids_{name_suffix}")  # ids named by deleted losers
        self.columns = [*self.keys, *self.values, "changed_at", "load_id"]
        self.table = anchor_table(target.table)
        # The table held no row when the load began (a first load): the keys a pass touches
        # have no stored rows before it, so the statements skip reading them (`first_load`);
        # in one pass, every row of the table afterwards is the pass's (`whole_table`).
        self.first_load = False
        self.whole_table = False

    def staged_rows(self, loads_filter: str) -> str:
        """Staging rows that carry the target's value(s), ids resolved (NULL where the anchor or
        knot has no row), and whether the row can be placed (key and changed_at present)."""
        t = self.t
        joins, projections, missing = [], [], []
        placeable = [f"s.{ident(t.changed_at)} IS NOT NULL"]
        for index, role in enumerate(t.roles):
            alias = f"e{index}"
            keys = self.plan.entities[role.entity].key
            same = " AND ".join(
                f"{alias}.{ident(k)} = s.{ident(c)}"
                for k, c in zip(keys, role.model_key, strict=True)
            )
            joins.append(f"LEFT JOIN {anchor_table(role.entity)} AS {alias} ON {same}")
            projections.append(f"{alias}.id AS {ident(role.column)}")
            placeable += [f"s.{ident(c)} IS NOT NULL" for c in role.model_key]
            missing.append(f"{alias}.id IS NULL")
        where = ""
        if t.kind == "attribute":
            value = f"s.{ident(t.value or '')}"
            where = f" AND {value} IS NOT NULL"
            if t.knot:
                joins.append(f"LEFT JOIN {anchor_table(t.knot)} AS k ON k.value = {value}")
                projections.append("k.id AS value")
                missing.append("k.id IS NULL")
            else:
                projections.append(f"CAST({value} AS {t.value_type}) AS value")
        return (
            f"SELECT {', '.join(projections)}, CAST(s.{ident(t.changed_at)} AS TIMESTAMP) "
            f"AS changed_at, s.load_id, ({' AND '.join(placeable)}) AS __placeable, "
            f"({' OR '.join(missing)}) AS __missing "
            f"FROM {table('staging', t.model)} AS s {' '.join(joins)} "
            f"WHERE {loads_filter}{where}"
        )

    def ordered(self, rows: str) -> str:
        """The rows with their value's sort columns `__s0`..: the value itself, a knot's value
        for a knotted attribute, a tie's other roles' natural keys (ids depend on arrival)."""
        t = self.t
        if t.kind == "attribute" and not t.knot:
            return f"SELECT r.*, r.{self.values[0]} AS __s0 FROM ({rows}) AS r"
        if not self.values:
            return f"SELECT r.* FROM ({rows}) AS r"
        joins, sorts = [], []
        if t.knot:
            joins.append(f"JOIN {anchor_table(t.knot)} AS s0 ON s0.id = r.{self.values[0]}")
            sorts.append("s0.value")
        for index, role in enumerate(t.values):
            alias = f"s{index}"
            entity = anchor_table(role.entity)
            joins.append(f"JOIN {entity} AS {alias} ON {alias}.id = r.{ident(role.column)}")
            sorts += [f"{alias}.{ident(k)}" for k in self.plan.entities[role.entity].key]
        columns = ", ".join(f"{e} AS __s{i}" for i, e in enumerate(sorts))
        return f"SELECT r.*, {columns} FROM ({rows}) AS r {' '.join(joins)}"

    @property
    def sorts(self) -> list[str]:
        if self.t.kind == "attribute":
            return ["__s0"]
        count = sum(len(self.plan.entities[r.entity].key) for r in self.t.values)
        return [f"__s{i}" for i in range(count)]

    def deduped(self, rows: str, flagged: bool = False) -> str:
        """One observation per (key, instant): the largest value (the largest tuple of its
        sort columns, see `ordered`), then the earliest load that brought it. An instant with
        one value (nearly all) is a hash aggregate; only conflicts are sorted. `flagged` adds
        `__several`: whether the instant had more than one value (`has_conflicts`)."""
        keys = ", ".join(self.keys)
        columns = ", ".join([*self.keys, *self.values, "changed_at", "load_id"])
        if not self.values:
            return (
                f"SELECT {keys}, changed_at, min(load_id) AS load_id FROM ({rows}) AS r "
                f"GROUP BY {keys}, changed_at"
            )
        spans = ", ".join(
            f"min({v}) AS {v}, max({v}) AS __max{i}" for i, v in enumerate(self.values)
        )
        single = " AND ".join(f"{v} = __max{i}" for i, v in enumerate(self.values))
        order = ", ".join([*(f"{v} DESC" for v in self.sorts), "load_id"])
        several = " OR ".join(f"g.{v} <> g.__max{i}" for i, v in enumerate(self.values))
        conflicted = (
            f"SELECT r.* FROM __r AS r JOIN __g AS g ON {self.same_instant('r', 'g')} "
            f"WHERE {several}"
        )
        one, two = (", false AS __several", ", true AS __several") if flagged else ("", "")
        return (
            f"WITH __r AS ({rows}), __g AS (SELECT {keys}, changed_at, {spans}, "
            f"min(load_id) AS load_id FROM __r GROUP BY {keys}, changed_at) "
            f"SELECT {columns}{one} FROM __g WHERE {single} UNION ALL "
            f"SELECT {columns}{two} FROM (SELECT *, row_number() OVER (PARTITION BY {keys}, "
            f"changed_at ORDER BY {order}) AS __rn FROM ({self.ordered(conflicted)}) AS r) AS d "
            "WHERE __rn = 1"
        )

    def larger(self, winner: str, loser: str) -> str:
        """Whether `winner`'s sort tuple is larger than `loser`'s (lexicographic)."""
        terms: list[str] = []
        equal: list[str] = []
        for v in self.sorts:
            terms.append(" AND ".join([*equal, f"{winner}.{v} > {loser}.{v}"]))
            equal.append(f"{winner}.{v} = {loser}.{v}")
        return "(" + " OR ".join(f"({t})" for t in terms) + ")"

    def same_instant(self, left: str, right: str) -> str:
        return " AND ".join(
            [
                *(f"{left}.{k} = {right}.{k}" for k in self.keys),
                f"{left}.changed_at = {right}.changed_at",
            ]
        )

    def placed(self) -> str:
        return f"SELECT * FROM {self.rows} WHERE __placeable AND NOT __missing"

    def first_values(self) -> str:
        """scd0: a key's earliest observation, when it is earlier than anything stored."""
        keys = ", ".join(self.keys)
        order = "changed_at, load_id"  # (one observation per instant: `deduped`)
        return (
            f"SELECT {', '.join('f.' + c for c in self.columns)} "
            f"FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) AS __rn "
            f"FROM {self.obs}) AS f LEFT JOIN ({self.first_stored()}) AS s "
            f"ON {' AND '.join(f'f.{k} = s.{k}' for k in self.keys)} "
            "WHERE f.__rn = 1 AND (s.first IS NULL OR f.changed_at < s.first)"
        )

    def create_inserted(self, scd0: bool) -> str:
        """The rows the pass inserts, kept for the serving table (`serving.apply` reads them,
        not the history)."""
        rows = self.first_values() if scd0 else self.changes()
        return f"CREATE OR REPLACE TEMP TABLE {self.inserted} AS {rows}"

    def insert_inserted(self) -> str:
        listed = ", ".join(self.columns)
        return f"INSERT INTO {self.table} ({listed}) SELECT {listed} FROM {self.inserted}"

    def first_stored(self) -> str:
        """Per key the batch touches: the earliest stored changed_at."""
        stored_keys = ", ".join(f"a.{k}" for k in self.keys)
        return (
            f"SELECT {stored_keys}, min(a.changed_at) AS first FROM {self.table} AS a "
            f"WHERE {self.touched('a')} GROUP BY {stored_keys}"
        )

    def touched(self, alias: str) -> str:
        if self.whole_table:
            return "true"
        on_keys = " AND ".join(f"o.{k} = {alias}.{k}" for k in self.keys)
        return f"EXISTS (SELECT 1 FROM {self.obs} AS o WHERE {on_keys})"

    def create_bounds(self) -> str:
        """Per key the batch touches: its earliest new instant, and the stored change in force
        just before it. History before that point cannot change, so it is never read again:
        the cost follows the batch, not the history."""
        keys = ", ".join(f"t.{k}" for k in self.keys)
        same = " AND ".join(f"a.{k} = t.{k}" for k in self.keys)
        return (
            f"CREATE OR REPLACE TEMP TABLE {self.bounds} AS SELECT {keys}, t.t0, "
            "coalesce(max(a.changed_at) FILTER (WHERE a.changed_at <= t.t0), t.t0) AS start "
            f"FROM (SELECT {', '.join(self.keys)}, min(changed_at) AS t0 FROM {self.obs} "
            f"GROUP BY {', '.join(self.keys)}) AS t LEFT JOIN {self.table} AS a ON {same} "
            f"GROUP BY {keys}, t.t0"
        )

    def recent(self, columns: list[str]) -> str:
        """Stored rows of touched keys from their bound on (a first load's: every row its
        keys have, all of them new)."""
        if self.first_load:
            return f"SELECT {', '.join('a.' + c for c in columns)} FROM {self.table} AS a" + (
                "" if self.whole_table else f" WHERE {self.touched('a')}"
            )
        same = " AND ".join(f"a.{k} = b.{k}" for k in self.keys)
        return (
            f"SELECT {', '.join('a.' + c for c in columns)} FROM {self.table} AS a "
            f"JOIN {self.bounds} AS b ON {same} WHERE a.changed_at >= b.start"
        )

    def create_recent(self) -> str:
        """The stored rows of touched keys from their bound on, once per batch: the merge and
        its "stored at this instant" tests read these, never the whole table. (A first load:
        none, and no `bounds` either.)"""
        rows = self.recent(self.columns)
        if self.first_load:
            rows = f"SELECT {', '.join('a.' + c for c in self.columns)} FROM {self.table} AS a "
            rows += "WHERE false"
        return f"CREATE OR REPLACE TEMP TABLE {self.recent_rows} AS {rows}"

    def create_fresh(self) -> str:
        """The batch's observations and the re-read ones (`late`), one per (key, instant) by
        the conflict rule (the largest value wins); `fresh` names them from now on."""
        self.fresh = self.merged
        listed = ", ".join(self.columns)
        both = f"SELECT {listed} FROM {self.obs} UNION ALL SELECT {listed} FROM {self.late}"
        return f"CREATE OR REPLACE TEMP TABLE {self.merged} AS {self.deduped(both)}"

    def create_losers(self, stored: str) -> str:
        """Stored rows at an instant where the batch brings a larger value: the losers of a
        conflict, by (key, instant)."""
        differ = " OR ".join(f"w.{v} <> a.{v}" for v in self.values)
        at_fresh = (
            f"SELECT a.* FROM {stored} AS a WHERE EXISTS (SELECT 1 FROM {self.fresh} AS w "
            f"WHERE {self.same_instant('w', 'a')} AND ({differ}))"
        )
        at_stored = (  # (few rows: the instants in conflict with the table, then ordered)
            f"SELECT w.* FROM {self.fresh} AS w WHERE EXISTS (SELECT 1 FROM {stored} AS a "
            f"WHERE {self.same_instant('w', 'a')} AND ({differ}))"
        )
        return (
            f"CREATE OR REPLACE TEMP TABLE {self.losers} AS SELECT "
            f"{', '.join('a.' + k for k in self.keys)}, a.changed_at "
            f"FROM ({self.ordered(at_fresh)}) AS a JOIN ({self.ordered(at_stored)}) AS w "
            f"ON {self.same_instant('w', 'a')} WHERE {self.larger('w', 'a')}"
        )

    def delete_losers(self, stored: str) -> str:
        """(The one delete of the insert-only tables: a correction of a conflict, never of
        history.)"""
        return (
            f"DELETE FROM {stored} AS a WHERE EXISTS (SELECT 1 FROM {self.losers} AS w "
            f"WHERE {self.same_instant('w', 'a')})"
        )

    def has_conflicts(self) -> str:
        """Whether the batch (without re-read rows) has a conflict: an instant with several
        values (`obs` is `deduped(..., flagged=True)`), or a stored row at one of its instants
        with another value. One count instead of `conflicts`' aggregate of the whole batch:
        nearly every batch has none (the initial load's table has no rows at all)."""
        differ = " OR ".join(f"o.{v} <> a.{v}" for v in self.values)
        return (
            f"SELECT (EXISTS (SELECT 1 FROM {self.obs} WHERE __several)) OR (EXISTS (SELECT 1 "
            f"FROM {self.recent_rows} AS a JOIN {self.obs} AS o ON {self.same_instant('o', 'a')} "
            f"WHERE {differ}))"
        )

    def conflicts(self, with_late: bool) -> str:
        """Every distinct (key, instant, value, load) at an instant with more than one value,
        among the batch's rows, the re-read ones and the stored row: key and value as text,
        and whether the value is the one kept."""
        listed = ", ".join(self.columns)
        parts = [f"SELECT {listed} FROM ({self.placed()}) AS p"]
        if with_late:
            parts.append(f"SELECT {listed} FROM {self.late}")
        stored = self.recent_rows
        instant = ", ".join([*self.keys, "changed_at"])
        instants = f"SELECT {instant} FROM {self.obs}" + (
            f" UNION ALL SELECT {instant} FROM {self.late}" if with_late else ""
        )
        parts.append(
            f"SELECT {', '.join('a.' + c for c in self.columns)} FROM {stored} AS a WHERE "
            f"EXISTS (SELECT 1 FROM ({instants}) AS o WHERE {self.same_instant('o', 'a')})"
        )
        keys = ", ".join(self.keys)
        differ = " OR ".join(f"min({v}) <> max({v})" for v in self.values)
        kept = " AND ".join(f"x.{v} = w.{v}" for v in self.values)
        key_text = ", ".join(f"CAST(x.{k} AS VARCHAR)" for k in self.keys)
        value_text = ", ".join(f"CAST(x.{v} AS VARCHAR)" for v in self.values)
        return (
            f"WITH __u AS ({' UNION ALL '.join(parts)}), "
            f"__c AS (SELECT {keys}, changed_at FROM __u GROUP BY {keys}, changed_at "
            f"HAVING {differ}), "
            f"__x AS (SELECT u.* FROM __u AS u JOIN __c AS c ON {self.same_instant('u', 'c')}), "
            f"__w AS ({self.deduped('SELECT * FROM __x')}) "
            f"SELECT DISTINCT concat_ws(',', {key_text}) AS key, x.changed_at, "
            f"concat_ws(',', {value_text}) AS value, "
            f"x.load_id, ({kept}) AS kept "
            f"FROM __x AS x JOIN __w AS w ON {self.same_instant('x', 'w')}"
        )

    def changes(self) -> str:
        """scd1/scd2: the change points among stored rows and new observations (`fresh`),
        merged. An observation at an instant the table still has after `delete_losers` lost
        to (or equals) the stored value: it is not new."""
        keys = ", ".join(self.keys)
        listed = ", ".join(self.columns)
        parts = [
            f"SELECT {listed}, 0 AS fresh FROM {self.recent_rows}",
            f"SELECT {', '.join('o.' + c for c in self.columns)}, 1 AS fresh FROM {self.fresh} "
            f"AS o WHERE NOT EXISTS (SELECT 1 FROM {self.recent_rows} AS x "
            f"WHERE {self.same_instant('x', 'o')})",
        ]
        changed = " OR ".join(
            f"lag({v}) OVER (PARTITION BY {keys} ORDER BY changed_at) IS DISTINCT FROM {v}"
            for v in self.values
        )
        return (
            f"SELECT {listed} FROM "
            f"(SELECT *, ({changed}) AS __change FROM ({' UNION ALL '.join(parts)}) AS m) AS p "
            "WHERE p.fresh = 1 AND p.__change"
        )

    def late_observations(self, loads_filter: str) -> str:
        """Observations from the loads already in the table, for keys whose new observations
        reach back into what the table has seen, from the earliest of them on."""
        same = " AND ".join(f"x.{k} = t.{k}" for k in self.keys)
        return (
            f"SELECT x.* FROM ({self.staged_rows(loads_filter)}) AS x "
            f"JOIN (SELECT {', '.join(self.keys)}, min(changed_at) AS t0 FROM {self.obs} "
            f"GROUP BY {', '.join(self.keys)} HAVING min(changed_at) <= ?) AS t "
            f"ON {same} WHERE x.changed_at >= t.t0 AND x.__placeable AND NOT x.__missing"
        )
