"""The compiled load: raw from staged NDJSON files, raw → staging (typed, deduplicated),
staging → the anchor model (insert-only), the serving tables, the marts that are tables.

It is written from the steps' own SQL builders (`stage.sql`, `stage.batch`, `anchor.target_sql`,
`anchor.serving`) for a warehouse the compiled scripts alone load. What anchorflow's journal
decides in Python (which loads are pending) is a query of the compiled journal table
(`ddl.JOURNAL`): each step reads the loads it has not done yet and records them after.
"""

from __future__ import annotations

from anchorflow.anchor.plan import AnchorPlan, EntityPlan, KnotPlan, TargetPlan, anchor_table
from anchorflow.anchor.serving import rebuild
from anchorflow.anchor.target_sql import TargetSQL
from anchorflow.compile.ddl import JOURNAL, landing_name
from anchorflow.compile.recorder import RecordingWarehouse
from anchorflow.config.project import Project
from anchorflow.land import raw_table_name
from anchorflow.land.raw import is_object
from anchorflow.stage.batch import BATCH, _insert_sql, _set_aside, raw_of
from anchorflow.stage.sql import typed_select
from anchorflow.warehouse import ident, literal, table
from anchorflow.warehouse.compiled import CompileError, SqlOnlyDialect


def done(step: str, target: str, model: str | None = None) -> str:
    """The load ids the compiled journal holds for a step and target (and model)."""
    where = f"j.step = {literal(step)} AND j.target = {literal(target)}"
    if model is not None:
        where += f" AND j.model = {literal(model)}"
    return f"SELECT j.load_id FROM {table(*JOURNAL)} AS j WHERE {where}"


def record_done(step: str, target: str, model: str, rows: str, where: str) -> str:
    """The journal rows of the loads of `rows` (alias s) that `where` picks: done."""
    listed = ", ".join(literal(v) for v in (step, target, model))
    return (
        f"INSERT INTO {table(*JOURNAL)} (step, target, model, load_id) "
        f"SELECT DISTINCT {listed}, s.load_id FROM {rows} AS s WHERE {where}"
    )


def raw_statements(project: Project, sql: SqlOnlyDialect) -> list[str]:
    """Per stream: the staged files into its landing table, the JSON objects among them into
    raw under the next load id, and out of the landing table (what is left there is lines
    that are not a JSON object, kept for a look)."""
    raws = [table("raw", raw_table_name(s, t)) for s, t in project.streams()]
    loads = " UNION ALL ".join(f"SELECT load_id FROM {r}" for r in raws)
    out = []
    for source, stream in project.streams():
        location = raw_table_name(source, stream)
        ident(location)  # validated: it names a folder of the stage
        landing = table("raw", landing_name(source, stream))
        origin, line_no = sql.landed_at(location)
        out += [
            sql.copy_raw(landing, location),
            f"INSERT INTO {table('raw', location)} "
            "(load_id, source, stream, origin, line_no, received_at, record) "
            f"SELECT n.top + 1, {literal(source)}, {literal(stream)}, {origin}, {line_no}, "
            "CAST(current_timestamp AS TIMESTAMP), l.record FROM "
            f"{landing} AS l CROSS JOIN (SELECT coalesce(max(x.load_id), 0) AS top "
            f"FROM ({loads}) AS x) AS n WHERE {is_object(sql)}",
            f"DELETE FROM {landing} WHERE {is_object(sql)}",
        ]
    return out


def staging_statements(project: Project, sql: SqlOnlyDialect) -> list[str]:
    out = []
    for name, model in project.staging.items():
        if model.on_bad_value == "fail":
            raise CompileError(
                f"staging.{name}: on_bad_value: fail has no compiled SQL (a script cannot "
                "stop a batch); use null or quarantine"
            )
        pending = f"load_id NOT IN ({done('stage', name)})"
        select, _ = typed_select(model, sql, raw_of(project, model), pending)
        out += [
            f"CREATE OR REPLACE TEMP TABLE {BATCH} AS {select}",
            _insert_sql(model, name, _set_aside(model), None),
            record_done("stage", name, name, raw_of(project, model), f"s.{pending}"),
            f"DROP TABLE {BATCH}",
        ]
    return out


def _pending(target: str, model: str) -> str:
    return f"s.load_id NOT IN ({done('anchor', target, model)})"


def _give_ids(name: str, keys: list[str], selects: list[str]) -> str:
    """New keys get the next ids after the table's top, in key order (a rerun numbers them the
    same); keys the table has keep theirs."""
    target = anchor_table(name)
    listed = ", ".join(f"n.{k}" for k in keys)
    same = " AND ".join(f"e.{k} = n.{k}" for k in keys)
    return (
        f"INSERT INTO {target} (id, {', '.join(keys)}, load_id, loaded_at) "
        f"SELECT t.top + row_number() OVER (ORDER BY {listed}), {listed}, n.load_id, "
        "CAST(current_timestamp AS TIMESTAMP) "
        f"FROM (SELECT {', '.join(keys)}, min(load_id) AS load_id "
        f"FROM ({' UNION ALL '.join(selects)}) AS u GROUP BY {', '.join(keys)}) AS n "
        f"CROSS JOIN (SELECT coalesce(max(id), 0) AS top FROM {target}) AS t "
        f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS e WHERE {same})"
    )


def entity_statements(entity: EntityPlan) -> list[str]:
    keys = [ident(k) for k in entity.key]
    selects = []
    for model, column_sets in entity.sources.items():
        for source_keys in column_sets:
            casts = ", ".join(
                f"CAST(s.{ident(c)} AS {t}) AS {k}"
                for c, t, k in zip(source_keys, entity.key_types, keys, strict=True)
            )
            not_null = " AND ".join(f"s.{ident(c)} IS NOT NULL" for c in source_keys)
            selects.append(
                f"SELECT {casts}, s.load_id FROM {table('staging', model)} AS s "
                f"WHERE {_pending(entity.name, model)} AND {not_null}"
            )
    out = [_give_ids(entity.name, keys, selects)]
    for model in entity.sources:
        rows = table("staging", model)
        out.append(record_done("anchor", entity.name, model, rows, _pending(entity.name, model)))
    return out


def knot_statements(knot: KnotPlan) -> list[str]:
    selects = [
        f"SELECT CAST(s.{ident(column)} AS {knot.type}) AS value, s.load_id "
        f"FROM {table('staging', model)} AS s "
        f"WHERE {_pending(knot.name, model)} AND s.{ident(column)} IS NOT NULL"
        for model, column in knot.feeders
    ]
    out = [_give_ids(knot.name, [ident("value")], selects)]
    for model in dict.fromkeys(m for m, _ in knot.feeders):
        rows = table("staging", model)
        out.append(record_done("anchor", knot.name, model, rows, _pending(knot.name, model)))
    return out


def target_statements(plan: AnchorPlan, target: TargetPlan, index: int) -> list[str]:
    """One attribute or tie, as `anchor.load._load_pass` runs it in one pass: placed and
    deduplicated observations, the stored rows from each key's bound on, the observations of
    loads already in the table re-read from the earliest new instant on (always: the
    compiled load keeps no high-water mark of its own beyond staging), conflict losers
    replaced, the change points (or first values) inserted."""
    sql = TargetSQL(plan, target, str(index))
    pending = _pending(target.table, target.model)
    scd0 = target.effective_history == "scd0"
    out = [
        f"CREATE OR REPLACE TEMP TABLE {sql.rows} AS {sql.staged_rows(pending)}",
        f"CREATE OR REPLACE TEMP TABLE {sql.obs} AS {sql.deduped(sql.placed(), bool(sql.values))}",
        sql.create_bounds(),
        sql.create_recent(),
    ]
    temps = [sql.rows, sql.obs, sql.bounds, sql.recent_rows]
    if not scd0:
        anchored = f"s.load_id IN ({done('anchor', target.table, target.model)})"
        changed = f"s.{ident(target.changed_at)}"
        since = f"{anchored} AND {changed} >= (SELECT min(changed_at) FROM {sql.obs})"
        high_water = (
            f"(SELECT max(CAST({changed} AS TIMESTAMP)) FROM "
            f"{table('staging', target.model)} AS s WHERE {anchored})"
        )
        late = sql.late_observations(since)
        if late.count("<= ?)") != 1:
            raise CompileError(f"anchor.{target.table}: the late observations changed shape")
        late = late.replace("<= ?)", f"<= {high_water})")
        out += [f"CREATE OR REPLACE TEMP TABLE {sql.late} AS SELECT * FROM ({late}) AS l",
                sql.create_fresh()]  # fmt: skip
        temps += [sql.late, sql.merged]
    if sql.values:
        out += [
            sql.create_losers(sql.recent_rows),
            sql.delete_losers(sql.table),
            sql.delete_losers(sql.recent_rows),
            f"DROP TABLE {sql.losers}",
        ]
    out += [
        sql.create_inserted(scd0),
        sql.insert_inserted(),
        record_done("anchor", target.table, target.model, table("staging", target.model),
                    pending),
    ]  # fmt: skip
    return out + [f"DROP TABLE {t}" for t in [*temps, sql.inserted]]


def anchor_statements(plan: AnchorPlan, sql: SqlOnlyDialect) -> list[str]:
    out: list[str] = []
    for entity in plan.entities.values():
        out += entity_statements(entity)
    for knot in plan.knots.values():
        out += knot_statements(knot)
    for index, target in enumerate(plan.targets.values()):
        out += target_statements(plan, target, index)
    recorder = RecordingWarehouse(sql)
    rebuild(recorder, plan)  # the serving tables, from the anchor tables (see README.txt)
    return out + recorder.statements
