"""Schema drift: what the data does that the mapping did not expect, reported once per problem.

Kinds of schema events (`journal.schema_events`):
- `new_model`: a value of the source's `model_field` (Amplitude: `event_type`) that no model with
  a selector claims (models without a selector stage everything, so they claim nothing);
- `new_field`: a field the records hold that the mapping neither maps nor ignores;
- `type_change`: a mapped field arrives with a JSON type it never had before;
- `vanished_field`: a field that arrived at a rate that makes its absence from this batch's
  sample no accident (at least 10 expected occurrences) stopped arriving;
- `null_rate`: a mapped field's share of nulls jumped by more than the model's threshold.

Rates are compared with the batch just before this one in time (the windows of its loads), not
with the batch typed last: a backfill replays older hours after newer ones, and an hour from
before a field appeared is no vanishing. A field or a type is new only if no other batch, older
or newer, had it.

Drift is change. What a model's first batch (or a stream's first load with rows) shows is its
baseline: recorded with status `baseline`, never alerted (`anchorflow suggest-mapping` is the tool
for a first mapping); only what appears later is an open event and an alert.

Events are found from the field statistics (small: a row per field and batch), written in the
batch's transaction, and alerted after the commit from the journal (an outbox): an event is
alerted once, and a crash between commit and alert only delays the alert to the next run.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anchorflow.alerts import Alert, AlertSender
from anchorflow.config.project import Project
from anchorflow.config.staging import JSON_KEY, StagingModel, selector_paths
from anchorflow.journal.field_stats import (
    batch_before,
    batch_stats,
    is_first_batch,
    seen_fields,
    seen_types,
)
from anchorflow.journal.loads import is_first_load
from anchorflow.journal.schema_events import (
    SchemaEventInfo,
    mark_alerted,
    record_schema_event,
    unalerted_events,
)
from anchorflow.stage.batch import loads_filter, raw_of
from anchorflow.stage.sql import Structure
from anchorflow.stage.stats import sample_filter
from anchorflow.warehouse import Warehouse, literal

log = logging.getLogger(__name__)
NUMERIC = {"UBIGINT", "BIGINT", "DOUBLE"}
EXPECTED_OCCURRENCES = 10  # a field expected this often in a sample but absent has vanished
DESCRIBED_FIELDS = 1000  # new fields of one batch given a mapping snippet; the rest are listed
ALERT_NAMES = 10  # names an alert lists; it counts the rest


@dataclass(frozen=True)
class SchemaEvent:
    kind: str
    model: str
    field: str
    detail: dict[str, Any]
    baseline: bool = False  # found in a model's first batch: recorded, never alerted


def json_kind(json_type: str) -> str:
    """JSON types as drift sees them: 1 and 1.5 are both numbers."""
    return "number" if json_type in NUMERIC else json_type.lower()


def sql_type_for(json_types: Sequence[str], timestamps: bool = False) -> str:
    """The staging type a mapping should give values of these JSON types."""
    kinds = set(json_types) - {"NULL"}
    if not kinds:
        return "VARCHAR"
    if kinds <= {"UBIGINT", "BIGINT"}:
        return "BIGINT"
    if kinds <= NUMERIC:
        return "DOUBLE"
    if kinds == {"BOOLEAN"}:
        return "BOOLEAN"
    if kinds <= {"OBJECT", "ARRAY"}:
        return "JSON"
    if kinds == {"VARCHAR"}:
        return "TIMESTAMP" if timestamps else "VARCHAR"
    return "JSON"


def column_name_for(path: str) -> str:
    """A staging column name for a JSON path: its last key, made an identifier."""
    last = path.rstrip("]").split(".")[-1].strip("[]")
    name = re.sub(r"[^A-Za-z0-9_]", "_", last).strip("_").lower() or "field"
    return name if not name[0].isdigit() else f"f_{name}"


def mapping_snippet(path: str, sql_type: str) -> str:
    return f"{column_name_for(path)}: {{path: {path}, type: {sql_type}}}"


def known_paths(model: StagingModel) -> set[str]:
    """Paths the mapping accounts for: mapped (or dropped) columns, their parents, selector
    fields and the exploded array."""
    paths = [spec.keys for spec in model.columns.values() if not spec.in_element]
    paths += selector_paths(model.selector)
    if model.explode:
        paths.append(model.explode.keys)
    # A path's parents are read too (`event_properties` for `event_properties.amount`).
    return {".".join(keys[:depth]) for keys in paths for depth in range(1, len(keys) + 1)}


def _ignored(model: StagingModel, path: str, known: set[str]) -> bool:
    if path in known:
        return True
    # A column that takes a whole object covers every key inside it.
    whole = {c.path for c in model.columns.values() if c.type == "JSON" and not c.in_element}
    if any(path.startswith(prefix + ".") for prefix in whole):
        return True
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in model.drift.ignore)


def detect_drift(
    warehouse: Warehouse,
    project: Project,
    name: str,
    batch_id: int,
    load_ids: Sequence[int],
    records: str | None = None,
    at: datetime | None = None,
) -> list[SchemaEvent]:
    """Compare the batch's statistics with those of the batch before it in time (rates; `at` is
    the newest window start of its loads), with every other batch (fields and types seen) and
    with the mapping."""
    model = project.staging[name]
    current = batch_stats(warehouse, name, batch_id)
    if not current:
        return []
    before_batch = batch_before(warehouse, name, batch_id, at)
    previous = batch_stats(warehouse, name, before_batch) if before_batch is not None else {}
    baseline = is_first_batch(warehouse, name, batch_id)
    kinds_seen = {
        field: {json_kind(t) for t in types}
        for field, types in seen_types(warehouse, name, batch_id).items()
    }
    fields_seen = seen_fields(warehouse, name, batch_id)
    known = known_paths(model)
    events: list[SchemaEvent] = []
    new_fields = []
    for field, (_, column, types, non_null, nulls, sampled) in current.items():
        unmapped = column is None and non_null and field not in fields_seen
        if unmapped and not _ignored(model, field, known):
            new_fields.append(field)
        before = kinds_seen.get(field)
        now_kinds = {json_kind(t) for t in types or []}
        if column is not None and before and now_kinds - before:
            events.append(
                SchemaEvent(
                    "type_change",
                    name,
                    field,
                    {"column": column, "was": sorted(before), "now": sorted(now_kinds)},
                )
            )
        if field not in previous or not sampled:
            continue
        _, _, _, prev_non_null, prev_nulls, prev_sampled = previous[field]
        rate = prev_non_null / prev_sampled if prev_sampled else 0.0
        if non_null == 0 and rate * sampled >= EXPECTED_OCCURRENCES:
            events.append(
                SchemaEvent(
                    "vanished_field",
                    name,
                    field,
                    {"column": column, "previous_rate": round(rate, 4), "sampled": sampled},
                )
            )
            continue
        min_sample = model.drift.min_sample
        if column is not None and sampled >= min_sample and prev_sampled >= min_sample:
            was, now = prev_nulls / prev_sampled, nulls / sampled
            if now - was > model.drift.null_rate_jump:
                events.append(
                    SchemaEvent(
                        "null_rate",
                        name,
                        field,
                        {"column": column, "was": round(was, 4), "now": round(now, 4)},
                    )
                )
    # An unmapped field absent from this batch has no row in its statistics: compare it here.
    sampled_now = next(iter(current.values()))[5]
    for field, (_, column, _, prev_non_null, _, prev_sampled) in previous.items():
        if field in current or column is not None or not prev_sampled:
            continue
        rate = prev_non_null / prev_sampled
        if rate * sampled_now >= EXPECTED_OCCURRENCES and not _ignored(model, field, set()):
            events.append(
                SchemaEvent(
                    "vanished_field",
                    name,
                    field,
                    {"column": None, "previous_rate": round(rate, 4), "sampled": sampled_now},
                )
            )
    # A baseline event is never alerted: its snippet is `suggest-mapping`'s job.
    described = {} if baseline or not new_fields else _describe_new_fields(
        warehouse, project, name, new_fields, load_ids, records)  # fmt: skip
    for field in new_fields:
        detail = dict(described.get(field, {}))
        detail["present"] = current[field][3]
        detail["sampled"] = current[field][5]
        events.append(SchemaEvent("new_field", name, field, detail, baseline))
    return events


def _describe_new_fields(
    warehouse: Warehouse,
    project: Project,
    name: str,
    fields: Sequence[str],
    load_ids: Sequence[int],
    records: str | None,
) -> dict[str, dict[str, Any]]:
    """Per field: its JSON types in the batch's sample, the type to map it with, and the
    snippet; one query over the sample for all of them (a storm of new keys is one pass).

    The fields' names come from the data: their paths are bound as parameters, never put into
    a query, and a key a mapping path cannot hold is reported as is, with a note.
    """
    described: dict[str, dict[str, Any]] = {}
    paths: dict[str, str] = {}
    for field in fields[:DESCRIBED_FIELDS]:
        keys = field.split(".")
        if all(JSON_KEY.match(key) for key in keys):
            paths["$" + "".join(f'."{key}"' for key in keys)] = field
        else:
            described[field] = {"note": "the key holds characters a mapping path cannot name"}
    if paths:
        model = project.staging[name]
        sql = warehouse.sql
        where, params = loads_filter(load_ids)
        found = warehouse.query(
            f"""SELECT p, list(DISTINCT t) FILTER (t IS NOT NULL),
                       bool_and(t <> 'VARCHAR' OR TRY_CAST(v AS TIMESTAMP) IS NOT NULL)
                FROM (SELECT unnest(CAST(? AS VARCHAR[])) AS p,
                             unnest({sql.json_types_at("record", "CAST(? AS VARCHAR[])")}) AS t,
                             unnest({sql.json_texts_at("record", "CAST(? AS VARCHAR[])")}) AS v
                      FROM {records or raw_of(project, model)} AS r
                      WHERE {where} AND {sample_filter(model.sample_percent, sql)}) AS f
                GROUP BY p""",
            [list(paths)] * 3 + list(params),
        )
        for path, types, timestamps in found:
            field = paths[str(path)]
            sql_type = sql_type_for(types or [], bool(timestamps))
            described[field] = {
                "json_types": sorted(types or []),
                "suggested_type": sql_type,
                "mapping": mapping_snippet(field, sql_type),
            }
    return described


def record_events(
    warehouse: Warehouse, stream: str, events: Sequence[SchemaEvent], load_id: int
) -> int:
    """Record the events as one event per kind and model (listing their fields), leaving out
    the fields reported before; returns how many events that will be alerted were recorded."""
    groups: dict[tuple[str, str, bool], dict[str, dict[str, Any]]] = {}
    for event in events:  # a handful of kinds and models: one row per field found
        groups.setdefault((event.kind, event.model, event.baseline), {})[event.field] = event.detail
    added = 0
    for (kind, model, baseline), details in groups.items():
        ordered = {field: details[field] for field in sorted(details)}  # the same on a rerun
        recorded = record_schema_event(warehouse, kind, stream, model, ordered, load_id, baseline)
        added += bool(recorded) and not baseline
    return added


def detect_new_models(
    warehouse: Warehouse,
    project: Project,
    source: str,
    stream: str,
    load_id: int,
    records: str,
) -> list[SchemaEvent]:
    """Values of the source's model field in records that no selective model claims."""
    field = project.sources[source].model_field
    selective = [
        project.staging[n]
        for n, m in project.staging.items()
        if m.source == source and project.stream_of(m) == stream and m.selector
    ]
    if not field or not selective:
        return []
    structure = Structure(
        selective[0],
        warehouse.sql,
        extra_paths=[field.split(".")]
        + [path for model in selective for path in selector_paths(model.selector)],
    )
    claimed = " OR ".join(
        f"coalesce({structure.selector_sql(m.selector or 'false')}, false)" for m in selective
    )
    value = structure.text(field.split("."))
    rows = warehouse.query(
        f"""SELECT v, count(*) FROM (
                SELECT {value} AS v, {claimed} AS claimed FROM (
                    SELECT {structure.parse("record")} AS s
                    FROM {records} AS r WHERE {sample_filter(10.0, warehouse.sql)}
                    {warehouse.sql.computed_once()}) AS p) AS c
            WHERE v IS NOT NULL GROUP BY v HAVING NOT bool_or(claimed) ORDER BY v"""
    )
    baseline = is_first_load(warehouse, source, stream, load_id)
    catch_all = [
        n
        for n, m in project.staging.items()
        if m.source == source and project.stream_of(m) == stream and not m.selector
    ]
    return [
        SchemaEvent(
            "new_model",
            str(v),
            field,
            {
                "stream": f"{source}.{stream}",
                "sampled_records": n,
                "staged_by": catch_all,
                "mapping": f'selector: "{field} = {literal(str(v))}"',
            },
            baseline,
        )
        for v, n in rows
    ]


def send_pending_alerts(warehouse: Warehouse, project: Project) -> int:
    """Queue one alert per kind for the schema events not alerted yet (its counts and the first
    few names), then mark them. The command calls it once, when it ends, just before it
    delivers its queue: a run's drift is one alert per kind. Returns how many were pending."""
    events = unalerted_events(warehouse)
    by_kind: dict[str, list[SchemaEventInfo]] = {}
    for event in events:
        by_kind.setdefault(event.kind, []).append(event)
    sender = AlertSender(project, warehouse)
    for kind, found in by_kind.items():
        with warehouse.transaction():
            sender.queue(drift_alert(kind, found))
            mark_alerted(warehouse, [e.event_id for e in found])
    return len(events)


def drift_alert(kind: str, events: Sequence[SchemaEventInfo]) -> Alert:
    """One alert for events of one kind: how many names (fields; new models for `new_model`)
    in how many events, the first `ALERT_NAMES` of them, and each name's detail when it is
    the only one."""
    models = list(dict.fromkeys(e.model for e in events))
    names = [e.model if kind == "new_model" else f for e in events for f in e.fields]
    first = events[0]
    details: dict[str, Any] = {
        "model": first.model, "field": first.field, "stream": first.stream,
        "first_load_id": first.first_load_id, "count": len(names), "events": len(events),
        "models": models[:ALERT_NAMES], "fields": names[:ALERT_NAMES],
        "more": max(0, len(names) - ALERT_NAMES),
    }  # fmt: skip
    if len(names) == 1:
        details.update(first.detail.get(first.field, {}))
        return Alert(kind, _subject(kind, first.model, first.field), details)
    return Alert(kind, _subject_of_many(kind, models, names, first.field), details)


def _subject(kind: str, model: str, field: str) -> str:
    return {
        "new_model": f"new model {model!r} in the data ({field}); no staging model claims it",
        "new_field": f"staging.{model}: new field {field!r} is not in the mapping",
        "type_change": f"staging.{model}: field {field!r} changed its JSON type",
        "vanished_field": f"staging.{model}: field {field!r} stopped arriving",
        "null_rate": f"staging.{model}: nulls in {field!r} jumped",
    }.get(kind, f"{kind}: {model}.{field}")


def _subject_of_many(kind: str, models: list[str], names: list[str], field: str) -> str:
    listed = ", ".join(names[:ALERT_NAMES])
    if len(names) > ALERT_NAMES:
        listed += f" and {len(names) - ALERT_NAMES} more"
    if kind == "new_model":
        return (
            f"{len(names)} new models in the data ({field}); no staging model claims them: {listed}"
        )
    where = f"staging.{models[0]}" if len(models) == 1 else f"{len(models)} staging models"
    what = {
        "new_field": "new fields are not in the mapping",
        "type_change": "fields changed their JSON type",
        "vanished_field": "fields stopped arriving",
        "null_rate": "fields' nulls jumped",
    }.get(kind, f"fields: {kind}")
    return f"{where}: {len(names)} {what}: {listed}"
