"""Schema drift: what the data does that the mapping did not expect, reported once per problem.

Kinds of schema events (`journal.schema_events`):
- `new_model`: a value of the source's `model_field` (Amplitude: `event_type`) that no model with
  a selector claims (models without a selector stage everything, so they claim nothing);
- `new_field`: a field the records hold that the mapping neither maps nor ignores;
- `type_change`: a mapped field arrives with a JSON type it never had before;
- `vanished_field`: a field that arrived at a rate that makes its absence from this batch's
  sample no accident (at least 10 expected occurrences) stopped arriving;
- `null_rate`: a mapped field's share of nulls jumped by more than the model's threshold.

Drift is change. What a model's first batch (or a stream's first load) already shows is its
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
from typing import Any

from anchorflow.alerts import Alert, AlertSender
from anchorflow.config.project import Project
from anchorflow.config.staging import JSON_KEY, StagingModel, selector_paths
from anchorflow.journal.field_stats import batch_stats, previous_batch, seen_fields, seen_types
from anchorflow.journal.loads import is_first_load
from anchorflow.journal.schema_events import mark_alerted, record_schema_event, unalerted_events
from anchorflow.stage.batch import loads_filter, raw_of
from anchorflow.stage.sql import Structure, json_path
from anchorflow.stage.stats import sample_filter
from anchorflow.warehouse import Warehouse, literal

log = logging.getLogger(__name__)
NUMERIC = {"UBIGINT", "BIGINT", "DOUBLE"}
EXPECTED_OCCURRENCES = 10  # a field expected this often in a sample but absent has vanished


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
) -> list[SchemaEvent]:
    """Compare the batch's statistics with the previous batch's and with the mapping."""
    model = project.staging[name]
    current = batch_stats(warehouse, name, batch_id)
    if not current:
        return []
    before_batch = previous_batch(warehouse, name, batch_id)
    previous = batch_stats(warehouse, name, before_batch) if before_batch is not None else {}
    baseline = before_batch is None
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
    for field in new_fields:  # only rarely; one small query each, for the mapping snippet
        # A baseline event is never alerted: its snippet is `suggest-mapping`'s job.
        detail = {} if baseline else _describe_new_field(
            warehouse, project, name, field, load_ids, records)  # fmt: skip
        detail["present"] = current[field][3]
        detail["sampled"] = current[field][5]
        events.append(SchemaEvent("new_field", name, field, detail, baseline))
    return events


def _describe_new_field(
    warehouse: Warehouse,
    project: Project,
    name: str,
    field: str,
    load_ids: Sequence[int],
    records: str | None,
) -> dict[str, Any]:
    """The field's JSON types in the batch's sample, the type to map it with, and the snippet.

    The field's name comes from the data: a key a mapping path cannot hold is reported as is,
    never put into a query.
    """
    if not all(JSON_KEY.match(key) for key in field.split(".")):
        return {"note": "the key holds characters a mapping path cannot name"}
    model = project.staging[name]
    where, params = loads_filter(load_ids)
    path = json_path(field.split("."))
    types, timestamps = warehouse.query(
        f"""SELECT list(DISTINCT t) FILTER (t IS NOT NULL),
                   bool_and(t <> 'VARCHAR' OR TRY_CAST(v AS TIMESTAMP) IS NOT NULL)
            FROM (SELECT json_type(record, {path}) AS t, json_extract_string(record, {path}) AS v
                  FROM {records or raw_of(project, model)}
                  WHERE {where} AND {sample_filter(model.sample_percent)})""",
        params,
    )[0]
    sql_type = sql_type_for(types or [], bool(timestamps))
    return {
        "json_types": sorted(types or []),
        "suggested_type": sql_type,
        "mapping": mapping_snippet(field, sql_type),
    }


def record_events(
    warehouse: Warehouse, stream: str, events: Sequence[SchemaEvent], load_id: int
) -> int:
    """Insert the events not reported before (one per kind, model and field, ever)."""
    added = 0
    for event in events:
        new = record_schema_event(
            warehouse, event.kind, stream, event.model, event.field, event.detail, load_id,
            event.baseline,
        )  # fmt: skip
        added += new and not event.baseline
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
                    SELECT json_transform(record, {structure.transform()}) AS s
                    FROM {records} WHERE {sample_filter(10.0)}))
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
    """Queue an alert for every schema event not alerted yet, then mark it: called after
    commits. The alert queue keeps it until a target takes it; the run delivers the queue
    when it ends."""
    events = unalerted_events(warehouse)
    sender = AlertSender(project, warehouse)
    for event in events:
        details = {
            "model": event.model,
            "field": event.field,
            "stream": event.stream,
            "first_load_id": event.first_load_id,
            **event.detail,
        }
        subject = _subject(event.kind, event.model, event.field)
        sender.queue(Alert(event.kind, subject, details))
        mark_alerted(warehouse, event.event_id)
    return len(events)


def _subject(kind: str, model: str, field: str) -> str:
    return {
        "new_model": f"new model {model!r} in the data ({field}); no staging model claims it",
        "new_field": f"staging.{model}: new field {field!r} is not in the mapping",
        "type_change": f"staging.{model}: field {field!r} changed its JSON type",
        "vanished_field": f"staging.{model}: field {field!r} stopped arriving",
        "null_rate": f"staging.{model}: nulls in {field!r} jumped",
    }.get(kind, f"{kind}: {model}.{field}")
