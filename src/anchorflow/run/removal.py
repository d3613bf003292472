"""Taking loads and people back out, composed from the steps' own removals.

- `replace_loads`: a window delivered again replaces its earlier loads everywhere (raw, staging,
  the anchor model, their journal); the loads are gone for good.
- `rollback_load`: a load leaves every layer above raw; the next run types and anchors it again.
- `forget_entity`: a person leaves every layer, raw included, and every journal text.

Each layer's part lives in its own package (`land`, `stage`, `anchor`, `journal`), so the three
cannot drift apart in what they remove.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from anchorflow.anchor.erase import erase_entity
from anchorflow.anchor.plan import AnchorPlan
from anchorflow.anchor.step import AnchorStep
from anchorflow.config.project import Project
from anchorflow.errors import ConfigError
from anchorflow.fraud.erase import erase_fraud_user
from anchorflow.journal import utcnow
from anchorflow.journal.erasures import (
    erase_record_traces,
    next_erasure_id,
    record_erasure,
    scrub_journal,
)
from anchorflow.journal.field_stats import scrub_record_values
from anchorflow.journal.loads import load_of, mark_replaced
from anchorflow.journal.suppressions import suppress_key
from anchorflow.land.erase import erase_records, find_records
from anchorflow.land.raw import raw_table_name
from anchorflow.land.step import remove_landed
from anchorflow.stage.erase import (
    erase_rows_typed_from,
    erase_rows_with_key,
    key_paths,
    record_column_values,
    record_key_values,
)
from anchorflow.stage.step import StageStep
from anchorflow.warehouse import Warehouse


@dataclass(frozen=True)
class Steps:
    """The steps whose removals the compositions call."""

    stage: StageStep
    anchor: AnchorStep


class Counts(dict[str, int]):
    """Rows removed per table, summed over the parts that removed them."""

    def add(self, found: dict[str, int]) -> None:
        for name, rows in found.items():
            if rows:
                self[name] = self.get(name, 0) + rows


def replace_loads(
    warehouse: Warehouse,
    project: Project,
    steps: Steps,
    source: str,
    stream: str,
    load_ids: Sequence[int],
) -> dict[str, str]:
    """Remove loads a new delivery of their window replaces; call in the window's transaction.

    Returns, per staging model, a temp table of the unique keys the loads held, so events whose
    surviving copy lives in another load can be staged again from raw once the replacement is
    staged (`StageStep.restore_keys`).
    """
    if not load_ids:
        return {}
    models = project.models_of_stream(source, stream)
    steps.anchor.remove(warehouse, load_ids, reattribute=True, reopen=models)
    kept = steps.stage.set_aside_keys(warehouse, models, load_ids)
    steps.stage.remove(warehouse, load_ids, models)
    remove_landed(warehouse, source, stream, load_ids)
    mark_replaced(warehouse, load_ids)
    return kept


def rollback_load(
    warehouse: Warehouse, project: Project, steps: Steps, load_id: int
) -> dict[str, int]:
    """Remove a load from every layer above raw and re-open it for typing and anchoring."""
    found = load_of(warehouse, load_id)
    if found is None:
        raise ConfigError([f"rollback: there is no load {load_id} (see `anchorflow status`)"])
    status, source, stream = found
    if status != "committed":
        raise ConfigError([f"rollback: load {load_id} is {status}; only a committed load can be"])
    counts = Counts()
    with warehouse.transaction():
        models = project.models_of_stream(source, stream)
        counts.add(steps.anchor.remove(warehouse, [load_id], reattribute=False, reopen=models))
        counts.add(steps.stage.remove(warehouse, [load_id]))
    return dict(counts)


def forget_entity(
    warehouse: Warehouse, project: Project, plan: AnchorPlan, entity: str, key: list[str]
) -> dict[str, int]:
    """Erase one entity, by natural key, from every table; returns rows erased per table.

    Its anchor rows, attribute values and ties; the staging rows and raw records that carry its
    key (found by the JSON paths its staging columns read), the rows of other models typed from
    those records; and every copy of its values in the journal. One audit row in the journal
    keeps the counts, never the key, and the deadline by which the file is rewritten without
    the erased bytes (`compact`). The key, hashed with pii_salt, is kept per raw stream, so
    landing the same windows again drops its records (`land.suppress`).
    """
    streams = _key_paths_per_stream(project, plan, entity) if entity in plan.entities else {}
    if streams and project.pii_salt is None:
        raise ConfigError(
            [
                "forget: set pii_salt: ${ANCHORFLOW_PII_SALT} in the project file; the erased "
                "key is kept hashed with it, so that a backfill cannot bring the person back"
            ]
        )
    counts = Counts()
    with warehouse.transaction():
        erased, values = erase_entity(warehouse, plan, entity, key)
        counts.add(erased)
        spec = plan.entities[entity]
        for model, column_sets in spec.sources.items():
            for columns in column_sets:
                rows = erase_rows_with_key(warehouse, model, columns, spec.key_types, key)
                counts.add({f"staging.{model}": rows})
        for (source, stream), path_sets in streams.items():
            records = find_records(warehouse, source, stream, path_sets, key)
            if records is None:
                continue
            for model in project.models_of_stream(source, stream):
                # Their unique keys may be examples in the statistics (exploded models too).
                values.update(record_key_values(warehouse, project, model, records))
                held = record_column_values(warehouse, project, model, records)
                counts.add(scrub_record_values(warehouse, model, held))
                typed = erase_rows_typed_from(warehouse, project, model, records)
                counts.add({f"staging.{model}": typed})
            counts.add(erase_record_traces(warehouse, records))
            raw = erase_records(warehouse, source, stream, records)
            counts.add({f"raw.{raw_table_name(source, stream)}": raw})
            warehouse.execute(f"DROP TABLE {records}")
        if entity == project.fraud.user_entity and len(key) == 1:
            counts.add(erase_fraud_user(warehouse, key[0]))
        counts.add(scrub_journal(warehouse, key, sorted(values | set(key))))
        erasure_id = next_erasure_id(warehouse)
        if project.pii_salt is not None:
            salt = project.pii_salt.get_secret_value()
            for (source, stream), path_sets in streams.items():
                for paths in path_sets:
                    suppress_key(warehouse, erasure_id, source, stream, paths, key, salt)
        deadline = utcnow() + project.erasure_deadline
        record_erasure(warehouse, erasure_id, entity, dict(counts), deadline)
    return dict(counts)


def _key_paths_per_stream(
    project: Project, plan: AnchorPlan, entity: str
) -> dict[tuple[str, str], list[list[str]]]:
    """Per raw stream, the path sets in its records that the entity's key is read from."""
    streams: dict[tuple[str, str], list[list[str]]] = {}
    for model, column_sets in plan.entities[entity].sources.items():
        for columns in column_sets:
            paths = key_paths(project, model, columns)
            if paths is not None:
                config = project.staging[model]
                where = (config.source, project.stream_of(config))
                if paths not in streams.setdefault(where, []):
                    streams[where].append(paths)
    return streams
