"""The anchor model's journal.

- `meta.anchor_transfers`: per (load, staging model, anchor table), that the load is in the
  table, with its counts; written in the table's load transaction.
- `meta.anchor_ids`: the highest surrogate id each entity and knot ever gave, so ids of rows
  erased or rolled back are never given to someone else.
- `meta.anchor_keys`: every natural key (and knot value) with the id it was given, for the life
  of the warehouse: a key that comes back gets its id again; `forget` deletes the row (the id
  is retired: `meta.anchor_ids` keeps it from being given again).
- `meta.anchor_tables`: the declaration each table's rows were loaded under, and the sources an
  entity or knot reads its keys from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from anchorflow.warehouse import Warehouse


def anchored_loads(warehouse: Warehouse, target: str, model: str) -> set[int]:
    rows = warehouse.query(
        "SELECT load_id FROM meta.anchor_transfers WHERE target = ? AND model = ?",
        [target, model],
    )
    return {int(r[0]) for r in rows}


def log_anchor_transfers(
    warehouse: Warehouse,
    target: str,
    kind: str,
    model: str,
    counts: Iterable[tuple[Any, ...]],
    now: datetime,
) -> None:
    """One row per load, (load_id, observed, inserted, without_key, max_changed_at), written
    in one statement."""
    rows = list(counts)
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    data = pa.table(
        {
            "load_id": pa.array(columns[0], pa.int64()),
            "model": pa.array([model] * len(rows), pa.string()),
            "target": pa.array([target] * len(rows), pa.string()),
            "kind": pa.array([kind] * len(rows), pa.string()),
            "observed": pa.array(columns[1], pa.int64()),
            "inserted": pa.array(columns[2], pa.int64()),
            "without_key": pa.array(columns[3], pa.int64()),
            "max_changed_at": pa.array(columns[4], pa.timestamp("us")),
            "anchored_at": pa.array([now] * len(rows), pa.timestamp("us")),
        }
    )
    warehouse.insert_arrow("meta", "anchor_transfers", data)


def high_water(warehouse: Warehouse, target: str, model: str) -> datetime | None:
    """The latest changed_at the table has seen from the model."""
    value = warehouse.scalar(
        "SELECT max(max_changed_at) FROM meta.anchor_transfers WHERE target = ? AND model = ?",
        [target, model],
    )
    return value if isinstance(value, datetime) else None


def unanchored_count(warehouse: Warehouse, target: str, models: Sequence[str]) -> int:
    """Typed loads of these models that the table does not hold yet."""
    return int(
        warehouse.scalar(
            "SELECT count(*) FROM meta.transfers AS t WHERE list_contains(?, t.model) AND NOT "
            "EXISTS (SELECT 1 FROM meta.anchor_transfers AS a WHERE a.load_id = t.load_id "
            "AND a.model = t.model AND a.target = ?)",
            [list(models), target],
        )
    )


def forget_anchor_transfers(
    warehouse: Warehouse,
    load_ids: Sequence[int] | None = None,
    models: Sequence[str] | None = None,
    target: str | None = None,
) -> None:
    """Forget that these loads, these models' loads, or a table's loads were anchored: the
    next anchor step reads them again (inserting only what is missing)."""
    if load_ids is not None:
        warehouse.execute(
            "DELETE FROM meta.anchor_transfers WHERE list_contains(?, load_id)", [list(load_ids)]
        )
    if models:
        warehouse.execute(
            "DELETE FROM meta.anchor_transfers WHERE list_contains(?, model)", [list(models)]
        )
    if target is not None:
        warehouse.execute("DELETE FROM meta.anchor_transfers WHERE target = ?", [target])


def top_id(warehouse: Warehouse, name: str) -> int:
    """The highest id the entity or knot `name` ever gave according to the journal."""
    return int(
        warehouse.scalar(
            "SELECT coalesce(max(top), 0) FROM meta.anchor_ids WHERE table_name = ?", [name]
        )
    )


def record_top_id(warehouse: Warehouse, name: str, top: int) -> None:
    warehouse.execute("INSERT INTO meta.anchor_ids VALUES (?, ?)", [name, top])


def known_declaration(warehouse: Warehouse, name: str) -> str | None:
    found = warehouse.scalar(
        "SELECT declaration FROM meta.anchor_tables WHERE table_name = ?", [name]
    )
    return str(found) if found is not None else None


def store_declaration(warehouse: Warehouse, name: str, shape: str) -> None:
    warehouse.execute("DELETE FROM meta.anchor_tables WHERE table_name = ?", [name])
    warehouse.execute("INSERT INTO meta.anchor_tables VALUES (?, ?)", [name, shape])


# -- the key registry: an id per natural key for the life of the warehouse ------------------------


def key_text(columns: Sequence[str]) -> str:
    """The registry's text of a typed natural key, from SQL expressions of its columns: the
    text of a one-column key, else each column as `<length>:<text>` (no two keys give one)."""
    texts = [f"CAST({c} AS VARCHAR)" for c in columns]
    if len(texts) == 1:
        return texts[0]
    return " || ".join(f"CAST(length({t}) AS VARCHAR) || ':' || {t}" for t in texts)


def registered_ids() -> str:
    """A relation (key, id) of the registry of one table; one parameter: the table's name."""
    return "SELECT key, id FROM meta.anchor_keys WHERE table_name = ?"


def register_keys(warehouse: Warehouse, name: str, keys: str, params: Sequence[Any]) -> int:
    """Record the ids of a relation (key, id) of new keys, with its parameters."""
    return warehouse.insert(
        f"INSERT INTO meta.anchor_keys SELECT ?, n.key, n.id FROM ({keys}) AS n", [name, *params]
    )


def register_missing_keys(
    warehouse: Warehouse, name: str, source: str, key_columns: Sequence[str]
) -> int:
    """Record every (key, id) of the entity or knot table `source` that the registry lacks
    (a warehouse anchored before the registry existed); a no-op the second time."""
    key = key_text([f"e.{c}" for c in key_columns])
    return warehouse.insert(
        f"INSERT INTO meta.anchor_keys SELECT ?, {key}, e.id FROM {source} AS e WHERE NOT EXISTS "
        "(SELECT 1 FROM meta.anchor_keys AS r WHERE r.table_name = ? AND r.id = e.id)",
        [name, name],
    )


def unregistered_ids(warehouse: Warehouse, name: str, ids: str) -> int:
    """How many ids of a relation (id) the registry of `name` does not know."""
    return int(
        warehouse.scalar(
            f"SELECT count(*) FROM ({ids}) AS h WHERE NOT EXISTS (SELECT 1 FROM "
            "meta.anchor_keys AS r WHERE r.table_name = ? AND r.id = h.id)",
            [name],
        )
    )


def retire_key(warehouse: Warehouse, name: str, key: str, params: Sequence[Any]) -> int:
    """Delete the registry row of a key (a query of its key text, with its parameters): the
    key is personal data, and its id is never given again (`meta.anchor_ids` keeps the top)."""
    return warehouse.insert(
        f"DELETE FROM meta.anchor_keys WHERE table_name = ? AND key IN ({key})", [name, *params]
    )


def key_index(warehouse: Warehouse) -> None:
    """An index for looking keys up where the engine needs one."""
    statement = warehouse.sql.lookup_index("meta", "anchor_keys", ["table_name", "key"])
    if statement:
        warehouse.execute(statement)


def record_conflicts(warehouse: Warehouse, target: str, found: str, now: datetime) -> None:
    """Record the conflicts of a batch: `found` is a relation of (key, changed_at, value,
    load_id, kept), keys and values as text. A row already recorded is not added again."""
    warehouse.execute(
        f"INSERT INTO meta.anchor_conflicts SELECT ?, f.key, f.changed_at, f.value, f.load_id, "
        f"f.kept, ?, false FROM ({found}) AS f WHERE NOT EXISTS (SELECT 1 FROM "
        "meta.anchor_conflicts AS c WHERE c.target = ? AND c.key = f.key "
        "AND c.changed_at = f.changed_at AND c.value = f.value AND c.load_id = f.load_id)",
        [target, now, target],
    )


def unalerted_conflicts(warehouse: Warehouse) -> dict[str, int]:
    """Per anchor table, the instants in conflict not alerted yet."""
    rows = warehouse.query(
        "SELECT target, count(DISTINCT key || '@' || CAST(changed_at AS VARCHAR)) "
        "FROM meta.anchor_conflicts WHERE NOT alerted GROUP BY target ORDER BY target"
    )
    return {str(r[0]): int(r[1]) for r in rows}


def mark_conflicts_alerted(warehouse: Warehouse) -> None:
    warehouse.execute("UPDATE meta.anchor_conflicts SET alerted = true WHERE NOT alerted")


def forget_conflicts(warehouse: Warehouse, load_ids: Sequence[int]) -> int:
    """Delete the conflicts of these loads (rolled back or replaced)."""
    return warehouse.insert(
        "DELETE FROM meta.anchor_conflicts WHERE list_contains(?, load_id)", [list(load_ids)]
    )


def forget_conflicts_of(
    warehouse: Warehouse, target: str, in_key: bool, position: int, entity_id: int
) -> int:
    """Delete a table's conflicts naming this id at this position (1-based) of their key (or,
    for a tie's other roles, of their value): the rows of a forgotten entity."""
    column = "key" if in_key else "value"
    return warehouse.insert(
        f"DELETE FROM meta.anchor_conflicts WHERE target = ? "
        f"AND split_part({column}, ',', {int(position)}) = ?",
        [target, str(entity_id)],
    )
