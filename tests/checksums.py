"""Order-independent checksums of warehouse tables, equal across engines for equal data.

Each value is normalised before it is hashed, so that what two engines return for the same
value compares equal: timestamps as ISO 8601 in UTC, dates and times as ISO, numbers that are
not whole to 9 significant digits (whole ones as integers), JSON re-serialised with sorted keys
(both adapters return JSON as its text), UUIDs and bytes as text, lists
element by element. A table's digest is the SHA-256 of its rows' digests, sorted.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from anchorflow.config import Project
from anchorflow.warehouse import Warehouse, connect, table

JSON_TYPES = {"json", "jsonb"}


def normalise(value: Any, as_json: str = "") -> Any:
    """A JSON-serialisable form of `value` that is the same on every engine. `as_json`: the
    value is JSON, as `text` (DuckDB's JSON, or JSON kept in a text column) or as a `value`
    its driver parsed already (PostgreSQL's json and jsonb)."""
    if value is not None and as_json:
        parsed = json.loads(value) if as_json == "text" else value
        return json.dumps(_numbers(parsed), sort_keys=True, separators=(",", ":"))
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else f"{float(value):.9g}"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else f"{value:.9g}"
    if isinstance(value, datetime):
        instant = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return instant.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds():.9g}s"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in sorted(value.items())}
    raise TypeError(f"no normal form for {type(value).__name__}: {value!r}")


def _numbers(value: Any) -> Any:
    """JSON numbers inside a JSON value, rounded like the table's own."""
    if isinstance(value, float):
        return normalise(value)
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class TableSum:
    """A table's columns, its row count, its digest, and its normalised rows (to show a diff)."""

    columns: tuple[str, ...]
    rows: int
    digest: str
    normal: Counter[str]


def column_types(warehouse: Warehouse, schema: str, name: str) -> list[tuple[str, str]]:
    found = warehouse.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    )
    return [(str(c), str(t).lower()) for c, t in found]


def checksum(
    warehouse: Warehouse, sql: str, columns: Sequence[str], json_columns: dict[str, str]
) -> TableSum:
    """The digest of the rows `sql` returns (its columns named `columns`); `json_columns`:
    how each JSON column's values arrive (`normalise`)."""
    as_json = [json_columns.get(c, "") for c in columns]
    normal: Counter[str] = Counter()
    for row in warehouse.query(sql):
        values = [normalise(v, j) for v, j in zip(row, as_json, strict=True)]
        normal[json.dumps(values, ensure_ascii=False)] += 1
    lines = sorted(hashlib.sha256(r.encode()).hexdigest() for r in normal.elements())
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return TableSum(tuple(columns), sum(normal.values()), digest, normal)


def table_sums(
    projects: dict[str, Project], schema: str, name: str, drop: Sequence[str] = ()
) -> dict[str, TableSum]:
    """`schema.name`'s checksum on each engine's warehouse, without the columns in `drop`.
    A column typed JSON on any engine is compared as JSON on all of them."""
    types: dict[str, list[tuple[str, str]]] = {}
    for engine, project in projects.items():
        with connect(project, read_only=True) as reader:
            types[engine] = column_types(reader, schema, name)
    json_columns = {c for found in types.values() for c, t in found if t in JSON_TYPES}
    sums = {}
    for engine, project in projects.items():
        how = {c: "text" for c, _ in types[engine]}  # both adapters return JSON as its text
        columns = [c for c, _ in types[engine] if c not in drop]
        listed = ", ".join(f'"{c}"' for c in columns)
        with connect(project, read_only=True) as reader:
            sql = f"SELECT {listed} FROM {table(schema, name)}"
            kinds = {c: how[c] for c in json_columns if c in how}
            sums[engine] = checksum(reader, sql, columns, kinds)
    return sums


def difference(sums: dict[str, TableSum], show: int = 5) -> str:
    """What differs between the engines' checksums of one table, for an assertion message."""
    (a, first), (b, second) = list(sums.items())[:2]
    if first.columns != second.columns:
        return f"columns differ: {a} {list(first.columns)}, {b} {list(second.columns)}"
    only_a = list((first.normal - second.normal).elements())[:show]
    only_b = list((second.normal - first.normal).elements())[:show]
    return (
        f"{a} {first.rows} rows, {b} {second.rows} rows; only in {a}: {only_a}; "
        f"only in {b}: {only_b}"
    )
