"""Typing one batch of loads into one staging model, with the model's bad-value policy.

The typed batch is built once, in a temporary table; staging, the recorded type errors, the
quarantine and the field statistics all read it, so each record is parsed once. Values that do
not fit their type follow `on_bad_value`:

- `null` (default): the value is staged as NULL and recorded as a type error;
- `quarantine`: the row goes to the quarantine with the reason (and its errors are recorded);
- `fail`: nothing of the batch is written; the error names the column, the load and the line.

Rows without a usable unique key cannot be deduplicated: they are always quarantined.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from anchorflow.config.project import Project
from anchorflow.config.staging import StagingModel
from anchorflow.errors import AnchorflowError, WarehouseError
from anchorflow.journal.quarantine import quarantine_select
from anchorflow.journal.type_errors import record_type_errors
from anchorflow.land import raw_table_name
from anchorflow.stage.sql import SALT_VARIABLE, TypedColumn, bad_value, expected, typed_select
from anchorflow.stage.stats import sample_filter
from anchorflow.warehouse import Warehouse, ident, literal, table

BATCH = ident("__typed_batch")


class BadValues(AnchorflowError):
    """A model whose policy is `fail` met a value that does not fit its column."""


@dataclass(frozen=True)
class Staged:
    rows: int  # inserted into staging
    quarantined: int  # rows kept aside (no usable key, or a bad value under `quarantine`)
    type_errors: int  # values that did not fit their column (recorded as type errors)


def raw_of(project: Project, model: StagingModel) -> str:
    return table("raw", raw_table_name(model.source, project.stream_of(model)))


def loads_filter(load_ids: Sequence[int] | None) -> tuple[str, list[object]]:
    if load_ids is None:
        return "true", []
    # The range lets the engine skip row groups by their min/max load id.
    return "load_id BETWEEN ? AND ? AND list_contains(?, load_id)", [
        min(load_ids, default=0),
        max(load_ids, default=-1),
        list(load_ids),
    ]


@contextmanager
def typed_batch(
    warehouse: Warehouse,
    project: Project,
    name: str,
    load_ids: Sequence[int] | None,
    records: str | None = None,
    sample: bool = False,
) -> Iterator[list[TypedColumn]]:
    """Build the typed batch of `load_ids` (all of raw when None) as the temp table BATCH.

    `records` replaces raw as the relation read (the in-flight batch of those loads). With
    `sample`, the rows of the model's statistics sample carry their record's text (`__r`).
    """
    model = project.staging[name]
    if project.pii_salt and any(c.pii == "hash" for c in model.columns.values()):
        salt = project.pii_salt.get_secret_value()
        warehouse.execute(warehouse.sql.set_variable(SALT_VARIABLE), [salt])
    where, params = loads_filter(load_ids)
    sampled = (
        sample_filter(model.sample_percent, warehouse.sql)
        if sample and model.sample_percent > 0
        else None
    )
    select, columns = typed_select(
        model, warehouse.sql, records or raw_of(project, model), where, sampled
    )
    warehouse.execute(f"DROP TABLE IF EXISTS {BATCH}")  # (one statement each: parameters)
    warehouse.execute(f"CREATE TEMP TABLE {BATCH} AS {select}", params)
    try:
        yield columns
    finally:
        # Fails inside an aborted transaction (whose rollback removes the table anyway); the
        # error that aborted it is the one to report.
        with contextlib.suppress(WarehouseError):
            warehouse.execute(f"DROP TABLE IF EXISTS {BATCH}")


def stage_batch(
    warehouse: Warehouse,
    project: Project,
    name: str,
    columns: list[TypedColumn],
    keys_from: str | None = None,
) -> Staged:
    """Insert the typed batch into staging.<name>, applying the model's bad-value policy.

    `keys_from` names a table of unique-key values: only records with those keys are staged
    (events whose first copy was in a load that a backfill replaced).
    """
    model = project.staging[name]
    bad, missing = warehouse.query(
        f"SELECT count(*) FILTER (n.__bad), count(*) FILTER ({_keyless(model)}) FROM {BATCH} AS n"
    )[0]
    if bad and model.on_bad_value == "fail" and keys_from is None:
        raise BadValues(_first_bad_value(warehouse, name, columns))
    rows = warehouse.insert(_insert_sql(model, name, _set_aside(model), keys_from))
    if keys_from is not None:  # these records were checked when their load was staged
        return Staged(rows, 0, 0)
    errors = _record_type_errors(warehouse, name, columns) if bad else 0
    quarantined = 0
    if missing or (bad and model.on_bad_value == "quarantine"):
        quarantined = _quarantine(warehouse, project, name, columns)
    return Staged(rows, quarantined, errors)


def _keyless(model: StagingModel) -> str:
    """Rows always set aside: no usable unique key, or (exploded) a value that is no array."""
    rows = [f"n.{ident(k)} IS NULL" for k in model.key_columns]
    rows += ["n.__not_array"] if model.explode else []
    return " OR ".join(rows) or "false"


def _set_aside(model: StagingModel) -> str:
    """The rows of the batch (`n`) that are not staged but quarantined."""
    return f"({_keyless(model)})" + (" OR n.__bad" if model.on_bad_value == "quarantine" else "")


def _insert_sql(model: StagingModel, name: str, set_aside: str, keys_from: str | None) -> str:
    names = ([model.explode.position] if model.explode else []) + list(model.stored_columns)
    columns = ", ".join(ident(c) for c in names)
    target = table("staging", name)
    if not model.key_columns:
        return f"""INSERT INTO {target} (load_id, {columns})
            SELECT load_id, {columns} FROM {BATCH} AS n WHERE NOT ({set_aside})"""
    keys = [ident(k) for k in model.key_columns]
    key_list = ", ".join(f"n.{k}" for k in keys)
    tuple_ = f"({key_list})" if len(keys) > 1 else key_list
    only = f"AND {tuple_} IN (SELECT * FROM {keys_from}) " if keys_from else ""
    first = keys[0]
    # Find the batch's keys that staging already holds with a semi-join built on the (small)
    # batch, then drop them: the cost follows the batch, not the history. The first copy wins.
    if len(keys) == 1:
        unseen = f"n.{first} NOT IN (SELECT {first} FROM seen)"
    else:
        same = " AND ".join(f"s.{k} = n.{k}" for k in keys)
        unseen = f"NOT EXISTS (SELECT 1 FROM seen AS s WHERE {same})"
    position = f", n.{ident(model.explode.position)}" if model.explode else ""
    return f"""INSERT INTO {target} (load_id, {columns})
        WITH seen AS (
            SELECT {", ".join(f"t.{k}" for k in keys)} FROM {target} AS t
            WHERE t.{first} IN (SELECT {first} FROM {BATCH}))
        SELECT load_id, {columns} FROM {BATCH} AS n
        WHERE NOT ({set_aside}) {only}AND {unseen}
        QUALIFY row_number() OVER (
            PARTITION BY {key_list} ORDER BY n.load_id, n.origin, n.line_no{position}) = 1"""


def _error_rows(name: str, columns: list[TypedColumn]) -> str:
    """One row per value that did not make it: load, model, column, where, value, expected."""
    selects = [
        f"""SELECT load_id, {literal(name)} AS model, {literal(c.name)} AS column_name, origin,
                   line_no, {"NULL" if c.spec.pii else f"__text_{i}"} AS value,
                   {expected(c, i)} AS expected
            FROM {BATCH} WHERE __bad AND {bad_value(c, i)}"""
        for i, c in enumerate(columns)
        if c.can_fail
    ]
    return " UNION ALL ".join(selects)


def _record_type_errors(warehouse: Warehouse, name: str, columns: list[TypedColumn]) -> int:
    return record_type_errors(warehouse, _error_rows(name, columns))


def _first_bad_value(warehouse: Warehouse, name: str, columns: list[TypedColumn]) -> str:
    # Of a line with several bad values, the first column of the mapping is named.
    order = " ".join(f"WHEN {literal(c.name)} THEN {i}" for i, c in enumerate(columns))
    load_id, _, column, origin, line_no, value, wanted, count = warehouse.query(
        f"SELECT *, count(*) OVER () FROM ({_error_rows(name, columns)}) AS e "
        f"ORDER BY load_id, origin, line_no, CASE column_name {order} END LIMIT 1"
    )[0]
    shown = "" if value is None else f" ({value[:40]!r})"
    what = "is missing" if wanted == "NOT NULL" else f"is not a {wanted}{shown}"
    return (
        f"staging.{name}: {count} value(s) do not fit their column; first: {column} {what} in "
        f"load {load_id}, {origin} line {line_no}. on_bad_value is fail, so nothing of the "
        f"batch was staged: fix the data or the mapping, then run `anchorflow stage {name}`"
    )


def _quarantine(
    warehouse: Warehouse, project: Project, name: str, columns: list[TypedColumn]
) -> int:
    """Rows set aside, with their record (read again from raw) and every reason."""
    model = project.staging[name]
    reasons = []
    if model.explode:
        not_array = literal(f"{model.explode.path} is not an array")
        reasons.append(f"CASE WHEN n.__not_array THEN {not_array} END")
    texts = {c.name: i for i, c in enumerate(columns) if c.can_fail}
    for key in model.key_columns:
        spec = model.columns.get(key)
        what = f"the unique key {key}" + (f" (path {spec.path})" if spec else "")
        missing = f"CASE WHEN n.{ident(key)} IS NULL THEN {literal(f'no value for {what}')} END"
        if key in texts and spec and not spec.pii:  # a pii key's value is never shown
            text = f"n.__text_{texts[key]}"
            missing = (
                f"CASE WHEN n.{ident(key)} IS NULL THEN CASE WHEN {text} IS NULL THEN "
                f"{literal(f'no value for {what}')} ELSE "
                f"{literal(f'{what} is not a {spec.type}: ')} || {text} END END"
            )
        reasons.append(missing)
    if model.on_bad_value == "quarantine":
        for i, c in enumerate(columns):
            if not c.can_fail:
                continue
            value = "" if c.spec.pii else f" || ' (' || left(n.__text_{i}, 80) || ')'"
            reasons.append(
                f"CASE WHEN {bad_value(c, i, 'n.')} THEN "
                f"{literal(c.name + ' ')} || CASE WHEN n.__text_{i} IS NULL THEN 'is missing' "
                f"ELSE 'is not a ' || {literal(c.type)}{value} END END"
            )
    raw = raw_of(project, model)
    position = (
        f"'element ' || n.{ident(model.explode.position)} || ': ' || " if model.explode else ""
    )
    return quarantine_select(
        warehouse,
        f"""SELECT n.load_id, r.source, r.stream, 'stage', n.origin, n.line_no,
               {position}concat_ws('; ', {", ".join(reasons)}),
               r.record, {literal(name)}
        FROM {BATCH} AS n JOIN {raw} AS r
          ON r.load_id = n.load_id AND r.origin = n.origin AND r.line_no = n.line_no
        WHERE {_set_aside(model)}""",
    )
