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
        self.table = anchor_table(target.table)

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

    def deduped(self, rows: str) -> str:
        """One observation per (key, instant): the smallest value, then the earliest load."""
        keys = ", ".join(self.keys)
        if len(self.values) == 1:  # a hash aggregate: cheaper than a window's sort
            value = self.values[0]
            return (
                f"SELECT {keys}, changed_at, min({value}) AS {value}, min(load_id) AS load_id "
                f"FROM ({rows}) AS r GROUP BY {keys}, changed_at"
            )
        columns = ", ".join([*self.keys, *self.values, "changed_at", "load_id"])
        order = ", ".join([*self.values, "load_id"])
        return (
            f"SELECT {columns} FROM (SELECT *, row_number() OVER (PARTITION BY {keys}, "
            f"changed_at ORDER BY {order}) AS __rn FROM ({rows}) AS r) AS d WHERE __rn = 1"
        )

    def placed(self) -> str:
        return f"SELECT * FROM {self.rows} WHERE __placeable AND NOT __missing"

    def insert_first_values(self) -> str:
        """scd0: a key's earliest observation, when it is earlier than anything stored."""
        keys = ", ".join(self.keys)
        order = ", ".join(["changed_at", *self.values, "load_id"])
        columns = [*self.keys, *self.values, "changed_at", "load_id"]
        return (
            f"INSERT INTO {self.table} ({', '.join(columns)}) "
            f"SELECT {', '.join('f.' + c for c in columns)} "
            f"FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) AS __rn "
            f"FROM {self.obs}) AS f LEFT JOIN ({self.first_stored()}) AS s "
            f"ON {' AND '.join(f'f.{k} = s.{k}' for k in self.keys)} "
            "WHERE f.__rn = 1 AND (s.first IS NULL OR f.changed_at < s.first)"
        )

    def first_stored(self) -> str:
        """Per key the batch touches: the earliest stored changed_at."""
        stored_keys = ", ".join(f"a.{k}" for k in self.keys)
        return (
            f"SELECT {stored_keys}, min(a.changed_at) AS first FROM {self.table} AS a "
            f"WHERE {self.touched('a')} GROUP BY {stored_keys}"
        )

    def touched(self, alias: str) -> str:
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
        """Stored rows of touched keys from their bound on."""
        same = " AND ".join(f"a.{k} = b.{k}" for k in self.keys)
        return (
            f"SELECT {', '.join('a.' + c for c in columns)} FROM {self.table} AS a "
            f"JOIN {self.bounds} AS b ON {same} WHERE a.changed_at >= b.start"
        )

    def insert_changes(self, late: str | None) -> str:
        """scd1/scd2: the change points among stored rows and new observations, merged. An
        observation at an instant the table already has is not new (the first loaded wins)."""
        keys = ", ".join(self.keys)
        columns = [*self.keys, *self.values, "changed_at", "load_id"]
        listed = ", ".join(columns)

        def unseen(alias: str, others: list[str]) -> str:
            same = " AND ".join([*(f"x.{k} = {alias}.{k}" for k in self.keys),
                                 f"x.changed_at = {alias}.changed_at"])  # fmt: skip
            return " AND ".join(f"NOT EXISTS (SELECT 1 FROM {o} AS x WHERE {same})" for o in others)

        parts = [
            f"SELECT *, 0 AS fresh FROM ({self.recent(columns)}) AS r",
            f"SELECT {', '.join('o.' + c for c in columns)}, 1 AS fresh FROM {self.obs} AS o "
            f"WHERE {unseen('o', [self.table])}",
        ]
        if late:
            parts.append(
                f"SELECT {', '.join('l.' + c for c in columns)}, 1 AS fresh "
                f"FROM ({self.deduped(late)}) AS l WHERE {unseen('l', [self.table, self.obs])}"
            )
        changed = " OR ".join(
            f"lag({v}) OVER (PARTITION BY {keys} ORDER BY changed_at) IS DISTINCT FROM {v}"
            for v in self.values
        )
        return (
            f"INSERT INTO {self.table} ({listed}) SELECT {listed} FROM "
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
