"""Taking data back out: `rollback` of a load and `forget` of an entity.

- `remove_loads` deletes loads' rows from every anchor table. An entity or knot row that a
  load created, and that another load's rows still point at, keeps its id (it must not change
  under them). Backfill calls it for the loads it replaces, which are gone for good: such a row
  is re-attributed to the earliest load that uses it.
- `rollback` does that (a shared entity row keeps its load id: the load comes back), and
  deletes the load's staging rows, transfer logs, type errors, staging quarantine and
  statistics, so the next `run` (or `stage`) types and anchors it again from raw, which is kept.
  Entities only that load knew come back with new ids.
- `forget` erases an entity: its anchor rows, attribute values and ties; the staging rows and
  raw records that carry its key (and the rows of other models typed from those records); and
  every copy of its values in the journal (quarantined records, type errors, statistics
  examples, drift details, alert payloads). It leaves one audit row in `meta.erasures`, with
  counts and without the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from anchorflow import journal
from anchorflow.anchor.plan import SCHEMA, AnchorPlan
from anchorflow.errors import ConfigError
from anchorflow.land import raw_table_name
from anchorflow.project import Project
from anchorflow.stage.runner import models_of_stream
from anchorflow.warehouse import Warehouse, ident, table


def _referencing(plan: AnchorPlan, name: str) -> list[tuple[str, str]]:
    """(table, column) pairs whose values are ids of the entity or knot `name`."""
    found = []
    for target in plan.targets.values():
        found += [(target.table, r.column) for r in target.roles if r.entity == name]
        if target.knot == name:
            found.append((target.table, "value"))
    return found


def _remove_rows(
    wh: Warehouse, plan: AnchorPlan, name: str, load_ids: list[int], reattribute: bool
) -> int:
    """Delete an entity's (or knot's) rows of these loads. A row that other loads' attribute or
    tie rows still point at stays, with its id, so ids never change under their users: with
    `reattribute` (the load is gone for good) under the earliest of those loads, else (the load
    will be anchored again) under its own."""
    target = table(SCHEMA, name)
    references = _referencing(plan, name)
    if references and not reattribute:
        used = " OR ".join(
            f"EXISTS (SELECT 1 FROM {table(SCHEMA, t)} AS r WHERE r.{ident(c)} = a.id)"
            for t, c in references
        )
        return wh.insert(
            f"DELETE FROM {target} AS a WHERE list_contains(?, a.load_id) AND NOT ({used})",
            [load_ids],
        )
    kept = 0
    if references:
        refs = " UNION ALL ".join(
            f"SELECT r.{ident(column)} AS id, r.load_id FROM {table(SCHEMA, t)} AS r"
            for t, column in references
        )
        wh.execute(
            "CREATE OR REPLACE TEMP TABLE __kept AS SELECT a.* REPLACE (u.load_id AS load_id) "
            f"FROM {target} AS a JOIN (SELECT id, min(load_id) AS load_id FROM ({refs}) AS r "
            f"WHERE id IN (SELECT id FROM {target} WHERE list_contains(?, load_id)) "
            "GROUP BY id) AS u ON u.id = a.id WHERE list_contains(?, a.load_id)",
            [load_ids, load_ids],
        )
    deleted = wh.insert(f"DELETE FROM {target} WHERE list_contains(?, load_id)", [load_ids])
    if references:
        kept = wh.insert(f"INSERT INTO {target} SELECT * FROM __kept")
        wh.execute("DROP TABLE __kept")
    return deleted - kept


def remove_loads(
    wh: Warehouse,
    plan: AnchorPlan,
    load_ids: list[int],
    reattribute: bool = True,
    reopen: list[str] | None = None,
) -> dict[str, int]:
    """Delete these loads' rows from the anchor model; returns rows deleted per table.

    `reopen` names staging models whose other loads must be read again by the next anchor
    step: an observation stored only in a removed load may have hidden a restatement in
    another one (never stored), and a backfill restores events into loads already anchored.
    Reading them again inserts only what is missing."""
    if not load_ids:
        return {}
    counts: dict[str, int] = {}
    with wh.transaction():
        for name in plan.targets:
            counts[name] = wh.insert(
                f"DELETE FROM {table(SCHEMA, name)} WHERE list_contains(?, load_id)", [load_ids]
            )
        for name in [*plan.entities, *plan.knots]:
            counts[name] = _remove_rows(wh, plan, name, load_ids, reattribute)
        wh.execute("DELETE FROM meta.anchor_transfers WHERE list_contains(?, load_id)", [load_ids])
        if reopen:
            wh.execute("DELETE FROM meta.anchor_transfers WHERE list_contains(?, model)", [reopen])
    return {k: v for k, v in counts.items() if v}


def rollback(wh: Warehouse, project: Project, plan: AnchorPlan, load_id: int) -> dict[str, int]:
    """Remove a load from every layer above raw and re-open it for typing and anchoring."""
    status = wh.scalar("SELECT status FROM meta.loads WHERE load_id = ?", [load_id])
    if status is None:
        raise ConfigError([f"rollback: there is no load {load_id} (see `anchorflow status`)"])
    if status != "committed":
        raise ConfigError([f"rollback: load {load_id} is {status}; only a committed load can be"])
    with wh.transaction():
        source, stream = wh.query(
            "SELECT source, stream FROM meta.loads WHERE load_id = ?", [load_id]
        )[0]
        counts = remove_loads(
            wh, plan, [load_id], reattribute=False,
            reopen=models_of_stream(project, source, stream),
        )  # fmt: skip
        for name in project.staging:
            if wh.table_exists("staging", name):
                deleted = wh.insert(
                    f"DELETE FROM {table('staging', name)} WHERE load_id = ?", [load_id]
                )
                if deleted:
                    counts[f"staging.{name}"] = deleted
        for log in ("meta.transfers", "meta.type_errors"):
            wh.execute(f"DELETE FROM {log} WHERE load_id = ?", [load_id])
        # Lines that were not JSON stay quarantined with raw; rows the typing set aside return.
        wh.execute("DELETE FROM meta.quarantine WHERE load_id = ? AND stage <> 'land'", [load_id])
        wh.execute("DELETE FROM meta.field_stats WHERE list_contains(load_ids, ?)", [load_id])
    return counts


# -- erasure --------------------------------------------------------------------------------------


def _json_path(keys: list[str]) -> str:
    return "$" + "".join("." + json.dumps(k) for k in keys)


def forget(
    wh: Warehouse, project: Project, plan: AnchorPlan, entity: str, key: list[str]
) -> dict[str, int]:
    """Erase one entity, by natural key, from every table; returns rows erased per table."""
    if entity not in plan.entities:
        known = ", ".join(plan.entities) or "none"
        raise ConfigError([f"forget: unknown entity {entity!r} (entities: {known})"])
    spec = plan.entities[entity]
    if len(key) != len(spec.key):
        raise ConfigError(
            [f"forget: {entity}'s key is ({', '.join(spec.key)}); give {len(spec.key)} value(s)"]
        )
    counts: dict[str, int] = {}

    def note(name: str, rows: int) -> None:
        if rows:
            counts[name] = counts.get(name, 0) + rows

    anchor_key = " AND ".join(
        f"{ident(k)} = CAST(? AS {t})" for k, t in zip(spec.key, spec.key_types, strict=True)
    )
    with wh.transaction():
        row = wh.query(f"SELECT id FROM {table(SCHEMA, entity)} WHERE {anchor_key}", key)
        values: set[str] = set(key)
        if row:
            entity_id = row[0][0]
            values |= _attribute_values(wh, plan, entity, entity_id)
            for target in plan.targets.values():
                for role in target.roles:
                    if role.entity == entity:
                        note(f"anchor.{target.table}", wh.insert(
                            f"DELETE FROM {table(SCHEMA, target.table)} "
                            f"WHERE {ident(role.column)} = ?", [entity_id]))  # fmt: skip
            note(f"anchor.{entity}", wh.insert(
                f"DELETE FROM {table(SCHEMA, entity)} WHERE id = ?", [entity_id]))  # fmt: skip
        _erase_records(wh, project, spec.sources, spec.key_types, key, note)
        _scrub_journal(wh, key, sorted(values), note)
        erasure_id = int(wh.scalar("SELECT coalesce(max(erasure_id), 0) + 1 FROM meta.erasures"))
        wh.execute(
            "INSERT INTO meta.erasures VALUES (?, ?, ?, ?)",
            [erasure_id, entity, journal.utcnow(), json.dumps(counts, sort_keys=True)],
        )
    return counts


def _attribute_values(wh: Warehouse, plan: AnchorPlan, entity: str, entity_id: int) -> set[str]:
    """Every value the entity's attributes held, as text (knotted ones through their knot)."""
    values: set[str] = set()
    for target in plan.attributes_of(entity):
        source = table(SCHEMA, target.table)
        if target.knot:
            rows = wh.query(
                f"SELECT CAST(k.value AS VARCHAR) FROM {source} AS a "
                f"JOIN {table(SCHEMA, target.knot)} AS k ON k.id = a.value WHERE a.id = ?",
                [entity_id],
            )
        else:
            rows = wh.query(
                f"SELECT CAST(value AS VARCHAR) FROM {source} WHERE id = ?", [entity_id]
            )
        values |= {str(r[0]) for r in rows if r[0] is not None}
    return values


def _erase_records(
    wh: Warehouse,
    project: Project,
    sources: dict[str, list[list[str]]],
    key_types: list[str],
    key: list[str],
    note: Any,
) -> None:
    """Raw records carrying the key (found by the JSON paths its staging columns read), the
    staging rows typed from them in every model of their stream, and journal rows about them."""
    streams: dict[tuple[str, str], list[list[str]]] = {}
    pairs = [(model_name, columns) for model_name, sets in sources.items() for columns in sets]
    for model_name, columns in pairs:
        model = project.staging[model_name]
        paths = [model.columns[c].keys for c in columns if c in model.columns]
        if len(paths) == len(columns) and not any(model.columns[c].in_element for c in columns):
            streams.setdefault((model.source, project.stream_of(model)), []).append(
                [_json_path(p) for p in paths]
            )
        if not wh.table_exists("staging", model_name):
            continue
        same = " AND ".join(
            f"{ident(c)} = CAST(? AS {t})" for c, t in zip(columns, key_types, strict=True)
        )
        note(f"staging.{model_name}", wh.insert(
            f"DELETE FROM {table('staging', model_name)} WHERE {same}", key))  # fmt: skip
    for (source, stream), path_sets in streams.items():
        raw = table("raw", raw_table_name(source, stream))
        if not wh.table_exists("raw", raw_table_name(source, stream)):
            continue
        matches = " OR ".join(
            "(" + " AND ".join("json_extract_string(record, ?) = ?" for _ in paths) + ")"
            for paths in path_sets
        )
        params = [v for paths in path_sets for p, k in zip(paths, key, strict=True) for v in (p, k)]
        wh.execute(
            "CREATE OR REPLACE TEMP TABLE __erased AS SELECT load_id, origin, line_no, record "
            f"FROM {raw} WHERE {matches}",
            params,
        )
        for name in models_of_stream(project, source, stream):
            _erase_typed_rows(wh, project, name, note)
        note("meta.type_errors", wh.insert(
            "DELETE FROM meta.type_errors AS t USING __erased AS e WHERE t.load_id = e.load_id "
            "AND t.origin = e.origin AND t.line_no = e.line_no"))  # fmt: skip
        note("meta.quarantine", wh.insert(
            "DELETE FROM meta.quarantine AS q USING __erased AS e WHERE q.load_id = e.load_id "
            "AND q.origin = e.origin AND q.line_no = e.line_no"))  # fmt: skip
        note(f"raw.{raw_table_name(source, stream)}", wh.insert(
            f"DELETE FROM {raw} AS r USING __erased AS e WHERE r.load_id = e.load_id "
            "AND r.origin = e.origin AND r.line_no = e.line_no"))  # fmt: skip
        wh.execute("DROP TABLE __erased")


def _erase_typed_rows(wh: Warehouse, project: Project, name: str, note: Any) -> None:
    """Rows of staging.<name> typed from the erased records, matched by the model's unique key
    read from those records."""
    model = project.staging[name]
    keys = [k for k in model.key_columns if k in model.columns and not model.columns[k].in_element]
    if not keys or not wh.table_exists("staging", name):
        return
    extracted = ", ".join(
        f"CAST(json_extract_string(record, ?) AS {model.columns[k].type}) AS {ident(k)}"
        for k in keys
    )
    same = " AND ".join(f"s.{ident(k)} = x.{ident(k)}" for k in keys)
    note(f"staging.{name}", wh.insert(
        f"DELETE FROM {table('staging', name)} AS s USING (SELECT {extracted} FROM __erased) "
        f"AS x WHERE {same}",
        [_json_path(model.columns[k].keys) for k in keys]))  # fmt: skip


def _json_strings(text: str) -> list[str]:
    """How a JSON document may spell `text` as a string: escaped to ASCII, or as it is."""
    return sorted({json.dumps(text), json.dumps(text, ensure_ascii=False)})


def _scrub_journal(wh: Warehouse, key: list[str], values: Iterable[str], note: Any) -> None:
    """The key out of every journal text that may quote it; the entity's attribute values out
    of statistics examples (a shared value such as a country loses an example there, which is
    harmless). Other people's rows are never deleted for holding the same text: quarantined
    records go only when they cannot be parsed and quote the key as a JSON string (parsable
    ones went with the raw records), JSON details lose only string values equal to the key,
    and free-text run details only the key as a whole word."""
    for text in key:
        for quoted in _json_strings(text):
            note("meta.quarantine", wh.insert(
                "DELETE FROM meta.quarantine WHERE NOT json_valid(record) "
                "AND strpos(record, ?) > 0", [quoted]))  # fmt: skip
            for log, column in (("meta.schema_events", "detail"), ("meta.alerts", "details")):
                note(log, wh.insert(
                    f"UPDATE {log} SET {column} = replace({column}, ?, '\"[erased]\"') "
                    f"WHERE strpos({column}, ?) > 0", [quoted, quoted]))  # fmt: skip
        pattern = r"(^|[^\w])" + re.escape(text) + r"($|[^\w])"
        note("meta.runs", wh.insert(
            "UPDATE meta.runs SET detail = regexp_replace(detail, ?, '\\1[erased]\\2', 'g') "
            "WHERE regexp_matches(detail, ?)", [pattern, pattern]))  # fmt: skip
        note("meta.type_errors", wh.insert(
            "DELETE FROM meta.type_errors WHERE value = ?", [text]))  # fmt: skip
    for value in [*key, *values]:
        note("meta.field_stats", wh.insert(
            "UPDATE meta.field_stats SET examples = list_filter(examples, lambda x: x <> ?), "
            "min_value = CASE WHEN min_value = ? THEN NULL ELSE min_value END, "
            "max_value = CASE WHEN max_value = ? THEN NULL ELSE max_value END "
            "WHERE list_contains(examples, ?) OR min_value = ? OR max_value = ?",
            [value] * 6))  # fmt: skip
